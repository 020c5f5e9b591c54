//! `slack`: a Block Kit message for an incoming webhook.

use serde_json::{Value, json};

use std::time::Duration;

use super::{MessageFormat, ORIGINAL_HEADING, ReviewCard, char_len, fit_escaped, truncate_chars};
use crate::adapters::slack::request::REPLY_ACTION;

/// Slack refuses a section or context text longer than this.
const TEXT_MAX: usize = 3_000;
/// A title is a heading, not a second body.
const TITLE_MAX: usize = 250;
/// Slack refuses a message with more blocks than this.
pub const MAX_BLOCKS: usize = 50;
/// Slack refuses (`msg_blocks_too_long`) a message whose blocks carry much more text than this
/// in all: documented for markdown blocks, observed near 13,000 characters for the others.
pub const BLOCKS_TEXT_MAX: usize = 12_000;

/// Slack's control characters in text. Escaping them keeps `<!channel>` from pinging anyone.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn blocks_of(message: &Value) -> &[Value] {
    message["blocks"].as_array().map_or(&[], Vec::as_slice)
}

/// The text a block shows: a section's, a context element's, a button's label.
fn block_text_len(block: &Value) -> usize {
    let text = |value: &Value| value.as_str().map_or(0, char_len);
    text(&block["text"]["text"])
        + block["elements"].as_array().map_or(0, |elements| {
            elements
                .iter()
                .map(|e| text(&e["text"]) + text(&e["text"]["text"]))
                .sum()
        })
}

/// What the Reply button says.
const REPLY_LABEL: &str = "Reply";

/// The block holding a review's Reply button, whose value names the review. No `block_id`:
/// block ids must be unique within a message, and reviews are joined into one.
fn reply_actions(value: &str) -> Value {
    json!({"type": "actions", "elements": [{
        "type": "button",
        "action_id": REPLY_ACTION,
        "text": {"type": "plain_text", "text": REPLY_LABEL},
        "value": value,
    }]})
}

/// Slack: a review is two to five blocks and a divider, and a notification listing more is
/// no longer read.
const MAX_REVIEWS: usize = 16;
/// Slack takes about one message a second per incoming webhook.
const PACE: Duration = Duration::from_secs(1);

pub struct Slack;

