//! `discord`: an execute-webhook body with one embed per review.
//!
//! Discord's embed limits are counted here in UTF-16 code units, which is never fewer than
//! characters: an emoji counts twice, so a message full of emoji is still accepted.

use serde_json::{Value, json};

use super::{MessageFormat, ORIGINAL_HEADING, ReviewCard, fit_escaped, utf16_len};
use crate::domain::Review;

/// Discord refuses a message with more embeds than this.
pub const MAX_EMBEDS: usize = 10;
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 4_096;
const FIELD_VALUE_MAX: usize = 1_024;
const AUTHOR_NAME_MAX: usize = 256;
/// Title, description, field names and values, footer text and author name, over all embeds.
const EMBEDS_TOTAL_MAX: usize = 6_000;
/// A nickname is a name, not a paragraph.
const NICKNAME_MAX: usize = 128;

const RED: u32 = 0xED4245;
const AMBER: u32 = 0xF0B232;
const GREEN: u32 = 0x57F287;
const GREY: u32 = 0x99AAB5;

/// User text as Discord markdown that reads as typed and can ping no one: markdown characters
/// are backslash-escaped, `<` too (so `<@123>`, `<@&123>` and `<#123>` are no mentions), and a
/// zero-width space follows every `@` (so `@everyone` and `@here` are plain words).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut line_start = true;
    for c in text.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '>' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            // Headings, lists and quotes only begin a line.
            '#' | '-' | '+' if line_start => {
                out.push('\\');
                out.push(c);
            }
            '@' => out.push_str("@\u{200B}"),
            _ => out.push(c),
        }
        line_start = c == '\n' || (line_start && (c == ' ' || c == '\t'));
    }
    out
}

pub fn colour(rating: Option<u8>) -> u32 {
    match rating {
        Some(1 | 2) => RED,
        Some(3) => AMBER,
        Some(4 | 5) => GREEN,
        _ => GREY,
    }
}

/// What Discord counts of an embed towards [`EMBEDS_TOTAL_MAX`], in UTF-16 code units.
pub fn embed_len(embed: &Value) -> usize {
    let len = |value: &Value| value.as_str().map_or(0, utf16_len);
    len(&embed["title"])
        + len(&embed["description"])
        + len(&embed["author"]["name"])
        + len(&embed["footer"]["text"])
        + embed["fields"].as_array().map_or(0, |fields| {
            fields
                .iter()
                .map(|f| len(&f["name"]) + len(&f["value"]))
                .sum()
        })
}

/// The review's instant in UTC, ISO 8601, which Discord shows in each reader's own time zone.
fn timestamp(review: &Review) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(review.key().nanos)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

pub struct Discord;

impl MessageFormat for Discord {
    fn render(&self, card: &ReviewCard<'_>) -> Value {
        let title = match card.title {
            None => card.stars.clone(),
            Some(title) => {
                let prefix = format!("{}  ", card.stars);
                let room = TITLE_MAX - utf16_len(&prefix);
                prefix + &fit_escaped(title, room, escape, utf16_len)
            }
        };
        let author = fit_escaped(&card.app_name, AUTHOR_NAME_MAX, escape, utf16_len);
        // (name, value, inline)
        let mut fields = vec![
            (
                "Reviewer",
                fit_escaped(
                    card.nickname_or_anonymous(),
                    NICKNAME_MAX,
                    escape,
                    utf16_len,
                ),
                true,
            ),
            (card.place_label(), escape(&card.place_value()), true),
            ("Date", card.date.clone(), true),
        ];
        if let Some(original) = &card.original {
            fields.push((
                ORIGINAL_HEADING,
                fit_escaped(original, FIELD_VALUE_MAX, escape, utf16_len),
                false,
            ));
        }
        if let Some(reply) = card.reply {
            fields.push((
                "Developer response",
                fit_escaped(reply, FIELD_VALUE_MAX, escape, utf16_len),
                false,
            ));
        }

        // The description gets whatever the other parts leave of the message's total.
        let used = utf16_len(&title)
            + utf16_len(&author)
            + utf16_len(&card.kind)
            + fields
                .iter()
                .map(|(name, value, _)| utf16_len(name) + utf16_len(value))
                .sum::<usize>();
        let room = DESCRIPTION_MAX.min(EMBEDS_TOTAL_MAX.saturating_sub(used));

        let mut embed = json!({
            "author": {"name": author, "url": card.link},
            "title": title,
            "url": card.link,
            "color": colour(card.review.rating),
            "fields": fields
                .iter()
                .map(|(name, value, inline)| json!({"name": name, "value": value, "inline": inline}))
                .collect::<Vec<_>>(),
            "footer": {"text": card.kind},
        });
        if let Some(body) = card.body {
            embed["description"] = fit_escaped(body, room, escape, utf16_len).into();
        }
        if let Some(timestamp) = timestamp(card.review) {
            embed["timestamp"] = timestamp.into();
        }

        json!({
            // Nothing in this message may notify anyone, whatever the text says.
            "allowed_mentions": {"parse": []},
            "embeds": [embed],
        })
    }

    /// One message carrying the embeds of `messages` (each [`MessageFormat::render`]ed alone), in order. One
    /// message is returned as it is; none gives `null`.
    fn join(&self, _app_name: &str, messages: &[Value]) -> Value {
        match messages {
            [] => return Value::Null,
            [only] => return only.clone(),
            _ => {}
        }
        let embeds: Vec<Value> = messages
            .iter()
            .flat_map(|m| m["embeds"].as_array().cloned().unwrap_or_default())
            .collect();
        json!({
            "allowed_mentions": {"parse": []},
            "embeds": embeds,
        })
    }

