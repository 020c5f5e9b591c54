//! Every message format against awkward reviews: the payloads equal the golden files in
//! tests/fixtures/golden, and each golden is checked against its platform's documented limits by
//! code that knows nothing of review-relay's own constants. `UPDATE_GOLDEN=1` rewrites the
//! goldens (read the diff before committing it).
//!
//! Twenty-five waiting reviews become the messages in the `<format>-batch-25` goldens, each
//! checked the same way; and a receiver that refuses what each platform refuses accepts every
//! golden.
//!
//! The `preview` command is run as a user would run it, with and without a review file.

// Only the receiver of the shared test doubles.
#[allow(dead_code)]
mod support {
    pub mod receiver;
    mod server;
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use review_relay::adapters::webhooks::batch;
use review_relay::adapters::webhooks::{ReviewCard, payload, payload_for};
use review_relay::config::WebhookFormat;
use review_relay::domain::{AppId, DeveloperResponse, Review, Store, StoreDetails};
use review_relay::preview::parse_review;
use serde_json::{Value, json};
use support::receiver::{Platform, Receiver};

const APP: &str = "1234567890";
/// Cases read from tests/fixtures/reviews/<case>.json, as App Store Connect sends them.
const FILE_CASES: [&str; 5] = [
    "long",
    "multilingual",
    "markup",
    "missing",
    "unknown-territory",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn review_file(case: &str) -> PathBuf {
    fixtures().join("reviews").join(format!("{case}.json"))
}

fn read_review(case: &str) -> Review {
    let text = std::fs::read_to_string(review_file(case)).unwrap();
    parse_review(&text).unwrap_or_else(|e| panic!("{case}: {e}"))
}

/// A review with the developer's reply, which the list endpoint does not carry.
fn replied() -> Review {
    let mut review = read_review("markup");
    review.response = Some(DeveloperResponse {
        body: "Sorry about that <@123> @here! Fixed in 2.1 — 修正済み 🙏 [notes](https://x) & more"
            .into(),
        last_modified_date: Some("2024-01-03T09:00:00Z".into()),
    });
    review
}

fn cases() -> Vec<(&'static str, Review)> {
    let mut cases: Vec<_> = FILE_CASES
        .iter()
        .map(|case| (*case, read_review(case)))
        .collect();
    cases.push(("reply", replied()));
    cases
}

/// Compares `actual` with the golden file, or writes it when `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &Value) -> Value {
    let path = fixtures().join("golden").join(format!("{name}.json"));
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to write it",
            path.display()
        )
    });
    let expected: Value = serde_json::from_str(&text).unwrap();
    assert!(
        &expected == actual,
        "{name}: the payload differs from {}; if the change is intended, rerun with UPDATE_GOLDEN=1 and read the diff\nactual: {}",
        path.display(),
        serde_json::to_string_pretty(actual).unwrap()
    );
    expected
}

/// Fails naming the golden when `message` breaks its platform's documented limits.
fn check_limits(format: WebhookFormat, name: &str, message: &Value) {
    let check = match format {
        WebhookFormat::Slack => check_slack,
        WebhookFormat::Discord => check_discord,
        WebhookFormat::Teams => check_teams,
        WebhookFormat::GoogleChat => check_googlechat,
        WebhookFormat::Json => check_json,
    };
    if let Err(problem) = check(message) {
        panic!("{name}: {problem}");
    }
}

#[test]
fn every_format_matches_its_goldens_and_its_platforms_limits() {
    let app = AppId::parse(APP).unwrap();
    for format in WebhookFormat::ALL {
        for (case, review) in cases() {
            let name = format!("{}-{case}", format.name());
            let message = golden(&name, &payload(format, &app, &review));
            check_limits(format, &name, &message);
        }
    }
}

/// A Google Play review as the Play adapter makes it: a title and a body (Google joins them
/// with a tab), a translation with the reviewer's own words, the device and app version.
fn play_review() -> Review {
    let mut review = Review::new(
        "gp:AOqpTOF1".into(),
        Some(2),
        Some("Keeps crashing".into()),
        Some("Since the last update the app closes when I open settings.".into()),
        Some("Ana Souza".into()),
        None,
        "2026-11-20T10:00:00.5Z".into(),
        Some(DeveloperResponse {
            body: "Thanks, a fix is on its way.".into(),
            last_modified_date: Some("2026-11-21T08:00:00Z".into()),
        }),
    )
    .unwrap()
    .in_store(Store::GooglePlay);
    review.details = StoreDetails {
        language: Some("pt-BR".into()),
        device: Some("Pixel 8".into()),
        app_version: Some("4.2.0".into()),
        original_text: Some("Não para de travar\tDesde a última atualização o app fecha.".into()),
    };
    review
}

