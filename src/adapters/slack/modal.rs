//! The modal a click on Reply opens: the review quoted, and a text input that holds no more than
//! the store takes (and no more than Slack's 3,000 characters for an input).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::request::{ANSWER_BLOCK, ANSWER_INPUT, ButtonValue, REPLY_VIEW, is_slack_response_url};
use crate::adapters::webhooks::slack::escape;
use crate::adapters::webhooks::{ReviewCard, char_len, fit_escaped};
use crate::domain::{Store, max_chars};

/// Slack refuses a plain-text input's `max_length` over this.
pub const INPUT_MAX_CHARS: usize = 3_000;
/// Slack refuses `private_metadata` longer than this.
pub const PRIVATE_METADATA_MAX: usize = 3_000;
/// Slack refuses a section's text longer than this.
const SECTION_MAX: usize = 3_000;

/// The longest answer the modal takes for `store`: the store's limit, within Slack's.
pub fn input_max_chars(store: Store) -> usize {
    max_chars(store).min(INPUT_MAX_CHARS)
}

/// What the modal carries from the click to its submission (a submission brings no
/// `response_url` of its own), as its `private_metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// The button's value: the store, the app, the review.
    pub review: String,
    /// The click's `response_url`, when Slack gave one on hooks.slack.com.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<String>,
}

impl Carried {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads `private_metadata` back; the review is checked again, and a `response_url` not on
    /// hooks.slack.com is dropped.
    pub fn decode(metadata: &str) -> Option<(ButtonValue, Option<String>)> {
        let carried: Carried = serde_json::from_str(metadata).ok()?;
        let review = ButtonValue::parse(&carried.review).ok()?;
        let response_url = carried.response_url.filter(|u| is_slack_response_url(u));
        Some((review, response_url))
    }
}

/// The modal for answering `card`'s review, carrying `carried`; `initial` fills the input (the
/// answer the store holds, when it has one).
pub fn reply_modal(card: &ReviewCard<'_>, carried: &Carried, initial: Option<&str>) -> Value {
    let store = card.review.store;
    let max = input_max_chars(store);
    // Stars and `*` are not among what Slack escapes: the whole quote is escaped, and cut on a
    // character of the raw text, never inside an escape.
    let heading = match card.title {
        Some(title) => format!("{}  *{title}*", card.stars),
        None => card.stars.clone(),
    };
    let quoted = match card.body {
        Some(body) => format!("{heading}\n{body}"),
        None => heading,
    };
    let quote = fit_escaped(&quoted, SECTION_MAX, escape, char_len);
    let mut element = json!({
        "type": "plain_text_input",
        "action_id": ANSWER_INPUT,
        "multiline": true,
        "max_length": max,
    });
    if let Some(text) = initial.map(str::trim).filter(|t| !t.is_empty()) {
        element["initial_value"] = text.chars().take(max).collect::<String>().into();
    }
    json!({
        "type": "modal",
        "callback_id": REPLY_VIEW,
        "title": {"type": "plain_text", "text": "Reply to review"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": carried.encode(),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": quote}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
                "{} · by {} · {}", card.kind, escape(card.nickname_or_anonymous()), card.date
            )}]},
            {
                "type": "input",
                "block_id": ANSWER_BLOCK,
                "label": {"type": "plain_text", "text": format!("Your answer on {}", store.name())},
                "hint": {"type": "plain_text", "text": format!(
                    "Published under the review in {}; at most {max} characters.", store.name()
                )},
                "element": element,
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AppId, Review};

    fn review(store: Store, body: &str) -> Review {
        Review::new(
            "gp:AOqp".into(),
            Some(2),
            Some("<!channel> broken".into()),
            Some(body.into()),
            Some("Ana".into()),
            None,
            "2026-11-20T10:00:00Z".into(),
            None,
        )
        .unwrap()
        .in_store(store)
    }

    #[test]
    fn the_input_holds_what_the_store_takes_within_slacks_limit() {
        assert_eq!(input_max_chars(Store::GooglePlay), 350);
        assert_eq!(input_max_chars(Store::AppStore), 3_000);
        let app = AppId::play("com.example.app").unwrap();
        let review = review(Store::GooglePlay, &"長".repeat(5_000));
        let carried = Carried {
            review: ButtonValue::encode(&app, "gp:AOqp"),
            response_url: Some("https://hooks.slack.com/actions/T1/1/x".into()),
        };
        let modal = reply_modal(
            &ReviewCard::new(&app, &review),
            &carried,
            Some(&"a".repeat(400)),
        );
        let element = &modal["blocks"][2]["element"];
        assert_eq!(element["max_length"], 350);
        assert_eq!(
            element["initial_value"].as_str().unwrap().chars().count(),
            350
        );
        let quote = modal["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(char_len(quote) <= SECTION_MAX, "{}", char_len(quote));
        assert!(quote.contains("&lt;!channel&gt;"), "escaped: {quote}");
        assert!(modal["title"]["text"].as_str().unwrap().chars().count() <= 24);
        let metadata = modal["private_metadata"].as_str().unwrap();
        assert!(metadata.len() <= PRIVATE_METADATA_MAX);
        let (button, url) = Carried::decode(metadata).unwrap();
        assert_eq!(button.app, app);
        assert_eq!(
            url.as_deref(),
            Some("https://hooks.slack.com/actions/T1/1/x")
        );
        assert_eq!(modal["callback_id"], REPLY_VIEW);
    }

    #[test]
    fn carried_metadata_is_checked_again_when_it_comes_back() {
        assert_eq!(Carried::decode("not json"), None);
        let bad_review = Carried {
            review: "app_store:1234567890:../apps".into(),
            response_url: None,
        };
        assert_eq!(Carried::decode(&bad_review.encode()), None);
        let elsewhere = Carried {
            review: "app_store:1234567890:r1".into(),
            response_url: Some("https://example.com/hook".into()),
        };
        let (_, url) = Carried::decode(&elsewhere.encode()).unwrap();
        assert_eq!(
            url, None,
            "a response_url not on hooks.slack.com is never used"
        );
    }
}