    /// Whether Discord takes `message`: at most [`MAX_EMBEDS`] embeds and [`EMBEDS_TOTAL_MAX`]
    /// over all of them (each embed's own parts are already within their limits).
    fn fits(&self, message: &Value) -> bool {
        let embeds = message["embeds"].as_array().map_or(&[][..], Vec::as_slice);
        embeds.len() <= MAX_EMBEDS
            && embeds.iter().map(embed_len).sum::<usize>() <= EMBEDS_TOTAL_MAX
    }

    fn max_per_message(&self) -> usize {
        MAX_EMBEDS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::webhooks::payload;
    use crate::config::WebhookFormat;
    use crate::domain::AppId;

    fn message(app: &AppId, review: &Review) -> Value {
        payload(WebhookFormat::Discord, app, review)
    }
    use crate::domain::DeveloperResponse;

    fn review(
        rating: Option<u8>,
        title: Option<&str>,
        body: Option<&str>,
        nickname: Option<&str>,
    ) -> Review {
        Review::new(
            "r1".into(),
            rating,
            title.map(Into::into),
            body.map(Into::into),
            nickname.map(Into::into),
            Some("JPN".into()),
            "2024-02-03T04:05:06-08:00".into(),
            None,
        )
        .unwrap()
    }

    fn app() -> AppId {
        AppId::parse("9").unwrap()
    }

    fn embed_text(m: &Value) -> Vec<String> {
        let e = &m["embeds"][0];
        let mut parts = vec![
            e["title"].as_str().unwrap_or_default().to_owned(),
            e["description"].as_str().unwrap_or_default().to_owned(),
            e["author"]["name"].as_str().unwrap_or_default().to_owned(),
            e["footer"]["text"].as_str().unwrap_or_default().to_owned(),
        ];
        for f in e["fields"].as_array().unwrap() {
            parts.push(f["name"].as_str().unwrap().to_owned());
            parts.push(f["value"].as_str().unwrap().to_owned());
        }
        parts
    }

    #[test]
    fn nothing_a_reviewer_writes_can_ping() {
        let m = message(
            &app(),
            &review(
                Some(5),
                Some("@everyone look"),
                Some("@here <@123> <@&456> <#789> <@!42>"),
                Some("@everyone"),
            ),
        );
        assert_eq!(m["allowed_mentions"], json!({"parse": []}));
        let all = embed_text(&m).join("\n");
        for live in [
            "@everyone",
            "@here",
            "<@123>",
            "<@&456>",
            "<#789>",
            "<@!42>",
        ] {
            assert!(!all.contains(live), "{live} survived in {all}");
        }
        assert!(all.contains("@\u{200B}here \\<@\u{200B}123\\>"));
    }

    #[test]
    fn markdown_is_escaped_where_it_would_format() {
        assert_eq!(
            escape("**bold** _it_ ~~s~~ `c` ||sp|| [l](u) > q"),
            r"\*\*bold\*\* \_it\_ \~\~s\~\~ \`c\` \|\|sp\|\| \[l\](u) \> q"
        );
        assert_eq!(
            escape("# h\n - item\nwell-known #1"),
            "\\# h\n \\- item\nwell-known #1"
        );
        assert_eq!(escape(r"a\b"), r"a\\b");
    }

    #[test]
    fn colour_follows_the_rating() {
        let colour_of = |rating| {
            message(&app(), &review(rating, None, None, None))["embeds"][0]["color"].clone()
        };
        assert_eq!(colour_of(Some(1)), RED);
        assert_eq!(colour_of(Some(2)), RED);
        assert_eq!(colour_of(Some(3)), AMBER);
        assert_eq!(colour_of(Some(4)), GREEN);
        assert_eq!(colour_of(Some(5)), GREEN);
        assert_eq!(colour_of(None), GREY);
    }

    #[test]
    fn limits_hold_for_long_multibyte_text() {
        let long = "漢字👍مرحبا".repeat(2_000);
        let mut r = review(Some(1), Some(&long), Some(&long), Some(&long));
        r.response = Some(DeveloperResponse {
            body: long.clone(),
            last_modified_date: None,
        });
        let m = Discord.render(&ReviewCard::new(&app(), &r).with_app_name(&long));
        let e = &m["embeds"][0];
        let len = |v: &Value| utf16_len(v.as_str().unwrap());
        assert!(len(&e["title"]) <= TITLE_MAX);
        assert!(len(&e["description"]) <= DESCRIPTION_MAX);
        assert!(len(&e["author"]["name"]) <= AUTHOR_NAME_MAX);
        for f in e["fields"].as_array().unwrap() {
            assert!(len(&f["value"]) <= FIELD_VALUE_MAX);
        }
        let total: usize = embed_text(&m).iter().map(|t| utf16_len(t)).sum();
        assert!(total <= EMBEDS_TOTAL_MAX, "{total}");
        assert!(e["description"].as_str().unwrap().ends_with('…'));
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .starts_with("漢字👍مرحبا")
        );
    }

    #[test]
    fn a_missing_title_and_body_leave_stars_and_no_description() {
        let m = message(&app(), &review(Some(3), None, None, None));
        let e = &m["embeds"][0];
        assert_eq!(e["title"], "★★★☆☆");
        assert!(e.get("description").is_none());
        assert_eq!(e["timestamp"], "2024-02-03T12:05:06Z");
        assert_eq!(e["fields"][0]["value"], "an anonymous reviewer");
        assert_eq!(e["fields"][1]["value"], "🇯🇵 Japan");
        assert!(
            e["url"]
                .as_str()
                .unwrap()
                .starts_with("https://appstoreconnect.apple.com/apps/9/")
        );
    }
}