#[test]
fn a_google_play_review_names_its_store_and_links_to_the_app_on_google_play() {
    let app = AppId::play("com.example.app").unwrap();
    let review = play_review();
    for format in WebhookFormat::ALL {
        let name = format!("{}-play", format.name());
        let message = golden(&name, &payload(format, &app, &review));
        check_limits(format, &name, &message);
        let text = message.to_string();
        assert!(!text.contains("App Store"), "{name}: {text}");
        assert!(!text.contains("appstoreconnect"), "{name}: {text}");
        if format == WebhookFormat::Json {
            let sent = &message["reviews"][0];
            assert_eq!(sent["store"], "google_play");
            assert_eq!(sent["app_id"], "com.example.app");
            assert_eq!(sent["language"], "pt-BR");
            assert_eq!(sent["device"], "Pixel 8");
            assert_eq!(sent["app_version"], "4.2.0");
            assert!(
                sent["original_text"]
                    .as_str()
                    .unwrap()
                    .starts_with("Não para")
            );
        } else {
            assert!(text.contains("Google Play review"), "{name}: {text}");
            assert!(
                text.contains("https://play.google.com/store/apps/details?id=com.example.app"),
                "{name}: {text}"
            );
            assert!(text.contains("pt-BR"), "{name}: {text}");
            // The translation, and the reviewer's own words (title and body) under their heading.
            let body = review.body.as_deref().unwrap();
            assert!(text.contains(body), "{name}: the translation: {text}");
            let original_at = text
                .find("Original text")
                .unwrap_or_else(|| panic!("{name}: {text}"));
            assert!(
                text[original_at..].contains("Não para de travar")
                    && text[original_at..].contains("Desde a última atualização"),
                "{name}: the original words after their heading: {text}"
            );
            assert!(!text.contains('\t'), "{name}: a raw tab: {text}");
        }
    }
}

