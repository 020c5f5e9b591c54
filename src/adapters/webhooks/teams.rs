//! `teams`: an Adaptive Card (1.4) message for a Microsoft Teams Workflows webhook.

use serde_json::{Value, json};

use super::{
    MessageFormat, ORIGINAL_HEADING, ReviewCard, char_len, fit_bytes, fit_escaped, json_len,
};

/// Teams refuses a message body larger than 28 KB.
const MESSAGE_MAX_BYTES: usize = 28_000;
/// A title is a heading, not a second body.
const TITLE_MAX: usize = 256;
/// A nickname is a name, not a paragraph.
const NICKNAME_MAX: usize = 128;

/// User text for a TextBlock, whose markdown knows bold, italics, lists and links: those
/// characters are backslash-escaped, and a zero-width space after each `<` keeps an `<at>` tag
/// (or any other) from being read as one.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut line_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '-' | '+' | '>' if line_start => {
                out.push('\\');
                out.push(c);
            }
            // `1. ` begins a numbered list.
            '0'..='9' if line_start => {
                out.push(c);
                while let Some(digit) = chars.next_if(char::is_ascii_digit) {
                    out.push(digit);
                }
                if chars.next_if_eq(&'.').is_some() {
                    out.push_str("\\.");
                }
                line_start = false;
                continue;
            }
            '<' => out.push_str("<\u{200B}"),
            _ => out.push(c),
        }
        line_start = c == '\n' || (line_start && (c == ' ' || c == '\t'));
    }
    out
}

/// Teams has no count limit below its size limit; a longer card is no longer read.
const MAX_REVIEWS: usize = 10;

pub struct Teams;

