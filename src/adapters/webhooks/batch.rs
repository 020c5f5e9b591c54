//! Several waiting reviews per message, within each platform's limits.
//!
//! Each review is rendered once, as it would be sent alone (so its own texts are already cut to
//! the platform's limits); then consecutive reviews of one app are joined into one message while
//! the joined message stays within the platform's limits for a whole message. A review that
//! would break them starts the next message, so a batch is split, never refused and never cut
//! further than a review sent alone.

use aws_lc_rs::digest;
use serde_json::Value;

use super::{ReviewCard, format_of};
use crate::config::WebhookFormat;
use crate::domain::{AppId, Review};

/// One POST to a webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub body: Value,
    /// How many consecutive reviews, in order, this message carries: message k carries the
    /// reviews after those of message k-1.
    pub review_count: usize,
    /// [`idempotency_key`] of the reviews it carries.
    pub idempotency_key: String,
}

/// The most reviews one message of `format` carries (fewer when the platform's size limits
/// are reached first).
pub fn max_per_message(format: WebhookFormat) -> usize {
    format_of(format).max_per_message()
}

/// The messages `cards` become in `format`, in order: every card in exactly one message, as
/// many consecutive cards per message as the platform takes. A message never mixes apps. A
/// message of one review is exactly [`super::MessageFormat::render`] of that review.
pub fn messages(format: WebhookFormat, cards: &[ReviewCard<'_>]) -> Vec<Message> {
    let platform = format_of(format);
    let rendered: Vec<Value> = cards.iter().map(|card| platform.render(card)).collect();
    let max = platform.max_per_message();
    let mut messages = Vec::new();
    let mut start = 0;
    while start < cards.len() {
        let mut end = start + 1;
        let mut body = rendered[start].clone();
        while end < cards.len() && end - start < max && same_app(&cards[end - 1], &cards[end]) {
            let app_name = cards[start].app_name.as_str();
            let candidate = platform.join(app_name, &rendered[start..=end]);
            if !platform.fits(&candidate) {
                break;
            }
            body = candidate;
            end += 1;
        }
        messages.push(Message {
            body,
            review_count: end - start,
            idempotency_key: idempotency_key(
                cards[start..end].iter().map(|c| c.review.id.as_str()),
            ),
        });
        start = end;
    }
    messages
}

/// [`messages`] for `reviews` of `app`, shown under the app's id.
pub fn messages_for(format: WebhookFormat, app: &AppId, reviews: &[Review]) -> Vec<Message> {
    let cards: Vec<ReviewCard<'_>> = reviews.iter().map(|r| ReviewCard::new(app, r)).collect();
    messages(format, &cards)
}

/// The `Idempotency-Key` of a message carrying the reviews `review_ids`, in order: the id
/// itself for one review; for several, `batch-` and the lowercase hex of the first 16 bytes of
/// SHA-256 over the ids joined by `\n`. The same reviews always give the same key.
pub fn idempotency_key<'a>(review_ids: impl IntoIterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = review_ids.into_iter().collect();
    if let [only] = ids.as_slice() {
        return (*only).to_owned();
    }
    let hash = digest::digest(&digest::SHA256, ids.join("\n").as_bytes());
    let hex: String = hash.as_ref()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("batch-{hex}")
}

/// Whether `body` is within `format`'s limits for a whole message.
pub fn fits(format: WebhookFormat, body: &Value) -> bool {
    format_of(format).fits(body)
}

