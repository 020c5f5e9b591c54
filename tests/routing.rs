//! Several destinations, each with its own rules and its own delivery record, against moto and
//! two local receivers, with the shipped binary running as a Lambda.

mod support;

use serde_json::{Value, json};
use support::asc::{AscConfig, review};
use support::receiver::{Platform, Receiver};
use support::runtime_api::Invocation;
use support::world::{INVOKE_TIMEOUT, World, assert_no_leaks, feed, minutes_ago, ok, summary_app};

fn ids(receiver: &Receiver) -> Vec<String> {
    receiver
        .accepted()
        .into_iter()
        .flat_map(|m| {
            let body = m.json.expect("json body");
            body["reviews"]
                .as_array()
                .expect("reviews")
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn rated(id: &str, minutes: i64, rating: u8, territory: &str, body: &str) -> Value {
    review(
        id,
        &minutes_ago(minutes, 0),
        rating,
        Some("Title"),
        Some(body),
        Some("nick"),
        Some(territory),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_destination_gets_its_share_once_it_recovers_and_the_other_never_waits() {
    let world = World::new(AscConfig::team()).await;
    let app = "6001";
    let support = Receiver::start();
    let mut secret = world.secret_json(support::keys::PRIVATE_KEY_P8);
    let fields = secret.as_object_mut().unwrap();
    fields.remove("webhook_url");
    fields.insert(
        "destinations".into(),
        json!([
            {"url": world.receiver.url(&world.marker), "name": "reviews", "format": "json"},
            {"url": support.url(&world.marker), "name": "support", "format": "json",
             "ratings": [1, 2], "exclude_keywords": ["REFUND"]},
        ]),
    );
    world.set_secret(&secret.to_string()).await;
    world.asc.set_reviews(
        app,
        vec![
            rated("r1", 50, 1, "USA", "crashes on launch"),
            rated("r2", 40, 5, "GBR", "love it"),
            rated("r3", 30, 2, "JPN", "アプリが落ちる"),
            rated("r4", 20, 1, "FRA", "I want a refund"),
        ],
    );
    support.fail_from(1, 503);
    let (api, process) = world.lambda_with(app, &[("RETRY_BASE_MS", "20"), ("RETRY_MAX_MS", "50")]);

    let Invocation::Err(err) = api.invoke(json!({}), INVOKE_TIMEOUT).await else {
        panic!("a destination that fails must fail the invocation");
    };
    let message = err["errorMessage"].as_str().unwrap().to_owned();
    assert!(message.contains("review r1 to support (json)"), "{message}");
    assert_eq!(ids(&world.receiver), ["r1", "r2", "r3", "r4"]);
    assert!(ids(&support).is_empty());

    support.reset();
    world.asc.push_review(app, rated("r5", 5, 2, "USA", "slow"));
    let recovered = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(summary_app(&recovered, app)["status"], "ok", "{recovered}");
    assert_eq!(ids(&support), ["r1", "r3", "r5"], "its share, in order");
    assert_eq!(
        ids(&world.receiver),
        ["r1", "r2", "r3", "r4", "r5"],
        "nothing twice"
    );

    let quiet = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(summary_app(&quiet, app)["new"], 0, "{quiet}");
    assert_eq!(ids(&support).len(), 3);
    assert_eq!(ids(&world.receiver).len(), 5);
    assert_eq!(
        world.watermark_review(app).await.as_deref(),
        Some("r5"),
        "the watermark moves once every destination has its reviews"
    );
    assert_no_leaks(
        &world,
        &[&process.output(), &message, &recovered.to_string()],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_reviews_go_to_chat_several_to_a_message_within_the_platforms_limits() {
    let world = World::new(AscConfig::team()).await;
    for (app, platform, format) in [
        ("6002", Platform::Slack, "slack"),
        ("6003", Platform::Discord, "discord"),
        ("6004", Platform::Teams, "teams"),
        ("6005", Platform::GoogleChat, "googlechat"),
    ] {
        world.asc.set_app_name(app, "Sky & <Sea>");
        let (reviews, _) = feed(&format!("{format}-"), 25, 30);
        world.asc.set_reviews(app, reviews);
        let chat = Receiver::start();
        chat.enforce(platform);
        let mut secret = world.secret_json(support::keys::PRIVATE_KEY_P8);
        let fields = secret.as_object_mut().unwrap();
        fields.remove("webhook_url");
        fields.insert(
            "destinations".into(),
            json!([{"url": chat.url(&world.marker), "name": format, "format": format, "apps": [app]}]),
        );
        world.set_secret(&secret.to_string()).await;
        let (api, process) = world.lambda(app);
        let summary = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
        assert_eq!(
            summary_app(&summary, app)["delivered"],
            25,
            "{format}: {summary}"
        );
        let received = chat.received();
        assert!(
            received.iter().all(|r| r.accepted),
            "{format}: the platform's limits refused a message: {:?}",
            received.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        assert!(
            (2..=5).contains(&received.len()),
            "{format}: 25 short reviews in a few messages, not {}",
            received.len()
        );
        let keys: Vec<&str> = received
            .iter()
            .map(|r| r.header("idempotency-key").unwrap())
            .collect();
        assert!(
            keys.iter().all(|k| k.starts_with("batch-")),
            "{format}: {keys:?}"
        );
        let text: String = received
            .iter()
            .map(|r| r.json.as_ref().unwrap().to_string())
            .collect();
        assert!(text.contains("Sky"), "{format}: the app's name is shown");
        assert_eq!(world.recorded_deliveries(app).await.len(), 25, "{format}");

        // Nothing more next time.
        ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
        assert_eq!(chat.received().len(), received.len(), "{format}");
        assert_no_leaks(&world, &[&process.output()]);
    }
}
