use std::fmt;

/// A numeric App Store app id (the "Apple ID" shown in App Store Connect), parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "`{0}` is not a numeric App Store app id (find it in App Store Connect under App Information → Apple ID)"
)]
pub struct AppIdError(pub String);

impl AppId {
    pub fn parse(raw: &str) -> Result<Self, AppIdError> {
        let trimmed = raw.trim();
        let numeric = !trimmed.is_empty()
            && trimmed.len() <= 20
            && trimmed.bytes().all(|b| b.is_ascii_digit());
        if numeric {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(AppIdError(trimmed.chars().take(40).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_digits_with_surrounding_space() {
        assert_eq!(AppId::parse(" 1234567 ").unwrap().as_str(), "1234567");
    }

    #[test]
    fn rejects_names_paths_and_empty() {
        for bad in ["", "abc", "123/../456", "12 34", "-5", "１２３"] {
            assert!(AppId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
