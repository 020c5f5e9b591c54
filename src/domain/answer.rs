//! A developer's answer to a review, checked before anything is sent: what each store accepts.

use std::collections::HashMap;
use std::fmt;

use super::{DeveloperResponse, Review, Store};

/// Google Play refuses a reply over about 350 characters (its Play Console counts the same way).
pub const GOOGLE_PLAY_MAX_CHARS: usize = 350;
/// Apple's API sets no length; App Store Connect's reply box stops at 5,970 characters, so an
/// answer that long is one Apple's own tool would send.
pub const APP_STORE_MAX_CHARS: usize = 5_970;

/// The most characters (Unicode scalar values) `store` takes in an answer.
pub fn max_chars(store: Store) -> usize {
    match store {
        Store::AppStore => APP_STORE_MAX_CHARS,
        Store::GooglePlay => GOOGLE_PLAY_MAX_CHARS,
    }
}

/// An answer's text, trimmed, not empty and within its store's limit. `Debug` shows its length
/// and digest only: the text is for the store and the table, not for logs.
#[derive(Clone, PartialEq, Eq)]
pub struct AnswerText(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerTextError {
    #[error("the answer is empty: give the text to publish under the review")]
    Empty,
    #[error(
        "the answer is {chars} characters, and {} takes at most {max}{}: shorten it by {} characters",
        .store.name(),
        why(*.store),
        .chars - .max
    )]
    TooLong {
        store: Store,
        chars: usize,
        max: usize,
    },
}

fn why(store: Store) -> &'static str {
    match store {
        Store::GooglePlay => " (Google refuses a longer reply, and strips HTML)",
        Store::AppStore => " (the most App Store Connect's own reply box accepts)",
    }
}

impl AnswerText {
    /// `raw` without surrounding white space, if `store` would take it.
    pub fn parse(store: Store, raw: &str) -> Result<Self, AnswerTextError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(AnswerTextError::Empty);
        }
        let chars = text.chars().count();
        let max = max_chars(store);
        if chars > max {
            return Err(AnswerTextError::TooLong { store, chars, max });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its length in characters, as the stores count it.
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }

    pub fn digest(&self) -> String {
        text_digest(&self.0)
    }
}

impl fmt::Debug for AnswerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnswerText({} chars, {})", self.chars(), self.digest())
    }
}

/// The first 16 hex digits of the text's SHA-256: enough to tell answers apart in an audit
/// line, nothing of the text itself.
pub fn text_digest(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Gives each review that arrives without its developer's answer the one noted when it was
/// answered from here (by the review's id in its store). The stores leave out an answer they
/// have not published yet (Apple's `PENDING_PUBLISH`), so a message about an edit made
/// meanwhile still shows it.
pub fn with_noted_answers(reviews: &mut [Review], noted: &HashMap<String, DeveloperResponse>) {
    if noted.is_empty() {
        return;
    }
    for review in reviews.iter_mut().filter(|r| r.response.is_none()) {
        if let Some(answer) = noted.get(review.original_id()) {
            review.response = Some(answer.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sample_review;

    #[test]
    fn an_answer_is_trimmed_and_refused_when_empty() {
        let text = AnswerText::parse(Store::AppStore, "  Thanks!\n").unwrap();
        assert_eq!(text.as_str(), "Thanks!");
        for blank in ["", "   ", "\n\t"] {
            assert_eq!(
                AnswerText::parse(Store::GooglePlay, blank),
                Err(AnswerTextError::Empty)
            );
        }
    }

    #[test]
    fn play_takes_350_characters_counted_as_characters_not_bytes() {
        let at_limit = "é".repeat(350);
        assert_eq!(
            AnswerText::parse(Store::GooglePlay, &at_limit)
                .unwrap()
                .chars(),
            350
        );
        let over = "é".repeat(351);
        let err = AnswerText::parse(Store::GooglePlay, &over).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the answer is 351 characters, and Google Play takes at most 350 (Google refuses a longer reply, and strips HTML): shorten it by 1 characters"
        );
        assert!(AnswerText::parse(Store::AppStore, &over).is_ok());
        assert!(AnswerText::parse(Store::AppStore, &"a".repeat(5_971)).is_err());
    }

    #[test]
    fn debug_shows_no_text_and_the_digest_tells_texts_apart() {
        let text = AnswerText::parse(Store::AppStore, "secret plan").unwrap();
        let shown = format!("{text:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("11 chars"), "{shown}");
        assert_eq!(text.digest().len(), 16);
        assert_ne!(text.digest(), text_digest("secret plan."));
        assert_eq!(text.digest(), text_digest("secret plan"));
    }

    #[test]
    fn a_noted_answer_fills_a_review_without_one_and_never_replaces_the_stores() {
        let answer = DeveloperResponse {
            body: "Fixed in 2.1".into(),
            last_modified_date: Some("2026-11-21T10:00:00Z".into()),
        };
        let noted = HashMap::from([("r".to_owned(), answer.clone())]);
        let mut edit = sample_review("r", "2024-05-02T10:00:00Z").as_edit_of(Some(1));
        let mut other = sample_review("s", "2024-05-02T10:00:00Z");
        let mut published = sample_review("r", "2024-05-02T10:00:00Z");
        let store_answer = DeveloperResponse {
            body: "Published".into(),
            last_modified_date: None,
        };
        published.response = Some(store_answer.clone());
        let mut reviews = vec![edit.clone(), other.clone(), published];
        with_noted_answers(&mut reviews, &noted);
        edit.response = Some(answer);
        other.response = None;
        assert_eq!(reviews[0], edit, "an edit is matched by its original id");
        assert_eq!(reviews[1], other);
        assert_eq!(reviews[2].response, Some(store_answer));
    }
}