/// The Slack message a destination marked `interactive` sends: every block of the plain one,
/// then the Reply button whose value names the store, the app and the review.
fn assert_plain_then_button(name: &str, plain: &Value, interactive: &Value, value: &str) {
    let plain_blocks = plain["blocks"].as_array().unwrap();
    let blocks = interactive["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), plain_blocks.len() + 1, "{name}");
    assert_eq!(blocks[..plain_blocks.len()], plain_blocks[..], "{name}");
    assert_eq!(interactive["text"], plain["text"], "{name}");
    let button = &blocks.last().unwrap();
    assert_eq!(button["type"], "actions", "{name}");
    assert!(
        button.get("block_id").is_none(),
        "{name}: a block id would repeat in a batch"
    );
    let elements = button["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 1, "{name}");
    assert_eq!(elements[0]["type"], "button", "{name}");
    assert_eq!(elements[0]["action_id"], "reply", "{name}");
    assert_eq!(
        elements[0]["text"],
        json!({"type": "plain_text", "text": "Reply"}),
        "{name}"
    );
    assert_eq!(elements[0]["value"], value, "{name}");
}

#[test]
fn an_interactive_slack_destination_adds_a_reply_button_under_each_review() {
    let app_store = AppId::parse(APP).unwrap();
    let play = AppId::play("com.example.app").unwrap();
    let replied = replied();
    let play_review = play_review();
    for (case, app, review, value) in [
        (
            "reply",
            &app_store,
            &replied,
            format!("app_store:{APP}:{}", replied.id),
        ),
        (
            "play",
            &play,
            &play_review,
            "google_play:com.example.app:gp:AOqpTOF1".to_owned(),
        ),
    ] {
        let plain_name = format!("slack-{case}");
        let name = format!("slack-{case}-interactive");
        let plain = golden(&plain_name, &payload(WebhookFormat::Slack, app, review));
        let card = ReviewCard::new(app, review).with_reply_button();
        let interactive = golden(&name, &payload_for(WebhookFormat::Slack, &card));
        check_limits(WebhookFormat::Slack, &name, &interactive);
        assert_plain_then_button(&name, &plain, &interactive, &value);
        // The other formats have no button to show: the same message either way.
        for format in WebhookFormat::ALL {
            if format != WebhookFormat::Slack {
                assert_eq!(
                    payload_for(format, &card),
                    payload(format, app, review),
                    "{}-{case}",
                    format.name()
                );
            }
        }
    }
}

#[test]
fn an_edited_reviews_button_names_the_stores_review_not_the_version() {
    let play = AppId::play("com.example.app").unwrap();
    let app_store = AppId::parse(APP).unwrap();
    let original = replied();
    for (app, review, value) in [
        (
            &play,
            play_review().as_edit_of(Some(5)),
            "google_play:com.example.app:gp:AOqpTOF1".to_owned(),
        ),
        (
            &app_store,
            original.clone().as_edit_of(None),
            format!("app_store:{APP}:{}", original.id),
        ),
    ] {
        assert_ne!(review.id, review.original_id(), "a versioned id");
        let card = ReviewCard::new(app, &review).with_reply_button();
        assert_eq!(card.reply_button.as_deref(), Some(value.as_str()));
        let message = payload_for(WebhookFormat::Slack, &card);
        check_limits(WebhookFormat::Slack, "slack-edit-interactive", &message);
        assert_plain_then_button(
            "slack-edit-interactive",
            &payload(WebhookFormat::Slack, app, &review),
            &message,
            &value,
        );
        assert!(!message.to_string().contains(&review.id), "{message}");
    }
}

#[test]
fn waiting_reviews_with_reply_buttons_split_within_slacks_limits() {
    let app = AppId::parse(APP).unwrap();
    let reviews = waiting();
    let cards: Vec<ReviewCard<'_>> = reviews
        .iter()
        .map(|review| ReviewCard::new(&app, review).with_reply_button())
        .collect();
    let messages = batch::messages(WebhookFormat::Slack, &cards);
    let plain = batch::messages_for(WebhookFormat::Slack, &app, &reviews);
    assert!(messages.len() >= plain.len());
    let mut buttons = Vec::new();
    for (k, message) in messages.iter().enumerate() {
        if let Err(problem) = check_slack(&message.body) {
            panic!("interactive message {k}: {problem}");
        }
        for block in message.body["blocks"].as_array().unwrap() {
            if block["type"] == "actions" {
                buttons.push(block["elements"][0]["value"].as_str().unwrap().to_owned());
            }
        }
    }
    let expected: Vec<String> = reviews
        .iter()
        .map(|r| format!("app_store:{APP}:{}", r.id))
        .collect();
    assert_eq!(
        buttons, expected,
        "every review once, in order, with its button"
    );
    assert_eq!(
        messages.iter().map(|m| m.review_count).sum::<usize>(),
        reviews.len()
    );
}

#[test]
fn an_untranslated_review_shows_no_original_text() {
    let app = AppId::play("com.example.app").unwrap();
    let mut review = play_review();
    review.details.original_text = None;
    for format in WebhookFormat::ALL {
        let text = payload(format, &app, &review).to_string();
        assert!(!text.contains("Original text"), "{}: {text}", format.name());
    }
}

#[test]
fn an_edit_shows_the_rating_before_and_after_in_every_chat_format() {
    let app = AppId::play("com.example.app").unwrap();
    let edit = play_review().as_edit_of(Some(5));
    for format in WebhookFormat::ALL {
        let message = payload(format, &app, &edit);
        check_limits(format, &format!("{}-edit", format.name()), &message);
        let text = message.to_string();
        if format == WebhookFormat::Json {
            let sent = &message["reviews"][0];
            assert_eq!(
                sent["id"], "gp:AOqpTOF1",
                "the store's id, not the version's"
            );
            assert_eq!(sent["edited"], true);
            assert_eq!(sent["previous_rating"], 5);
        } else {
            assert!(
                text.contains("★★★★★ → ★★☆☆☆ (edited)"),
                "{}: {text}",
                format.name()
            );
        }
    }
}

#[test]
fn multibyte_text_arrives_whole() {
    let app = AppId::parse(APP).unwrap();
    let review = read_review("multilingual");
    for format in WebhookFormat::ALL {
        let text = payload(format, &app, &review).to_string();
        for piece in [
            "最高のアプリ 🎉 تطبيق رائع",
            "毎日使っています。👍🏽👨‍👩‍👧",
            "هذا التطبيق رائع جداً، شكراً لكم! 🇸🇦",
            "ユーザー🌸مستخدم",
        ] {
            assert!(
                text.contains(piece),
                "{}: {piece} is not whole",
                format.name()
            );
        }
        if format != WebhookFormat::Json {
            assert!(text.contains("🇯🇵 Japan"), "{}", format.name());
        }
    }
}

#[test]
fn long_bodies_are_cut_with_an_ellipsis_not_refused() {
    let app = AppId::parse(APP).unwrap();
    let review = read_review("long");
    for format in [
        WebhookFormat::Slack,
        WebhookFormat::Discord,
        WebhookFormat::Teams,
        WebhookFormat::GoogleChat,
    ] {
        let text = payload(format, &app, &review).to_string();
        assert!(
            text.contains("Sync fails. 同期失敗😞") && text.contains('…'),
            "{}",
            format.name()
        );
        assert!(!text.contains("The end."), "{}", format.name());
    }
}

// ---- Twenty-five waiting reviews. ----

/// 25 reviews as they wait, oldest first: short, middling and 10,000-character bodies, replies,
/// markup and mentions, every rating and none.
fn waiting() -> Vec<Review> {
    let titles = [
        "Great",
        "Crashes on sync 同期失敗😞",
        "<!here> <@U123> ping",
        "**bold** @everyone <at>Team</at>",
        "",
    ];
    let nicknames = [Some("kim"), None, Some("<@123> @here"), Some("ユーザー🌸")];
    let territories = ["USA", "JPN", "DEU", "FRA", "BRA", "ZZZ"];
    (1..=25_usize)
        .map(|i| {
            // Two long reviews near each other: one message cannot hold both.
            let body = if matches!(i, 6 | 9 | 17 | 18) {
                "Sync fails. 同期失敗😞 <users/all> ".repeat(400)
            } else if i % 3 == 0 {
                format!("Review {i}: it mostly works & syncs; ").repeat(40)
            } else {
                format!("Review {i}: fine <b>again</b>.")
            };
            let mut review = Review::new(
                format!("20000000-0000-0000-0000-0000000000{i:02}"),
                (i != 13).then_some((i % 5 + 1) as u8),
                Some(titles[i % 5].to_owned()),
                Some(body),
                nicknames[i % 4].map(Into::into),
                Some(territories[i % 6].to_owned()),
                format!("2024-03-01T10:{i:02}:00-08:00"),
                None,
            )
            .unwrap();
            if i % 4 == 0 {
                review.response = Some(DeveloperResponse {
                    body: format!("Thanks {i} <@123> @here — 修正済み 🙏"),
                    last_modified_date: None,
                });
            }
            review
        })
        .collect()
}

fn batch_golden(format: WebhookFormat) -> Vec<batch::Message> {
    let app = AppId::parse(APP).unwrap();
    let messages = batch::messages_for(format, &app, &waiting());
    let listed: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "review_count": m.review_count,
                "idempotency_key": m.idempotency_key,
                "body": m.body,
            })
        })
        .collect();
    golden(&format!("{}-batch-25", format.name()), &Value::from(listed));
    messages
}