impl MessageFormat for Teams {
    fn render(&self, card: &ReviewCard<'_>) -> Value {
        let heading = match card.title {
            None => card.stars.clone(),
            Some(title) => format!(
                "{}  {}",
                card.stars,
                fit_escaped(title, TITLE_MAX, escape, char_len)
            ),
        };
        let nickname = fit_escaped(card.nickname_or_anonymous(), NICKNAME_MAX, escape, char_len);
        let facts = json!([
            {"title": "Reviewer", "value": nickname},
            {"title": card.place_label(), "value": escape(&card.place_value())},
            {"title": "Date", "value": card.date},
        ]);
        let app_name = format!("{} · {}", escape(&card.app_name), escape(&card.kind));

        let texts = vec![
            card.body.unwrap_or_default().to_owned(),
            card.reply.unwrap_or_default().to_owned(),
            card.original.clone().unwrap_or_default(),
        ];
        fit_bytes(MESSAGE_MAX_BYTES, texts, |texts| {
            let (body, reply, original) = (&texts[0], &texts[1], &texts[2]);
            let mut blocks = vec![
                json!({"type": "TextBlock", "text": app_name, "size": "Small", "isSubtle": true,
                       "wrap": true}),
                json!({"type": "TextBlock", "text": heading, "size": "Medium", "weight": "Bolder",
                       "wrap": true}),
            ];
            if !body.is_empty() {
                blocks.push(json!({"type": "TextBlock", "text": escape(body), "wrap": true}));
            }
            if !original.is_empty() {
                blocks.push(json!({"type": "Container", "items": [
                    {"type": "TextBlock", "text": ORIGINAL_HEADING, "weight": "Bolder",
                     "isSubtle": true, "wrap": true},
                    {"type": "TextBlock", "text": escape(original), "isSubtle": true,
                     "wrap": true},
                ]}));
            }
            blocks.push(json!({"type": "FactSet", "facts": facts}));
            if !reply.is_empty() {
                blocks.push(json!({"type": "Container", "style": "emphasis", "items": [
                    {"type": "TextBlock", "text": "Developer response", "weight": "Bolder",
                     "wrap": true},
                    {"type": "TextBlock", "text": escape(reply), "wrap": true},
                ]}));
            }
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "msteams": {"width": "Full"},
                        "body": blocks,
                        "actions": [{
                            "type": "Action.OpenUrl",
                            "title": card.link_label,
                            "url": card.link,
                        }],
                    },
                }],
            })
        })
    }

    /// One Adaptive Card carrying the reviews of `messages` (each [`MessageFormat::render`]ed alone), in order, a
    /// separator line above each review but the first. One message is returned as it is; none gives
    /// `null`.
    fn join(&self, _app_name: &str, messages: &[Value]) -> Value {
        let first = match messages {
            [] => return Value::Null,
            [only] => return only.clone(),
            [first, ..] => first,
        };
        let mut joined = first.clone();
        let content = |m: &Value| m["attachments"][0]["content"].clone();
        let mut body = Vec::new();
        let mut actions: Vec<Value> = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            let content = content(message);
            let mut blocks = content["body"].as_array().cloned().unwrap_or_default();
            if let Some(top) = blocks.first_mut().filter(|_| i > 0) {
                top["separator"] = true.into();
                top["spacing"] = "Large".into();
            }
            body.extend(blocks);
            // Reviews of one app share its link: one button.
            for action in content["actions"].as_array().into_iter().flatten() {
                if !actions.contains(action) {
                    actions.push(action.clone());
                }
            }
        }
        let card = &mut joined["attachments"][0]["content"];
        card["body"] = body.into();
        card["actions"] = actions.into();
        joined
    }

    /// Whether Teams takes `message`: at most [`MESSAGE_MAX_BYTES`] as sent.
    fn fits(&self, message: &Value) -> bool {
        json_len(message) <= MESSAGE_MAX_BYTES
    }

    fn max_per_message(&self) -> usize {
        MAX_REVIEWS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::webhooks::payload;
    use crate::config::WebhookFormat;
    use crate::domain::{AppId, Review};

    fn message(app: &AppId, review: &Review) -> Value {
        payload(WebhookFormat::Teams, app, review)
    }
    use crate::domain::DeveloperResponse;

    fn review(title: Option<&str>, body: Option<&str>) -> Review {
        Review::new(
            "r1".into(),
            Some(4),
            title.map(Into::into),
            body.map(Into::into),
            Some("kim".into()),
            Some("KOR".into()),
            "2024-02-03T04:05:06-08:00".into(),
            None,
        )
        .unwrap()
    }

    fn app() -> AppId {
        AppId::parse("9").unwrap()
    }

    fn card_body(m: &Value) -> &Vec<Value> {
        m["attachments"][0]["content"]["body"].as_array().unwrap()
    }

    #[test]
    fn the_envelope_is_what_workflows_expect() {
        let m = message(&app(), &review(Some("Nice"), Some("Works")));
        assert_eq!(m["type"], "message");
        let attachment = &m["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert!(attachment["contentUrl"].is_null());
        assert_eq!(attachment["content"]["type"], "AdaptiveCard");
        assert_eq!(attachment["content"]["version"], "1.4");
        assert_eq!(card_body(&m)[1]["text"], "★★★★☆  Nice");
        assert_eq!(card_body(&m)[2]["text"], "Works");
        assert_eq!(card_body(&m)[3]["facts"][1]["value"], "🇰🇷 South Korea");
    }

    #[test]
    fn markdown_and_mention_tags_are_escaped() {
        assert_eq!(
            escape("<at>All</at> **b** _i_ [l](u)"),
            "<\u{200B}at>All<\u{200B}/at> \\*\\*b\\*\\* \\_i\\_ \\[l\\](u)"
        );
        assert_eq!(
            escape("- a\n12. b\n  # c\nx-y 3.5"),
            "\\- a\n12\\. b\n  \\# c\nx-y 3.5"
        );
        let m = message(&app(), &review(Some("<at>Team</at>"), Some("<at>x</at>")));
        assert!(!m.to_string().contains("<at>"));
    }

    #[test]
    fn the_whole_message_stays_under_28_kb() {
        let long = "漢字👍مرحبا&<*".repeat(3_000);
        let mut r = review(Some(&long), Some(&long));
        r.response = Some(DeveloperResponse {
            body: long.clone(),
            last_modified_date: None,
        });
        let m = message(&app(), &r);
        assert!(json_len(&m) <= MESSAGE_MAX_BYTES, "{}", json_len(&m));
        let body = card_body(&m)[2]["text"].as_str().unwrap();
        assert!(body.starts_with("漢字👍مرحبا&<\u{200B}\\*") && body.ends_with('…'));
        assert!(char_len(card_body(&m)[1]["text"].as_str().unwrap()) <= TITLE_MAX + 7);
    }

    #[test]
    fn a_missing_title_and_body_leave_stars_and_facts() {
        let m = message(&app(), &review(None, None));
        let body = card_body(&m);
        assert_eq!(body[1]["text"], "★★★★☆");
        assert_eq!(body[2]["type"], "FactSet");
        assert_eq!(body.len(), 3);
    }
}
