use std::fmt;

/// The stores review-relay reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Store {
    AppStore,
    GooglePlay,
}

impl Store {
    /// The store's name as people say it, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Store::AppStore => "App Store",
            Store::GooglePlay => "Google Play",
        }
    }

    /// The store's code in the `json` format and the run summary.
    pub fn code(self) -> &'static str {
        match self {
            Store::AppStore => "app_store",
            Store::GooglePlay => "google_play",
        }
    }

    /// Whether an edit moves a review to a later instant. Google Play dates a review by when
    /// its text last changed, so an edit of a review delivered long ago is listed with the new
    /// reviews, far from its delivery record; the App Store keeps `createdDate`.
    pub fn edits_move_reviews(self) -> bool {
        match self {
            Store::AppStore => false,
            Store::GooglePlay => true,
        }
    }
}

/// An app in its store: a numeric App Store app id (the "Apple ID" shown in App Store Connect),
/// or a Google Play package name (`com.example.app`). Parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId {
    store: Store,
    id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppIdError {
    #[error(
        "`{0}` is not a numeric App Store app id (find it in App Store Connect under App Information → Apple ID)"
    )]
    AppStore(String),
    #[error(
        "`{0}` is not a Google Play package name: dot-separated segments of letters, digits and `_`, each starting with a letter, at least two (like com.example.app)"
    )]
    GooglePlay(String),
    #[error(
        "`{0}` is neither a numeric App Store app id nor a Google Play package name (like com.example.app)"
    )]
    Either(String),
}

/// Android allows longer names in principle; none this long exists on Google Play.
const MAX_PACKAGE_LEN: usize = 255;

impl AppId {
    /// A numeric App Store app id.
    pub fn parse(raw: &str) -> Result<Self, AppIdError> {
        let trimmed = raw.trim();
        if is_app_store_id(trimmed) {
            Ok(Self::new(Store::AppStore, trimmed))
        } else {
            Err(AppIdError::AppStore(shown(trimmed)))
        }
    }

    /// A Google Play package name, by Android's rules for an application id.
    pub fn play(raw: &str) -> Result<Self, AppIdError> {
        let trimmed = raw.trim();
        if is_package_name(trimmed) {
            Ok(Self::new(Store::GooglePlay, trimmed))
        } else {
            Err(AppIdError::GooglePlay(shown(trimmed)))
        }
    }

    /// Either kind, told apart by its shape: digits are an App Store id, a package name a Play app.
    pub fn parse_any(raw: &str) -> Result<Self, AppIdError> {
        let trimmed = raw.trim();
        if is_app_store_id(trimmed) {
            Ok(Self::new(Store::AppStore, trimmed))
        } else if is_package_name(trimmed) {
            Ok(Self::new(Store::GooglePlay, trimmed))
        } else {
            Err(AppIdError::Either(shown(trimmed)))
        }
    }

    fn new(store: Store, id: &str) -> Self {
        Self {
            store,
            id: id.to_owned(),
        }
    }

    pub fn store(&self) -> Store {
        self.store
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }
}

fn is_app_store_id(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= 20 && raw.bytes().all(|b| b.is_ascii_digit())
}

fn is_package_name(raw: &str) -> bool {
    raw.len() <= MAX_PACKAGE_LEN
        && raw.split('.').count() >= 2
        && raw.split('.').all(|segment| {
            segment
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic())
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// What an error repeats of the input: enough to recognise it.
fn shown(raw: &str) -> String {
    raw.chars().take(40).collect()
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_digits_with_surrounding_space() {
        let app = AppId::parse(" 1234567 ").unwrap();
        assert_eq!(app.as_str(), "1234567");
        assert_eq!(app.store(), Store::AppStore);
    }

    #[test]
    fn rejects_names_paths_and_empty() {
        for bad in [
            "",
            "abc",
            "123/../456",
            "12 34",
            "-5",
            "１２３",
            "com.example.app",
        ] {
            assert!(AppId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn takes_package_names_by_androids_rules() {
        for good in [
            "com.example.app",
            "a.b",
            "org.x_y.App2",
            " com.example.app ",
        ] {
            let app = AppId::play(good).unwrap();
            assert_eq!(app.store(), Store::GooglePlay);
            assert_eq!(app.as_str(), good.trim());
        }
        for bad in [
            "",
            "app",
            "com..app",
            "com.1app",
            ".com.app",
            "com.app.",
            "com.exa-mple",
            "com/example",
            "com.example.app/../x",
            "123",
            "com.ex ample",
            "cöm.example",
        ] {
            assert_eq!(
                AppId::play(bad),
                Err(AppIdError::GooglePlay(bad.trim().to_owned())),
                "{bad:?}"
            );
        }
        assert!(AppId::play(&format!("a.{}", "b".repeat(254))).is_err());
    }

    #[test]
    fn either_store_is_told_by_the_shape() {
        assert_eq!(AppId::parse_any("42").unwrap().store(), Store::AppStore);
        assert_eq!(
            AppId::parse_any("com.example.app").unwrap().store(),
            Store::GooglePlay
        );
        let err = AppId::parse_any("my app").unwrap_err();
        assert!(err.to_string().contains("neither"), "{err}");
    }
}