fn checker(format: WebhookFormat) -> fn(&Value) -> Result<(), String> {
    match format {
        WebhookFormat::Slack => check_slack,
        WebhookFormat::Discord => check_discord,
        WebhookFormat::Teams => check_teams,
        WebhookFormat::GoogleChat => check_googlechat,
        WebhookFormat::Json => check_json,
    }
}

#[test]
fn waiting_reviews_become_the_batch_goldens_within_every_limit() {
    let reviews = waiting();
    for format in WebhookFormat::ALL {
        let name = format.name();
        let messages = batch_golden(format);
        assert_eq!(
            messages.iter().map(|m| m.review_count).sum::<usize>(),
            reviews.len(),
            "{name}"
        );
        assert!(
            messages.len() < reviews.len() || format == WebhookFormat::Json,
            "{name}: nothing was batched"
        );
        let mut next = 0;
        for (k, message) in messages.iter().enumerate() {
            if let Err(problem) = checker(format)(&message.body) {
                panic!("{name}-batch-25 message {k}: {problem}");
            }
            let carried = &reviews[next..next + message.review_count];
            // Every review where it belongs: in this message, in order.
            let text = message.body.to_string();
            let mut at = 0;
            for review in carried {
                let date = review_relay::adapters::webhooks::display_date(review);
                let needle = if format == WebhookFormat::Json {
                    review.id.clone()
                } else {
                    date
                };
                let found = text[at..]
                    .find(&needle)
                    .unwrap_or_else(|| panic!("{name}: {} not in order in {k}", review.id));
                at += found;
            }
            match carried {
                [one] => assert_eq!(message.idempotency_key, one.id),
                _ => {
                    assert!(message.idempotency_key.starts_with("batch-"));
                    assert_eq!(message.idempotency_key.len(), 6 + 32);
                }
            }
            next += message.review_count;
        }
        let mut keys: Vec<&str> = messages
            .iter()
            .map(|m| m.idempotency_key.as_str())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), messages.len(), "{name}: a key repeats");
    }
}

/// Every golden of `format`: (file name, body) for each message it holds.
fn golden_bodies(format: WebhookFormat) -> Vec<(String, Value)> {
    let mut bodies = Vec::new();
    let dir = fixtures().join("golden");
    let prefix = format!("{}-", format.name());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix) && name.ends_with(".json"))
        .collect();
    names.sort();
    for name in names {
        let value: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(&name)).unwrap()).unwrap();
        match value {
            Value::Array(messages) => {
                for (k, message) in messages.into_iter().enumerate() {
                    bodies.push((format!("{name}[{k}]"), message["body"].clone()));
                }
            }
            message => bodies.push((name, message)),
        }
    }
    bodies
}

fn platform(format: WebhookFormat) -> Option<Platform> {
    match format {
        WebhookFormat::Slack => Some(Platform::Slack),
        WebhookFormat::Discord => Some(Platform::Discord),
        WebhookFormat::Teams => Some(Platform::Teams),
        WebhookFormat::GoogleChat => Some(Platform::GoogleChat),
        WebhookFormat::Json => None,
    }
}

/// Just over one of `platform`'s limits, and otherwise a message it takes.
fn oversized(platform: Platform) -> Value {
    match platform {
        Platform::Slack => json!({
            "text": "too many blocks",
            "blocks": vec![json!({"type": "divider"}); 51],
        }),
        Platform::Discord => json!({
            "allowed_mentions": {"parse": []},
            "embeds": [
                {"title": "a", "description": "d".repeat(4_000)},
                {"title": "b", "description": "d".repeat(2_000)},
            ],
        }),
        Platform::Teams => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {"type": "AdaptiveCard", "version": "1.4", "body": [
                    {"type": "TextBlock", "text": "x".repeat(28_000)},
                ]},
            }],
        }),
        Platform::GoogleChat => json!({"text": "x".repeat(32_000)}),
    }
}

