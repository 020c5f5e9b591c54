//! The modal a click on Reply opens: the review quoted, and a text input that holds no more than
//! the store takes (and no more than Slack's 3,000 characters for an input).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::request::{
    ANSWER_BLOCK, ANSWER_INPUT, ButtonValue, REPLY_VIEW, ResponseUrls, reply_button_at,
};
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
/// `response_url` of its own), as its `private_metadata`: a few hundred characters, whatever the
/// message (that is kept in the table, under `message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// The button's value: the store, the app, the review.
    pub review: String,
    /// The click's `response_url`, when Slack gave one on hooks.slack.com.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<String>,
    /// The key the clicked message is kept under, when it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the click came (Unix seconds): its `response_url` lasts 30 minutes.
    #[serde(default)]
    pub clicked_at: i64,
}

/// [`Carried`], checked again on its way back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedBack {
    pub review: ButtonValue,
    pub response_url: Option<String>,
    pub message: Option<String>,
    pub clicked_at: i64,
}

impl Carried {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads `private_metadata` back; the review is checked again, a `response_url` that is not
    /// Slack's is dropped, and a message key of another shape too.
    pub fn decode(metadata: &str, urls: &ResponseUrls) -> Option<CarriedBack> {
        let carried: Carried = serde_json::from_str(metadata).ok()?;
        let review = ButtonValue::parse(&carried.review).ok()?;
        Some(CarriedBack {
            review,
            response_url: carried.response_url.filter(|u| urls.allows(u)),
            message: carried.message.filter(|key| is_message_key(key)),
            clicked_at: carried.clicked_at,
        })
    }
}

/// A kept message's key: 32 lowercase hex digits.
pub fn is_message_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A fresh key for a kept message.
pub fn new_message_key() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// The modal for answering `card`'s review, carrying `carried`; `initial` fills the input (the
/// answer the store holds, when it has one).
pub fn reply_modal(card: &ReviewCard<'_>, carried: &Carried, initial: Option<&str>) -> Value {
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
    let quote = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": fit_escaped(&quoted, SECTION_MAX, escape, char_len)}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
            "{} · by {} · {}", card.kind, escape(card.nickname_or_anonymous()), card.date
        )}]}),
    ];
    modal(card.review.store, quote, carried, initial)
}

/// The most blocks of the clicked message quoted in the modal.
const QUOTE_MAX_BLOCKS: usize = 6;

/// The review a click came from, as its message shows it: the section and context blocks
/// between the divider before it (or the message's start) and its Reply button. `None` when the
/// message holds no such button.
pub fn quote_from_message(message: &Value, button_value: &str) -> Option<Vec<Value>> {
    let blocks = message["blocks"].as_array()?;
    let at = reply_button_at(blocks, button_value)?;
    let start = blocks[..at]
        .iter()
        .rposition(|block| block["type"] == "divider" || block["type"] == "actions")
        .map_or(0, |i| i + 1);
    let quote: Vec<Value> = blocks[start..at]
        .iter()
        .filter(|block| block["type"] == "section" || block["type"] == "context")
        .take(QUOTE_MAX_BLOCKS)
        .map(|block| {
            // Block ids of the message mean nothing in the modal.
            let mut block = block.clone();
            if let Some(fields) = block.as_object_mut() {
                fields.remove("block_id");
            }
            block
        })
        .collect();
    (!quote.is_empty()).then_some(quote)
}

/// The modal quoting `quote` (blocks within Slack's limits, as a message had them).
pub fn modal(store: Store, quote: Vec<Value>, carried: &Carried, initial: Option<&str>) -> Value {
    let max = input_max_chars(store);
    let mut element = json!({
        "type": "plain_text_input",
        "action_id": ANSWER_INPUT,
        "multiline": true,
        "max_length": max,
    });
    // Slack keeps what someone typed when a view is updated with the same block id: the
    // store's answer goes in under another id, so it shows.
    let block_id = match initial.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => {
            element["initial_value"] = text.chars().take(max).collect::<String>().into();
            FILLED_BLOCK
        }
        None => ANSWER_BLOCK,
    };
    let mut blocks = quote;
    blocks.push(json!({
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": format!("Your answer on {}", store.name())},
        "hint": {"type": "plain_text", "text": format!(
            "Published under the review in {}; at most {max} characters.", store.name()
        )},
        "element": element,
    }));
    json!({
        "type": "modal",
        "callback_id": REPLY_VIEW,
        "title": {"type": "plain_text", "text": "Reply to review"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": carried.encode(),
        "blocks": blocks,
    })
}

/// The input's block id once the modal is filled in with the store's answer.
pub const FILLED_BLOCK: &str = "answer-current";

