//! The review message after an answer: every review it showed stays, and under the one answered
//! a line says who answered what, and what the store said.

use serde_json::{Value, json};

use super::request::reply_button_at;
use crate::adapters::webhooks::slack::escape;
use crate::adapters::webhooks::{char_len, fit_escaped};

/// Slack refuses a context element's text longer than this.
const CONTEXT_MAX: usize = 2_000;

/// `message` (the click's copy of the review message) with `line` (mrkdwn, from
/// [`answered_line`]) under the review whose Reply
/// button carries `button_value`, for `response_url` with `replace_original`. The block after
/// that button (a line of an earlier answer, say) is replaced; `None` when the message holds no
/// such button (nothing to update).
pub fn with_answer_line(message: &Value, button_value: &str, line: &str) -> Option<Value> {
    let blocks = message["blocks"].as_array()?;
    let at = reply_button_at(blocks, button_value)?;
    // Named after the button, not its place: lines added above move it.
    let block_id = format!("answered-{}", crate::domain::text_digest(button_value));
    let context = json!({
        "type": "context",
        "block_id": block_id,
        "elements": [{"type": "mrkdwn", "text": line}],
    });
    let mut blocks = blocks.clone();
    match blocks.get(at + 1) {
        Some(next) if next["block_id"] == block_id.as_str() => blocks[at + 1] = context,
        _ => blocks.insert(at + 1, context),
    }
    let mut updated = json!({
        "replace_original": true,
        "blocks": blocks,
    });
    if let Some(text) = message["text"].as_str() {
        updated["text"] = text.into();
    }
    Some(updated)
}

/// `Answered by <@U…> (state): …`, the answer as the store kept it, escaped and cut to fit
/// Slack's context limit; the mention only for an id of Slack's shape.
pub fn answered_line(user_id: &str, answer: &str, state: Option<&str>) -> String {
    let who = mention(user_id);
    let state = state.map_or(String::new(), |s| format!(" ({})", escape(s)));
    let prefix = format!("Answered by {who}{state}: ");
    let room = CONTEXT_MAX.saturating_sub(char_len(&prefix));
    prefix + &fit_escaped(answer, room, escape, char_len)
}

/// `Answer by <@U…> not sent: …`, the reason escaped and cut to fit Slack's context limit.
pub fn not_sent_line(user_id: &str, reason: &str) -> String {
    let prefix = format!("Answer by {} not sent: ", mention(user_id));
    let room = CONTEXT_MAX.saturating_sub(char_len(&prefix));
    prefix + &fit_escaped(reason, room, escape, char_len)
}

fn mention(user_id: &str) -> String {
    if !user_id.is_empty() && user_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        format!("<@{user_id}>")
    } else {
        "someone".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Value {
        json!({
            "text": "2 new reviews of Tally",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "★☆☆☆☆  *Broken*"}},
                {"type": "actions", "elements": [{"type": "button", "action_id": "reply", "value": "app_store:1:r1"}]},
                {"type": "divider"},
                {"type": "section", "text": {"type": "mrkdwn", "text": "★★★★★  *Great*"}},
                {"type": "actions", "elements": [{"type": "button", "action_id": "reply", "value": "app_store:1:r2"}]},
            ],
        })
    }

    #[test]
    fn the_line_goes_under_the_review_answered_and_every_review_stays() {
        let line = answered_line("U1", "Fixed in 2.1 <!channel>", Some("PENDING_PUBLISH"));
        let updated = with_answer_line(&message(), "app_store:1:r1", &line).unwrap();
        let blocks = updated["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 6);
        assert_eq!(updated["replace_original"], true);
        assert_eq!(updated["text"], "2 new reviews of Tally");
        assert_eq!(blocks[2]["type"], "context");
        let text = blocks[2]["elements"][0]["text"].as_str().unwrap();
        assert_eq!(
            text,
            "Answered by <@U1> (PENDING_PUBLISH): Fixed in 2.1 &lt;!channel&gt;"
        );
        assert_eq!(
            answered_line("U1> <!here", "x", None),
            "Answered by someone: x",
            "no mention but of a user id"
        );
        assert_eq!(blocks[4]["text"]["text"], "★★★★★  *Great*");

        // Answering again replaces the line rather than adding one.
        let again = with_answer_line(&updated, "app_store:1:r1", "Answered again").unwrap();
        assert_eq!(again["blocks"].as_array().unwrap().len(), 6);
        assert_eq!(again["blocks"][2]["elements"][0]["text"], "Answered again");

        assert_eq!(with_answer_line(&message(), "app_store:1:r9", &line), None);
        assert_eq!(with_answer_line(&json!({}), "app_store:1:r1", &line), None);
    }

    #[test]
    fn the_line_finds_the_button_of_a_message_as_review_relay_sends_it() {
        use crate::adapters::webhooks::first_message;
        use crate::config::WebhookFormat;
        use crate::domain::{AppId, Review};

        let app = AppId::play("com.example.app").unwrap();
        let review = |id: &str, title: &str| {
            Review::new(
                id.into(),
                Some(2),
                Some(title.into()),
                Some("Closes on start.".into()),
                None,
                None,
                "2026-11-20T10:00:00Z".into(),
                None,
            )
            .unwrap()
            .in_store(crate::domain::Store::GooglePlay)
        };
        let first = review("gp:AOqpTOF1", "Crashes");
        // An edit is sent under a versioned id; its button names the store's review.
        let second = review("gp:AOqpTOF2", "Still crashes").as_edit_of(Some(4));
        let sent = first_message(
            WebhookFormat::Slack,
            true,
            &app,
            Some("Tally"),
            &[&first, &second],
        )
        .unwrap();
        assert_eq!(sent.review_count, 2);
        let message = sent.body;
        let before = message["blocks"].as_array().unwrap().clone();

        let line = answered_line("U1", "Fixed in 2.1", Some("published"));
        let updated =
            with_answer_line(&message, "google_play:com.example.app:gp:AOqpTOF2", &line).unwrap();
        let blocks = updated["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), before.len() + 1);
        assert_eq!(updated["text"], message["text"]);
        // The line is last: under the second review's button, itself the last block sent.
        assert_eq!(blocks[..before.len()], before[..]);
        let last = blocks.last().unwrap();
        assert_eq!(last["type"], "context");
        assert_eq!(
            last["elements"][0]["text"],
            "Answered by <@U1> (published): Fixed in 2.1"
        );

        // The first review's button is found too, and the line goes right under it.
        let updated =
            with_answer_line(&message, "google_play:com.example.app:gp:AOqpTOF1", &line).unwrap();
        let blocks = updated["blocks"].as_array().unwrap();
        let button = blocks.iter().position(|b| b["type"] == "actions").unwrap();
        assert_eq!(blocks[button + 1]["elements"][0]["text"], line.as_str());
        assert_eq!(blocks[button + 2]["type"], "divider");

        // A plain message has no button to answer under.
        let plain = first_message(WebhookFormat::Slack, false, &app, None, &[&first]).unwrap();
        assert_eq!(
            with_answer_line(
                &plain.body,
                "google_play:com.example.app:gp:AOqpTOF1",
                &line
            ),
            None
        );
    }

    #[test]
    fn a_long_answer_is_cut_within_slacks_context_limit() {
        let line = answered_line("U1", &"x".repeat(5_000), None);
        let updated = with_answer_line(&message(), "app_store:1:r2", &line).unwrap();
        let text = updated["blocks"][5]["elements"][0]["text"]
            .as_str()
            .unwrap();
        assert!(char_len(text) <= CONTEXT_MAX);
        assert!(text.ends_with('…'));
    }
}