#[tokio::test]
async fn a_receiver_enforcing_each_platforms_limits_takes_every_golden() {
    let http = reqwest::Client::new();
    let post = |url: String, body: Vec<u8>| {
        let request = http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    for format in WebhookFormat::ALL {
        let Some(platform) = platform(format) else {
            continue;
        };
        let receiver = Receiver::start();
        receiver.enforce(platform);
        let bodies = golden_bodies(format);
        assert!(bodies.len() > 6, "{}: goldens missing", format.name());
        for (name, body) in &bodies {
            let (status, text) = post(receiver.url(name), serde_json::to_vec(body).unwrap()).await;
            assert!(
                (200..300).contains(&status),
                "{name}: refused with {status}: {text}"
            );
        }

        let too_big = serde_json::to_vec(&oversized(platform)).unwrap();
        let (status, reason) = post(receiver.url("oversized"), too_big.clone()).await;
        assert_eq!(status, 400, "{platform:?}: an oversized body was taken");
        assert_eq!(reason.lines().count(), 1, "{reason}");
        let refused = receiver.received().pop().unwrap();
        assert!(!refused.accepted && refused.status == 400);

        // Without the switch, the same receiver takes anything, as before.
        let plain = Receiver::start();
        let (status, _) = post(plain.url("oversized"), too_big).await;
        assert_eq!(status, 200);
    }
}

#[test]
fn the_receivers_refusals_name_the_limit() {
    use support::receiver::refusal;
    let reason = |platform, message: Value| {
        refusal(platform, &serde_json::to_vec(&message).unwrap()).unwrap_or_default()
    };
    for platform in Platform::ALL {
        assert!(
            !reason(platform, oversized(platform)).is_empty(),
            "{platform:?}"
        );
    }
    assert!(reason(Platform::Slack, oversized(Platform::Slack)).contains("blocks is 51"));
    let section = |text: String| json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]});
    assert!(reason(Platform::Slack, section("x".repeat(3_001))).contains("3000"));
    assert!(
        refusal(
            Platform::Slack,
            &serde_json::to_vec(&section("x".repeat(3_000))).unwrap()
        )
        .is_none()
    );
    let button = |label: &str, block_id: Option<&str>| {
        let mut block = json!({"type": "actions", "elements": [{
            "type": "button", "action_id": "reply", "value": "app_store:1:r1",
            "text": {"type": "plain_text", "text": label},
        }]});
        if let Some(id) = block_id {
            block["block_id"] = id.into();
        }
        block
    };
    let buttons = |blocks: Vec<Value>| json!({"text": "t", "blocks": blocks});
    assert!(
        refusal(
            Platform::Slack,
            &serde_json::to_vec(&buttons(vec![button("Reply", None), button("Reply", None)]))
                .unwrap()
        )
        .is_none()
    );
    assert!(
        reason(
            Platform::Slack,
            buttons(vec![button("Reply", Some("a")), button("Reply", Some("a"))])
        )
        .contains("repeats block_id")
    );
    assert!(
        reason(
            Platform::Slack,
            buttons(vec![button(&"R".repeat(76), None)])
        )
        .contains("75")
    );
    let embed = |embed: Value| json!({"embeds": [embed]});
    assert!(reason(Platform::Discord, embed(json!({"title": "t".repeat(257)}))).contains("title"));
    assert!(
        reason(
            Platform::Discord,
            embed(json!({"fields": [{"name": "n", "value": "v".repeat(1_025)}]}))
        )
        .contains("fields.value")
    );
    assert!(reason(Platform::Discord, json!({"content": "c".repeat(2_001)})).contains("content"));
    assert!(
        reason(
            Platform::Discord,
            json!({"embeds": vec![json!({"title": "t"}); 11]})
        )
        .contains("embeds is 11")
    );
    assert!(
        reason(
            Platform::Teams,
            json!({"type": "message", "attachments": [{"contentType": "text/html"}]})
        )
        .contains("contentType")
    );
    assert!(
        reason(Platform::GoogleChat, json!({"cards": []})).contains("neither text nor cardsV2")
    );
    assert!(refusal(Platform::GoogleChat, b"not json").is_some());
}

// ---- Checkers: each platform's documented limits, written from its documentation. ----

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

fn bytes(message: &Value) -> usize {
    serde_json::to_vec(message).unwrap().len()
}

fn at_most(what: &str, got: usize, max: usize) -> Result<(), String> {
    if got <= max {
        Ok(())
    } else {
        Err(format!("{what} is {got}, over the limit of {max}"))
    }
}