fn same_app(a: &ReviewCard<'_>, b: &ReviewCard<'_>) -> bool {
    a.app == b.app && a.app_name == b.app_name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::webhooks::{json_len, payload, utf16_len};
    use crate::domain::DeveloperResponse;

    fn app() -> AppId {
        AppId::parse("9").unwrap()
    }

    /// Review `i` (from 1), titled `Title {i:02}` so its place in a message can be found.
    fn review(i: usize, body: &str, reply: bool) -> Review {
        let mut review = Review::new(
            format!("r{i:02}"),
            Some((i % 5 + 1) as u8),
            Some(format!("Title {i:02}")),
            Some(body.to_owned()),
            Some("nick".into()),
            Some("USA".into()),
            format!("2024-02-03T04:{:02}:06Z", i % 60),
            None,
        )
        .unwrap();
        if reply {
            review.response = Some(DeveloperResponse {
                body: "Thanks, fixed in 2.1.".into(),
                last_modified_date: None,
            });
        }
        review
    }

    fn reviews(count: usize, body: &str, reply: bool) -> Vec<Review> {
        (1..=count).map(|i| review(i, body, reply)).collect()
    }

    fn counts(messages: &[Message]) -> Vec<usize> {
        messages.iter().map(|m| m.review_count).collect()
    }

    /// Every review in exactly one message, in order, each message within its limits, and each
    /// message but the last as full as the platform allows: adding the next review would break
    /// a limit.
    fn assert_well_split(format: WebhookFormat, reviews: &[Review]) -> Vec<Message> {
        let app = app();
        let cards: Vec<ReviewCard<'_>> = reviews.iter().map(|r| ReviewCard::new(&app, r)).collect();
        let messages = messages(format, &cards);
        let name = format.name();
        assert_eq!(
            counts(&messages).iter().sum::<usize>(),
            reviews.len(),
            "{name}"
        );
        let mut start = 0;
        for (k, message) in messages.iter().enumerate() {
            let end = start + message.review_count;
            assert!(message.review_count >= 1, "{name}: an empty message");
            assert!(
                fits(format, &message.body),
                "{name}: message {k} breaks a limit"
            );
            let text = message.body.to_string();
            let mut at = 0;
            for (i, review) in reviews.iter().enumerate() {
                let title = review.title.as_deref().unwrap();
                let found = text.find(title);
                if (start..end).contains(&i) {
                    let found =
                        found.unwrap_or_else(|| panic!("{name}: {title} not in message {k}"));
                    assert!(found >= at, "{name}: {title} out of order in message {k}");
                    at = found;
                } else {
                    assert!(found.is_none(), "{name}: {title} also in message {k}");
                }
            }
            let ids = reviews[start..end].iter().map(|r| r.id.as_str());
            assert_eq!(message.idempotency_key, idempotency_key(ids), "{name}");
            if end < reviews.len() && message.review_count < max_per_message(format) {
                let platform = format_of(format);
                let rendered: Vec<Value> = cards[start..=end]
                    .iter()
                    .map(|card| platform.render(card))
                    .collect();
                let bigger = platform.join(&cards[start].app_name, &rendered);
                assert!(
                    !fits(format, &bigger),
                    "{name}: message {k} could have carried one more review"
                );
            }
            start = end;
        }
        messages
    }

    #[test]
    fn short_reviews_fill_each_message_to_its_count() {
        let short = reviews(25, "Fine.", false);
        let expect = |format| counts(&assert_well_split(format, &short));
        assert_eq!(expect(WebhookFormat::Slack), [16, 9]);
        assert_eq!(expect(WebhookFormat::Discord), [10, 10, 5]);
        assert_eq!(expect(WebhookFormat::Teams), [10, 10, 5]);
        assert_eq!(expect(WebhookFormat::GoogleChat), [10, 10, 5]);
        assert_eq!(expect(WebhookFormat::Json), [1; 25]);
    }

    #[test]
    fn reviews_of_10k_characters_split_at_each_limit() {
        for body in [
            "a".repeat(10_000),
            "漢".repeat(10_000),
            "漢字👍مرحبا".repeat(1_250),
        ] {
            let long = reviews(25, &body, false);
            // Three cut sections (3,000 characters each, and a context) fill 12,000 characters.
            let slack = assert_well_split(WebhookFormat::Slack, &long);
            assert_eq!(counts(&slack), [3, 3, 3, 3, 3, 3, 3, 3, 1]);
            // A description of 4,096 leaves no room for a second embed in 6,000.
            let discord = assert_well_split(WebhookFormat::Discord, &long);
            assert_eq!(counts(&discord), [1; 25]);
            let json = assert_well_split(WebhookFormat::Json, &long);
            assert_eq!(counts(&json), [1; 25]);
            for format in [WebhookFormat::Teams, WebhookFormat::GoogleChat] {
                assert_well_split(format, &long);
            }
        }
        // 30,000 bytes: alone, each review fills a whole message.
        let cjk = reviews(25, &"漢".repeat(10_000), false);
        for format in [WebhookFormat::Teams, WebhookFormat::GoogleChat] {
            let messages = assert_well_split(format, &cjk);
            assert_eq!(counts(&messages), [1; 25], "{}", format.name());
        }
        // 10,000 bytes: two fit in 28,000 bytes, three in 32,000.
        let ascii = reviews(25, &"a".repeat(10_000), false);
        let teams = assert_well_split(WebhookFormat::Teams, &ascii);
        assert_eq!(counts(&teams), [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]);
        let chat = assert_well_split(WebhookFormat::GoogleChat, &ascii);
        assert!(counts(&chat).iter().all(|c| *c <= 3), "{:?}", counts(&chat));
    }

    #[test]
    fn middling_reviews_split_on_size_before_count() {
        let middling = reviews(25, &"Okay app, could sync faster. ".repeat(40), true);
        for format in WebhookFormat::ALL {
            let messages = assert_well_split(format, &middling);
            assert!(messages.len() > 1, "{}", format.name());
        }
        // About 1,300 characters an embed (1,159 of description): four fit in 6,000, five not.
        assert_eq!(
            counts(&assert_well_split(WebhookFormat::Discord, &middling)),
            [4, 4, 4, 4, 4, 4, 1]
        );
        // 28,000 bytes take 10 reviews of about 2.4 KB, 32,000 bytes more.
        let teams = assert_well_split(WebhookFormat::Teams, &middling);
        assert!(
            counts(&teams).iter().all(|c| *c < 12),
            "{:?}",
            counts(&teams)
        );
        for message in &teams {
            assert!(json_len(&message.body) <= 28_000);
        }
    }

    #[test]
    fn fifty_blocks_hold_twelve_reviews_with_replies() {
        // Three blocks and a divider each: 12 reviews are 47 blocks, 13 would be 51.
        let replied = reviews(25, "Fine.", true);
        let messages = assert_well_split(WebhookFormat::Slack, &replied);
        assert_eq!(counts(&messages), [12, 12, 1]);
        let blocks = messages[0].body["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 47);
        assert_eq!(blocks.iter().filter(|b| b["type"] == "divider").count(), 11);
    }

    #[test]
    fn reply_buttons_take_blocks_so_fewer_reviews_share_a_message_and_none_is_lost() {
        // Five blocks (text, context, original words, developer response, button), a divider
        // and room for an answer's line each: 7 reviews are 41 blocks and 7 lines, 8 would be
        // 47 and 8.
        let mut full = reviews(16, "Fine.", true);
        for review in &mut full {
            review.details.original_text = Some("Bien.\tMarche.".into());
        }
        let app = app();
        let cards: Vec<ReviewCard<'_>> = full
            .iter()
            .map(|r| ReviewCard::new(&app, r).with_reply_button())
            .collect();
        let split = messages(WebhookFormat::Slack, &cards);
        assert_eq!(counts(&split), [7, 7, 2]);
        let mut buttons = Vec::new();
        for message in &split {
            let blocks = message.body["blocks"].as_array().unwrap();
            assert!(blocks.len() <= 50, "{}", blocks.len());
            assert!(fits(WebhookFormat::Slack, &message.body));
            buttons.extend(
                blocks
                    .iter()
                    .filter(|b| b["type"] == "actions")
                    .map(|b| b["elements"][0]["value"].as_str().unwrap().to_owned()),
            );
        }
        assert_eq!(split[0].body["blocks"].as_array().unwrap().len(), 41);

        // Every review of a message answered: still within 50 blocks.
        let line = crate::adapters::slack::answered::answered_line("U1", "Thanks!", None);
        let mut answered = split[0].body.clone();
        for review in &full[..7] {
            let value = format!("app_store:9:{}", review.id);
            answered = crate::adapters::slack::answered::with_answer_line(&answered, &value, &line)
                .unwrap();
        }
        assert_eq!(answered["blocks"].as_array().unwrap().len(), 48);
        let expected: Vec<String> = full
            .iter()
            .map(|r| format!("app_store:9:{}", r.id))
            .collect();
        assert_eq!(
            buttons, expected,
            "every review once, in order, with its button"
        );

        // As a destination sends them: each send carries the first message of what is left.
        let mut left: Vec<&Review> = full.iter().collect();
        let mut sent = Vec::new();
        while let Some(message) =
            super::super::first_message(WebhookFormat::Slack, true, &app, None, &left)
        {
            assert!(message.body["blocks"].as_array().unwrap().len() <= 50);
            sent.push(message.review_count);
            left.drain(..message.review_count);
        }
        assert_eq!(sent, [7, 7, 2]);

        // Without buttons, four blocks and a divider each: 10 reviews are 49 blocks.
        let plain = super::super::first_message(
            WebhookFormat::Slack,
            false,
            &app,
            None,
            &full.iter().collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(plain.review_count, 10);
    }

    #[test]
    fn one_review_is_sent_as_it_always_was() {
        let review = review(1, "Works well.", true);
        for format in WebhookFormat::ALL {
            let messages = messages_for(format, &app(), std::slice::from_ref(&review));
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].body, payload(format, &app(), &review));
            assert_eq!(messages[0].review_count, 1);
            assert_eq!(messages[0].idempotency_key, "r01");
        }
    }

    #[test]
    fn batched_messages_say_how_many_and_keep_platform_rules() {
        let three = reviews(3, "Fine <!here> @everyone <users/all>", false);
        let slack = &messages_for(WebhookFormat::Slack, &app(), &three)[0].body;
        assert_eq!(slack["text"], "3 new reviews of App 9");
        assert_eq!(slack["unfurl_links"], false);
        let discord = &messages_for(WebhookFormat::Discord, &app(), &three)[0].body;
        assert_eq!(
            discord["allowed_mentions"],
            serde_json::json!({"parse": []})
        );
        assert_eq!(discord["embeds"].as_array().unwrap().len(), 3);
        let total: usize = discord["embeds"]
            .as_array()
            .unwrap()
            .iter()
            .map(super::super::discord::embed_len)
            .sum();
        assert!(total <= 6_000 && total > utf16_len("Title 01"));
        let teams = &messages_for(WebhookFormat::Teams, &app(), &three)[0].body;
        let card = &teams["attachments"][0]["content"];
        assert_eq!(card["actions"].as_array().unwrap().len(), 1);
        let separated = card["body"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["separator"] == true)
            .count();
        assert_eq!(separated, 2);
        let chat = &messages_for(WebhookFormat::GoogleChat, &app(), &three)[0].body;
        assert_eq!(chat["text"], "3 new reviews of App 9");
        let ids: Vec<&str> = chat["cardsV2"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cardId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["review-r01", "review-r02", "review-r03"]);
    }

    #[test]
    fn a_message_never_mixes_apps() {
        let (nine, ten) = (app(), AppId::parse("10").unwrap());
        let all = reviews(4, "Fine.", false);
        let cards = vec![
            ReviewCard::new(&nine, &all[0]),
            ReviewCard::new(&nine, &all[1]),
            ReviewCard::new(&ten, &all[2]),
            ReviewCard::new(&nine, &all[3]),
        ];
        for format in WebhookFormat::ALL {
            let expected: &[usize] = if format == WebhookFormat::Json {
                &[1, 1, 1, 1]
            } else {
                &[2, 1, 1]
            };
            assert_eq!(
                counts(&messages(format, &cards)),
                expected,
                "{}",
                format.name()
            );
        }
    }

    #[test]
    fn keys_are_stable_short_and_distinct() {
        assert_eq!(idempotency_key(["r1"]), "r1");
        // printf 'r01\nr02' | sha256sum, first 32 hex digits.
        assert_eq!(
            idempotency_key(["r01", "r02"]),
            "batch-e7f3b827d5aa114010ddcf7d819e492a"
        );
        assert_ne!(
            idempotency_key(["r01", "r02"]),
            idempotency_key(["r02", "r01"])
        );
        let many = reviews(25, "Fine.", false);
        for format in WebhookFormat::ALL {
            let first = messages_for(format, &app(), &many);
            let again = messages_for(format, &app(), &many);
            assert_eq!(first, again);
            let mut keys: Vec<&str> = first.iter().map(|m| m.idempotency_key.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), first.len(), "{}", format.name());
        }
    }

    #[test]
    fn no_reviews_no_messages() {
        for format in WebhookFormat::ALL {
            assert!(messages(format, &[]).is_empty());
        }
    }
}