/// `view` (as opened) filled in with `answer`, for `views.update`; `None` when it holds no
/// answer input.
pub fn filled(view: &Value, store: Store, answer: &str) -> Option<Value> {
    let text = answer.trim();
    if text.is_empty() {
        return None;
    }
    let mut view = view.clone();
    let input = view["blocks"]
        .as_array_mut()?
        .iter_mut()
        .find(|block| block["type"] == "input")?;
    input["block_id"] = FILLED_BLOCK.into();
    input["element"]["initial_value"] = text
        .chars()
        .take(input_max_chars(store))
        .collect::<String>()
        .into();
    // What views.open answered belongs to the opened view, not to an update.
    if let Some(fields) = view.as_object_mut() {
        for read_only in [
            "id",
            "team_id",
            "state",
            "hash",
            "app_id",
            "bot_id",
            "root_view_id",
            "previous_view_id",
            "app_installed_team_id",
            "external_id",
            "clear_on_close",
            "notify_on_close",
        ] {
            fields.remove(read_only);
        }
    }
    Some(view)
}

/// The modal shown when an answer was sent but the message cannot show it.
pub fn sent_notice(store: Store, why: &str) -> Value {
    json!({
        "type": "modal",
        "title": {"type": "plain_text", "text": "Reply to review"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!(
            "Your answer is on its way to {}. {why}", store.name()
        )}}],
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
            message: Some(new_message_key()),
            clicked_at: 1_764_000_000,
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
        let back = Carried::decode(metadata, &urls()).unwrap();
        assert_eq!(back.review.app, app);
        assert_eq!(
            back.response_url.as_deref(),
            Some("https://hooks.slack.com/actions/T1/1/x")
        );
        assert_eq!(back.message, carried.message);
        assert_eq!(back.clicked_at, 1_764_000_000);
        assert_eq!(modal["callback_id"], REPLY_VIEW);
    }

    fn urls() -> ResponseUrls {
        ResponseUrls::new(&url::Url::parse("https://slack.com/api").unwrap())
    }

    #[test]
    fn the_review_is_quoted_from_the_message_clicked_and_the_answer_filled_in_after() {
        let message = json!({"blocks": [
            {"type": "section", "block_id": "a", "text": {"type": "mrkdwn", "text": "★☆☆☆☆  *Broken*"}},
            {"type": "actions", "elements": [{"type": "button", "action_id": "reply", "value": "app_store:1:r1"}]},
            {"type": "context", "block_id": "answered-1", "elements": [{"type": "mrkdwn", "text": "Answered by <@U1>: hi"}]},
            {"type": "divider"},
            {"type": "section", "text": {"type": "mrkdwn", "text": "★★★★★  *Great*"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "App Store review · by Ana"}]},
            {"type": "actions", "elements": [{"type": "button", "action_id": "reply", "value": "app_store:1:r2"}]},
        ]});
        let quote = quote_from_message(&message, "app_store:1:r2").unwrap();
        assert_eq!(quote.len(), 2);
        assert_eq!(quote[0]["text"]["text"], "★★★★★  *Great*");
        let first = quote_from_message(&message, "app_store:1:r1").unwrap();
        assert_eq!(
            first,
            vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": "★☆☆☆☆  *Broken*"}})]
        );
        assert_eq!(quote_from_message(&message, "app_store:1:r3"), None);

        let carried = Carried {
            review: "app_store:1:r2".into(),
            response_url: None,
            message: None,
            clicked_at: 0,
        };
        let opened = modal(Store::GooglePlay, quote, &carried, None);
        assert_eq!(opened["blocks"][2]["block_id"], ANSWER_BLOCK);
        let mut answered = opened.clone();
        answered["id"] = "V1".into();
        answered["hash"] = "h".into();
        let updated = filled(&answered, Store::GooglePlay, &"ü".repeat(400)).unwrap();
        assert_eq!(updated["blocks"][2]["block_id"], FILLED_BLOCK);
        assert_eq!(
            updated["blocks"][2]["element"]["initial_value"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            350
        );
        assert!(updated.get("id").is_none() && updated.get("hash").is_none());
        assert_eq!(updated["private_metadata"], opened["private_metadata"]);
        assert_eq!(filled(&opened, Store::GooglePlay, "  "), None);
    }

    #[test]
    fn carried_metadata_is_checked_again_when_it_comes_back() {
        assert_eq!(Carried::decode("not json", &urls()), None);
        let bad_review = Carried {
            review: "app_store:1234567890:../apps".into(),
            response_url: None,
            message: None,
            clicked_at: 0,
        };
        assert_eq!(Carried::decode(&bad_review.encode(), &urls()), None);
        let elsewhere = Carried {
            review: "app_store:1234567890:r1".into(),
            response_url: Some("https://example.com/hook".into()),
            message: Some("../other".into()),
            clicked_at: 0,
        };
        let back = Carried::decode(&elsewhere.encode(), &urls()).unwrap();
        assert_eq!(
            back.response_url, None,
            "a response_url not on hooks.slack.com is never used"
        );
        assert_eq!(back.message, None);
    }
}