/// Every string anywhere in `value`.
fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(fields) => fields.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// Slack Block Kit: at most 50 blocks; section text at most 3,000 characters; a context block
/// at most 10 elements of at most 3,000 characters; dividers; an actions block at most 25
/// elements, a button's plain_text label at most 75 characters, its value 2,000 and its action_id
/// 255; block ids unique; 12,000 characters of text over all blocks (documented for markdown blocks, `msg_blocks_too_long` for the rest). No `<!…>` or
/// `<@…>` control sequences.
fn check_slack(message: &Value) -> Result<(), String> {
    let blocks = message["blocks"].as_array().ok_or("no blocks")?;
    at_most("blocks", blocks.len(), 50)?;
    let mut total = 0;
    for block in blocks {
        match block["type"].as_str() {
            Some("section") => {
                total += chars(&block["text"]["text"]);
                at_most("section text", chars(&block["text"]["text"]), 3_000)?;
            }
            Some("context") => {
                let elements = block["elements"]
                    .as_array()
                    .ok_or("context without elements")?;
                at_most("context elements", elements.len(), 10)?;
                for element in elements {
                    total += chars(&element["text"]);
                    at_most("context text", chars(&element["text"]), 3_000)?;
                }
            }
            Some("divider") => {}
            Some("actions") => {
                let elements = block["elements"]
                    .as_array()
                    .ok_or("actions without elements")?;
                at_most("actions elements", elements.len(), 25)?;
                for element in elements {
                    if element["type"] != "button" || element["text"]["type"] != "plain_text" {
                        return Err(format!("not a plain_text button: {element}"));
                    }
                    total += chars(&element["text"]["text"]);
                    at_most("button text", chars(&element["text"]["text"]), 75)?;
                    at_most("button value", chars(&element["value"]), 2_000)?;
                    at_most("button action_id", chars(&element["action_id"]), 255)?;
                }
            }
            other => return Err(format!("unexpected block {other:?}")),
        }
    }
    let mut block_ids: Vec<&str> = blocks
        .iter()
        .filter_map(|b| b["block_id"].as_str())
        .collect();
    block_ids.sort_unstable();
    if block_ids.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err("a block_id repeats".into());
    }
    at_most("text over all blocks", total, 12_000)?;
    at_most("text", chars(&message["text"]), 40_000)?;
    for text in strings(message) {
        for live in ["<!", "<@", "<#"] {
            if text.contains(live) {
                return Err(format!("`{live}` is live in {text:?}"));
            }
        }
    }
    Ok(())
}

/// Discord: at most 10 embeds; title 256, description 4,096, at most 25 fields with name 256 and
/// value 1,024, footer text 2,048, author name 256; 6,000 characters over all of those.
/// `allowed_mentions.parse` empty, and no text a client would render as a mention.
fn check_discord(message: &Value) -> Result<(), String> {
    if message["allowed_mentions"]["parse"] != serde_json::json!([]) {
        return Err("allowed_mentions.parse is not empty".into());
    }
    let embeds = message["embeds"].as_array().ok_or("no embeds")?;
    at_most("embeds", embeds.len(), 10)?;
    let mut total = 0;
    for embed in embeds {
        let mut count = |what: &str, value: &Value, max: usize| {
            total += chars(value);
            at_most(what, chars(value), max)
        };
        count("title", &embed["title"], 256)?;
        count("description", &embed["description"], 4_096)?;
        count("footer text", &embed["footer"]["text"], 2_048)?;
        count("author name", &embed["author"]["name"], 256)?;
        let fields = embed["fields"].as_array().map_or(&[][..], Vec::as_slice);
        at_most("fields", fields.len(), 25)?;
        for field in fields {
            count("field name", &field["name"], 256)?;
            count("field value", &field["value"], 1_024)?;
            if chars(&field["value"]) == 0 {
                return Err("a field value is empty".into());
            }
        }
    }
    at_most("characters over all embeds", total, 6_000)?;
    for text in strings(message) {
        for live in ["@everyone", "@here"] {
            if text.contains(live) {
                return Err(format!("`{live}` is live in {text:?}"));
            }
        }
        let unescaped_angle = text
            .char_indices()
            .any(|(i, c)| c == '<' && !text[..i].ends_with('\\'));
        if unescaped_angle {
            return Err(format!("an unescaped `<` in {text:?}"));
        }
    }
    Ok(())
}

/// Microsoft Teams (Workflows): a `message` with one Adaptive Card attachment, the request body
/// at most 28 KB. No `<at>` mention tags.
fn check_teams(message: &Value) -> Result<(), String> {
    at_most("body bytes", bytes(message), 28_000)?;
    if message["type"] != "message" {
        return Err("type is not `message`".into());
    }
    let attachment = &message["attachments"][0];
    if attachment["contentType"] != "application/vnd.microsoft.card.adaptive"
        || !attachment["contentUrl"].is_null()
        || attachment["content"]["type"] != "AdaptiveCard"
        || attachment["content"]["version"] != "1.4"
    {
        return Err("not an Adaptive Card 1.4 attachment".into());
    }
    for text in strings(message) {
        if text.contains("<at>") || text.contains("</at>") {
            return Err(format!("a live <at> tag in {text:?}"));
        }
    }
    Ok(())
}

