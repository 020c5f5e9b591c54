//! `googlechat`: a `cardsV2` message for a Google Chat incoming webhook, with a short text line
//! for notifications.

use serde_json::{Value, json};

use super::{
    MessageFormat, ORIGINAL_HEADING, ReviewCard, char_len, fit_bytes, fit_escaped, json_len,
};

/// Google Chat refuses a message larger than 32,000 bytes.
const MESSAGE_MAX_BYTES: usize = 32_000;
/// A title is a heading, not a second body.
const TITLE_MAX: usize = 256;
/// A nickname is a name, not a paragraph.
const NICKNAME_MAX: usize = 128;

/// User text for a card's text widgets, which read Google Chat's HTML subset: `&`, `<` and `>`
/// become entities (so `<users/all>` is text, not a mention) and line breaks become `<br>`.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

/// Text for the message's plain `text`, where `<users/…>` would mention someone: a zero-width
/// space after `<` keeps it a word.
fn plain(text: &str) -> String {
    text.replace('<', "<\u{200B}")
}

/// Google Chat has no count limit below its size limit; a longer message is no longer read.
const MAX_REVIEWS: usize = 10;

pub struct GoogleChat;

impl MessageFormat for GoogleChat {
    fn render(&self, card: &ReviewCard<'_>) -> Value {
        let title = card
            .title
            .map(|title| format!("<b>{}</b>", fit_escaped(title, TITLE_MAX, escape, char_len)));
        let nickname = fit_escaped(card.nickname_or_anonymous(), NICKNAME_MAX, escape, char_len);
        let details = json!({"widgets": [
            {"decoratedText": {"topLabel": "Reviewer", "text": nickname}},
            {"decoratedText": {"topLabel": card.place_label(), "text": escape(&card.place_value())}},
            {"decoratedText": {"topLabel": "Date", "text": card.date}},
        ]});
        let link = json!({"widgets": [{"buttonList": {"buttons": [{
            "text": card.link_label,
            "onClick": {"openLink": {"url": card.link}},
        }]}}]});
        let text = plain(&format!("New {} review of {}", card.stars, card.app_name));
        let header = json!({
            "title": format!("{} {}", card.stars, card.app_name),
            "subtitle": card.kind,
        });

        let texts = vec![
            card.body.unwrap_or_default().to_owned(),
            card.reply.unwrap_or_default().to_owned(),
            card.original.clone().unwrap_or_default(),
        ];
        fit_bytes(MESSAGE_MAX_BYTES, texts, |texts| {
            let (body, reply, original) = (&texts[0], &texts[1], &texts[2]);
            let mut review = Vec::new();
            if let Some(title) = &title {
                review.push(json!({"textParagraph": {"text": title}}));
            }
            if !body.is_empty() {
                review.push(json!({"textParagraph": {"text": escape(body)}}));
            }
            let mut sections = Vec::new();
            if !review.is_empty() {
                sections.push(json!({"widgets": review}));
            }
            if !original.is_empty() {
                sections.push(json!({
                    "header": ORIGINAL_HEADING,
                    "widgets": [{"textParagraph": {"text": escape(original)}}],
                }));
            }
            sections.push(details.clone());
            if !reply.is_empty() {
                sections.push(json!({
                    "header": "Developer response",
                    "widgets": [{"textParagraph": {"text": escape(reply)}}],
                }));
            }
            sections.push(link.clone());
            json!({
                "text": text,
                "cardsV2": [{
                    "cardId": format!("review-{}", card.review.id),
                    "card": {"header": header, "sections": sections},
                }],
            })
        })
    }

    /// One message carrying the cards of `messages` (each [`MessageFormat::render`]ed alone, all of the app called
    /// `app_name`), in order. One message is returned as it is; none gives `null`.
    fn join(&self, app_name: &str, messages: &[Value]) -> Value {
        match messages {
            [] => return Value::Null,
            [only] => return only.clone(),
            _ => {}
        }
        let cards: Vec<Value> = messages
            .iter()
            .flat_map(|m| m["cardsV2"].as_array().cloned().unwrap_or_default())
            .collect();
        json!({
            "text": plain(&format!("{} new reviews of {app_name}", messages.len())),
            "cardsV2": cards,
        })
    }

    /// Whether Google Chat takes `message`: at most [`MESSAGE_MAX_BYTES`] as sent.
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
        payload(WebhookFormat::GoogleChat, app, review)
    }
    use crate::domain::DeveloperResponse;

    fn review(title: Option<&str>, body: Option<&str>, territory: &str) -> Review {
        Review::new(
            "r1".into(),
            Some(1),
            title.map(Into::into),
            body.map(Into::into),
            None,
            Some(territory.into()),
            "2024-02-03T04:05:06-08:00".into(),
            None,
        )
        .unwrap()
    }

    fn app() -> AppId {
        AppId::parse("9").unwrap()
    }

    fn sections(m: &Value) -> &Vec<Value> {
        m["cardsV2"][0]["card"]["sections"].as_array().unwrap()
    }

    #[test]
    fn html_and_mentions_are_escaped() {
        let m = message(
            &app(),
            &review(
                Some("<users/all> & <b>"),
                Some("<users/123>\n<a href=x>y</a>"),
                "FRA",
            ),
        );
        let widgets = &sections(&m)[0]["widgets"];
        assert_eq!(
            widgets[0]["textParagraph"]["text"],
            "<b>&lt;users/all&gt; &amp; &lt;b&gt;</b>"
        );
        assert_eq!(
            widgets[1]["textParagraph"]["text"],
            "&lt;users/123&gt;<br>&lt;a href=x&gt;y&lt;/a&gt;"
        );
        assert!(!m.to_string().contains("<users/"));
    }

    #[test]
    fn shows_the_territory_date_and_link() {
        let m = message(&app(), &review(None, None, "BRA"));
        assert_eq!(m["text"], "New ★☆☆☆☆ review of App 9");
        let details = &sections(&m)[0]["widgets"];
        assert_eq!(details[1]["decoratedText"]["text"], "🇧🇷 Brazil");
        assert_eq!(details[2]["decoratedText"]["text"], "2024-02-03 12:05 UTC");
        let button = &sections(&m)[1]["widgets"][0]["buttonList"]["buttons"][0];
        assert!(
            button["onClick"]["openLink"]["url"]
                .as_str()
                .unwrap()
                .contains("/apps/9/")
        );
    }

    #[test]
    fn the_whole_message_stays_under_32000_bytes() {
        let long = "<>&".repeat(20_000);
        let mut r = review(Some("t"), Some(&long), "ZZZ");
        r.response = Some(DeveloperResponse {
            body: "مرحبا 👋".repeat(2_000),
            last_modified_date: None,
        });
        let m = message(&app(), &r);
        assert!(json_len(&m) <= MESSAGE_MAX_BYTES, "{}", json_len(&m));
        let body = sections(&m)[0]["widgets"][1]["textParagraph"]["text"]
            .as_str()
            .unwrap();
        assert!(body.ends_with('…') && body.starts_with("&lt;&gt;&amp;"));
        assert_eq!(
            sections(&m)[1]["widgets"][1]["decoratedText"]["text"],
            "ZZZ"
        );
    }
}
