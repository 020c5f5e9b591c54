//! `slack`: a Block Kit message for an incoming webhook.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{ratings_page, truncate_chars};
use crate::domain::{AppId, Review};

/// Slack refuses a section text longer than this.
const SECTION_TEXT_MAX: usize = 3_000;

/// Slack's control characters in text. Escaping them keeps `<!channel>` from pinging anyone.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn stars(rating: Option<u8>) -> String {
    match rating {
        Some(r @ 1..=5) => "★".repeat(r.into()) + &"☆".repeat((5 - r).into()),
        _ => "(no rating)".to_owned(),
    }
}

pub fn message(app: &AppId, review: &Review) -> Value {
    let title = review.title.as_deref().map(escape).unwrap_or_default();
    let heading = if title.is_empty() {
        stars(review.rating)
    } else {
        format!(
            "{}  *{}*",
            stars(review.rating),
            truncate_chars(&title, 250)
        )
    };
    let body = review.body.as_deref().map(escape).unwrap_or_default();
    let text = truncate_chars(&format!("{heading}\n{body}"), SECTION_TEXT_MAX);

    let mut context = vec![format!(
        "by {}",
        review
            .reviewer_nickname
            .as_deref()
            .map(escape)
            .unwrap_or_else(|| "an anonymous reviewer".into())
    )];
    if let Some(territory) = &review.territory {
        context.push(escape(territory));
    }
    context.push(display_date(review));
    context.push(format!("<{}|App {app}>", ratings_page(app)));

    json!({
        "text": format!("New {} review of app {app}", stars(review.rating)),
        "unfurl_links": false,
        "unfurl_media": false,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context.join(" · ")}]},
        ]
    })
}

/// `2024-02-03 12:05 UTC`.
fn display_date(review: &Review) -> String {
    let nanos = review.key().nanos;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| escape(&review.created_date))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn shows_stars_date_and_link_without_a_title() {
        let m = message(&AppId::parse("9").unwrap(), &review(None, None, None));
        let text = all_text(&m);
        assert!(text.contains("★★☆☆☆"));
        assert!(text.contains("2024-02-03 12:05 UTC"));
        assert!(text.contains("an anonymous reviewer"));
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
        assert_eq!(section.chars().count(), SECTION_TEXT_MAX);
        assert!(section.ends_with('…'));
    }
}