/// Google Chat: a message of at most 32,000 bytes with `text` and `cardsV2` cards, each with
/// a `cardId` of its own and at most 100 widgets. No `<users/…>` mention and no HTML a reviewer
/// wrote.
fn check_googlechat(message: &Value) -> Result<(), String> {
    at_most("message bytes", bytes(message), 32_000)?;
    if chars(&message["text"]) == 0 {
        return Err("no text fallback".into());
    }
    let cards = message["cardsV2"].as_array().ok_or("no cardsV2")?;
    if cards.is_empty() {
        return Err("no cardsV2 card".into());
    }
    let mut ids = std::collections::HashSet::new();
    for card in cards {
        let (Some(id), Some(sections)) =
            (card["cardId"].as_str(), card["card"]["sections"].as_array())
        else {
            return Err("not a cardsV2 card".into());
        };
        if !ids.insert(id) {
            return Err(format!("cardId {id} repeats"));
        }
        let widgets: usize = sections
            .iter()
            .map(|s| s["widgets"].as_array().map_or(0, Vec::len))
            .sum();
        at_most("widgets in a card", widgets, 100)?;
    }
    for text in strings(message) {
        if text.contains("<users/") {
            return Err(format!("a live mention in {text:?}"));
        }
        for tag in ["<a ", "<b>again", "<at>"] {
            if text.contains(tag) {
                return Err(format!("reviewer HTML `{tag}` in {text:?}"));
            }
        }
    }
    Ok(())
}

/// The `json` format: one review, every field present.
fn check_json(message: &Value) -> Result<(), String> {
    let reviews = message["reviews"].as_array().ok_or("no reviews")?;
    if reviews.len() != 1 {
        return Err(format!("{} reviews in one message", reviews.len()));
    }
    let review = &reviews[0];
    for field in [
        "id",
        "app_id",
        "rating",
        "title",
        "body",
        "reviewer_nickname",
        "territory",
        "created_date",
    ] {
        if review.get(field).is_none() {
            return Err(format!("`{field}` is missing"));
        }
    }
    Ok(())
}

// ---- The preview command, run as a user runs it. ----

fn preview(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_review-relay"))
        .arg("preview")
        .args(args)
        // Preview needs nothing from the environment: no AWS, no configuration.
        .env_clear()
        .output()
        .expect("run review-relay preview")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("pretty JSON on stdout")
}