impl MessageFormat for Slack {
    fn render(&self, card: &ReviewCard<'_>) -> Value {
        let heading = match card.title {
            None => card.stars.clone(),
            Some(title) => format!(
                "{}  *{}*",
                card.stars,
                fit_escaped(title, TITLE_MAX, escape, char_len)
            ),
        };
        let text = match card.body {
            None => heading,
            Some(body) => {
                let room = TEXT_MAX.saturating_sub(char_len(&heading) + 1);
                format!("{heading}\n{}", fit_escaped(body, room, escape, char_len))
            }
        };

        let context = [
            card.kind.clone(),
            format!(
                "by {}",
                escape(&truncate_chars(card.nickname_or_anonymous(), 100))
            ),
            escape(&card.territory_display()),
            card.date.clone(),
            format!("<{}|{}>", card.link, escape(&card.app_name)),
        ]
        .join(" · ");

        let mut blocks = vec![
            json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}),
            json!({"type": "context", "elements": [
                {"type": "mrkdwn", "text": truncate_chars(&context, TEXT_MAX)}
            ]}),
        ];
        if let Some(original) = &card.original {
            let heading = format!("*{ORIGINAL_HEADING}*\n");
            let room = TEXT_MAX - char_len(&heading);
            blocks.push(json!({"type": "section", "text": {
                "type": "mrkdwn",
                "text": format!("{heading}{}", fit_escaped(original, room, escape, char_len)),
            }}));
        }
        if let Some(reply) = card.reply {
            let heading = "*Developer response*\n";
            let room = TEXT_MAX - char_len(heading);
            blocks.push(json!({"type": "section", "text": {
                "type": "mrkdwn",
                "text": format!("{heading}{}", fit_escaped(reply, room, escape, char_len)),
            }}));
        }
        if let Some(value) = &card.reply_button {
            blocks.push(reply_actions(value));
        }

        json!({
            "text": format!("New {} review of {}", card.stars, escape(&card.app_name)),
            "unfurl_links": false,
            "unfurl_media": false,
            "blocks": blocks,
        })
    }

    /// One message carrying the reviews of `messages` (each [`MessageFormat::render`]ed alone, all of the app
    /// called `app_name`), in order, a divider between two reviews. One message is returned as it
    /// is; none gives `null`.
    fn join(&self, app_name: &str, messages: &[Value]) -> Value {
        let (first, rest) = match messages {
            [] => return Value::Null,
            [only] => return only.clone(),
            [first, rest @ ..] => (first, rest),
        };
        let mut blocks = blocks_of(first).to_vec();
        for message in rest {
            blocks.push(json!({"type": "divider"}));
            blocks.extend_from_slice(blocks_of(message));
        }
        json!({
            "text": format!("{} new reviews of {}", messages.len(), escape(app_name)),
            "unfurl_links": false,
            "unfurl_media": false,
            "blocks": blocks,
        })
    }

    /// Whether Slack takes `message`: [`MAX_BLOCKS`], and [`BLOCKS_TEXT_MAX`] over all blocks' text
    /// (each text is already within its own limit). Under each Reply button a block is kept
    /// free for the line an answer adds, so the message still fits once every review in it
    /// is answered.
    fn fits(&self, message: &Value) -> bool {
        let blocks = blocks_of(message);
        let answer_lines = blocks.iter().filter(|b| b["type"] == "actions").count();
        blocks.len() + answer_lines <= MAX_BLOCKS
            && blocks.iter().map(block_text_len).sum::<usize>() <= BLOCKS_TEXT_MAX
    }

    fn max_per_message(&self) -> usize {
        MAX_REVIEWS
    }

    fn pace(&self) -> Duration {
        PACE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::webhooks::payload;
    use crate::config::WebhookFormat;
    use crate::domain::{AppId, Review};

    fn message(app: &AppId, review: &Review) -> Value {
        payload(WebhookFormat::Slack, app, review)
    }
    use crate::domain::DeveloperResponse;

    fn review(title: Option<&str>, body: Option<&str>, nickname: Option<&str>) -> Review {
        Review::new(
            "r1".into(),
            Some(2),
            title.map(Into::into),
            body.map(Into::into),
            nickname.map(Into::into),
            Some("USA".into()),
            "2024-02-03T04:05:06-08:00".into(),
            None,
        )
        .unwrap()
    }

    fn all_text(message: &Value) -> String {
        message["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.to_string())
            .collect()
    }

    #[test]
    fn mentions_and_markup_are_escaped() {
        let m = message(
            &AppId::parse("9").unwrap(),
            &review(
                Some("<!here> & <@U123>"),
                Some("<!channel> <https://x|y>"),
                Some("<!everyone>"),
            ),
        );
        let text = all_text(&m);
        for raw in [
            "<!here>",
            "<!channel>",
            "<@U123>",
            "<https://x|y>",
            "<!everyone>",
        ] {
            assert!(!text.contains(raw), "{raw} survived in {text}");
        }
        assert!(text.contains("&lt;!channel&gt;") && text.contains("&amp;"));
    }

    #[test]
    fn shows_stars_date_territory_and_link_without_a_title() {
        let m = message(&AppId::parse("9").unwrap(), &review(None, None, None));
        let text = all_text(&m);
        assert!(text.contains("★★☆☆☆"));
        assert!(text.contains("2024-02-03 12:05 UTC"));
        assert!(text.contains("an anonymous reviewer"));
        assert!(text.contains("🇺🇸 United States"));
        assert!(text.contains("https://appstoreconnect.apple.com/apps/9/"));
    }

    #[test]
    fn long_bodies_fit_slacks_section_limit() {
        let body = "ü".repeat(10_000);
        let m = message(
            &AppId::parse("9").unwrap(),
            &review(Some("t"), Some(&body), None),
        );
        let section = m["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(section.chars().count(), TEXT_MAX);
        assert!(section.ends_with('…'));
    }

    #[test]
    fn a_cut_never_leaves_half_an_escape() {
        let body = "<".repeat(5_000);
        let m = message(
            &AppId::parse("9").unwrap(),
            &review(None, Some(&body), None),
        );
        let section = m["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(section.chars().count() <= TEXT_MAX);
        assert!(
            section.ends_with("&lt;…"),
            "{}",
            &section[section.len() - 20..]
        );
    }

    #[test]
    fn the_developer_response_is_shown_when_there_is_one() {
        let mut r = review(Some("t"), Some("b"), None);
        r.response = Some(DeveloperResponse {
            body: "Thanks <!here>".into(),
            last_modified_date: None,
        });
        let m = message(&AppId::parse("9").unwrap(), &r);
        assert_eq!(
            m["blocks"][2]["text"]["text"],
            "*Developer response*\nThanks &lt;!here&gt;"
        );
        let m = message(&AppId::parse("9").unwrap(), &review(None, None, None));
        assert_eq!(m["blocks"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn an_interactive_card_ends_with_a_reply_button_naming_the_review() {
        let app = AppId::parse("9").unwrap();
        let mut r = review(Some("t"), Some("b"), None);
        r.response = Some(DeveloperResponse {
            body: "Thanks".into(),
            last_modified_date: None,
        });
        let plain = Slack.render(&ReviewCard::new(&app, &r));
        let with_button = Slack.render(&ReviewCard::new(&app, &r).with_reply_button());
        let blocks = with_button["blocks"].as_array().unwrap();
        // Every block of the plain message, in order, then the button.
        assert_eq!(
            blocks[..blocks.len() - 1],
            plain["blocks"].as_array().unwrap()[..]
        );
        assert_eq!(
            blocks.last().unwrap(),
            &json!({"type": "actions", "elements": [{
                "type": "button",
                "action_id": "reply",
                "text": {"type": "plain_text", "text": "Reply"},
                "value": "app_store:9:r1",
            }]})
        );
        assert_eq!(with_button["text"], plain["text"]);
        assert!(
            plain["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["type"] != "actions")
        );
    }

    #[test]
    fn a_button_is_left_out_rather_than_carry_a_value_the_endpoint_refuses() {
        let app = AppId::parse("9").unwrap();
        let mut r = review(None, None, None);
        r.id = "r".repeat(3_000);
        let card = ReviewCard::new(&app, &r).with_reply_button();
        assert_eq!(card.reply_button, None);
        let m = Slack.render(&card);
        assert_eq!(m["blocks"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_known_app_name_replaces_the_id() {
        let app = AppId::parse("9").unwrap();
        let r = review(None, None, None);
        let m = Slack.render(&ReviewCard::new(&app, &r).with_app_name("Tally & Co"));
        assert_eq!(m["text"], "New ★★☆☆☆ review of Tally &amp; Co");
    }
}