#[test]
fn preview_prints_the_payload_of_a_review_file() {
    for format in WebhookFormat::ALL {
        let file = review_file("multilingual");
        let output = preview(&["--format", format.name(), file.to_str().unwrap()]);
        let printed = stdout_json(&output);
        let app = AppId::parse(APP).unwrap();
        assert_eq!(
            printed,
            payload(format, &app, &read_review("multilingual")),
            "{}",
            format.name()
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(stdout.starts_with("{\n  "), "pretty JSON");
    }
    let json = preview(&["--format=json", review_file("missing").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&json.stderr).contains("X-Review-Relay-Signature"));
}

#[test]
fn preview_interactive_prints_the_slack_message_with_its_reply_button() {
    let file = review_file("markup");
    let output = preview(&["--format", "slack", "--interactive", file.to_str().unwrap()]);
    let printed = stdout_json(&output);
    let app = AppId::parse(APP).unwrap();
    let review = read_review("markup");
    let card = ReviewCard::new(&app, &review).with_reply_button();
    assert_eq!(printed, payload_for(WebhookFormat::Slack, &card));
    assert_eq!(
        printed["blocks"].as_array().unwrap().last().unwrap()["elements"][0]["value"],
        format!("app_store:{APP}:{}", review.id)
    );
    let other = preview(&["--format", "teams", "--interactive"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("`--format slack`"));
}

#[test]
fn preview_accepts_a_whole_document() {
    let resource: Value =
        serde_json::from_str(&std::fs::read_to_string(review_file("markup")).unwrap()).unwrap();
    let dir = tempdir();
    let path = dir.join("document.json");
    std::fs::write(&path, serde_json::json!({"data": resource}).to_string()).unwrap();
    let printed = stdout_json(&preview(&["--format", "discord", path.to_str().unwrap()]));
    let app = AppId::parse(APP).unwrap();
    assert_eq!(
        printed,
        payload(WebhookFormat::Discord, &app, &read_review("markup"))
    );
}

#[test]
fn preview_without_a_file_shows_the_sample() {
    let printed = stdout_json(&preview(&["--format", "slack", "--app", "42"]));
    let text = printed.to_string();
    assert!(text.contains("Does what it says"), "{text}");
    assert!(text.contains("🇬🇧 United Kingdom"), "{text}");
    assert!(text.contains("/apps/42/"), "{text}");
}

#[test]
fn preview_errors_are_one_line_with_the_cause() {
    let dir = tempdir();
    let not_json = dir.join("not-json.json");
    std::fs::write(&not_json, "{ nope").unwrap();
    let no_date = dir.join("no-date.json");
    std::fs::write(
        &no_date,
        r#"{"type": "customerReviews", "id": "r9", "attributes": {"rating": 5}}"#,
    )
    .unwrap();
    let missing = dir.join("absent.json");
    let cases = [
        (
            vec!["--format", "teams", not_json.to_str().unwrap()],
            1,
            "is not JSON",
        ),
        (
            vec!["--format", "teams", no_date.to_str().unwrap()],
            1,
            "review r9 has no createdDate",
        ),
        (
            vec!["--format", "teams", missing.to_str().unwrap()],
            1,
            "cannot read",
        ),
        (vec!["--format", "irc"], 2, "unknown format `irc`"),
        (vec![], 2, "`--format` is required"),
    ];
    for (args, code, cause) in cases {
        let output = preview(&args);
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(cause), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

/// A fresh directory for this test's files.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "review-relay-formats-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- Signed json, as a receiver sees it. ----

mod signing {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use review_relay::adapters::http_client;
    use review_relay::adapters::trust::TrustRoots;
    use review_relay::adapters::webhooks::WebhookNotifier;
    use review_relay::config::RetryPolicy;
    use review_relay::domain::AppId;
    use review_relay::ports::Notifier;
    use review_relay::secret::RelaySecret;
    use secrecy::SecretString;
    use serde_json::json;

    const KEY: &str = include_str!("fixtures/keys/AuthKey_TESTKEY001.p8");

    type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

    /// A receiver on 127.0.0.1 that keeps every request's headers and exact body bytes.
    async fn receiver() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let app = Router::new()
            .fallback(
                |State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                    seen.lock().unwrap().push((headers, body));
                    "ok"
                },
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    fn notifier() -> WebhookNotifier {
        WebhookNotifier::new(
            http_client(&TrustRoots::default()).unwrap(),
            RetryPolicy {
                attempts: 1,
                first_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
                retry_after_max: Duration::from_millis(1),
                request_timeout: Duration::from_secs(10),
            },
        )
    }

    /// HMAC-SHA256 written out from RFC 2104, to check the product's signature independently.
    fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
        use aws_lc_rs::digest::{SHA256, digest};
        let mut block = [0u8; 64];
        block[..key.len()].copy_from_slice(key);
        let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
        let inner = digest(&SHA256, &[pad(0x36), message.to_vec()].concat());
        let outer = digest(&SHA256, &[pad(0x5c), inner.as_ref().to_vec()].concat());
        outer.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[tokio::test]
    async fn json_destinations_with_a_secret_are_signed_over_the_exact_body() {
        let (url, seen) = receiver().await;
        let secret = RelaySecret::parse(
            &SecretString::from(
                json!({
                    "key_id": "TESTKEY001",
                    "private_key": KEY,
                    "webhook_url": format!("{url}/signed"),
                    "signing_secret": "whsec_shared",
                    "destinations": [
                        {"url": format!("{url}/own"), "signing_secret": "whsec_own"},
                        {"url": format!("{url}/chat"), "format": "discord",
                         "signing_secret": "whsec_ignored"},
                    ],
                })
                .to_string(),
            ),
            None,
        )
        .unwrap();
        let app = AppId::parse(super::APP).unwrap();
        let review = super::read_review("multilingual");
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for destination in &secret.destinations {
            notifier()
                .send(destination, &app, None, &[&review], None)
                .await
                .unwrap();
        }

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        for ((headers, body), key) in seen[..2].iter().zip(["whsec_shared", "whsec_own"]) {
            assert_eq!(headers["content-type"], "application/json");
            let timestamp = headers["x-review-relay-timestamp"].to_str().unwrap();
            let seconds: u64 = timestamp.parse().unwrap();
            assert!(seconds >= before && seconds <= before + 60);
            let signed = [timestamp.as_bytes(), b".", body].concat();
            assert_eq!(
                headers["x-review-relay-signature"].to_str().unwrap(),
                format!("sha256={}", hmac_sha256_hex(key.as_bytes(), &signed))
            );
            let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(
                sent,
                review_relay::adapters::webhooks::payload(
                    review_relay::config::WebhookFormat::Json,
                    &app,
                    &review
                )
            );
        }
        let (chat_headers, _) = &seen[2];
        assert!(chat_headers.get("x-review-relay-signature").is_none());
        assert!(chat_headers.get("x-review-relay-timestamp").is_none());
    }

    #[tokio::test]
    async fn no_signing_secret_means_no_signature_headers() {
        let (url, seen) = receiver().await;
        let secret = RelaySecret::parse(
            &SecretString::from(
                json!({"key_id": "K", "private_key": KEY, "webhook_url": url}).to_string(),
            ),
            None,
        )
        .unwrap();
        let app = AppId::parse(super::APP).unwrap();
        notifier()
            .send(
                &secret.destinations[0],
                &app,
                None,
                &[&super::read_review("markup")],
                None,
            )
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let (headers, _) = &seen[0];
        assert!(headers.get("x-review-relay-signature").is_none());
        assert!(headers.get("x-review-relay-timestamp").is_none());
        assert_eq!(
            headers["idempotency-key"],
            "10000000-0000-0000-0000-000000000003"
        );
    }
}
