//! App Store and Google Play apps in one deployment: one table, one secret, one run, through the
//! release binary under a Lambda Runtime API double, against the App Store Connect and Google
//! Play doubles, moto and a webhook receiver.

mod support;

use serde_json::{Value, json};
use support::play::{self, Denial, PlayDouble, play_review, real_now_secs};
use support::runtime_api::Invocation;
use support::world::{INVOKE_TIMEOUT, World, assert_no_leaks, feed, ok, summary_app};

const APP: &str = "7001";
const PACKAGE: &str = "com.example.relay";

/// `count` Play reviews a minute apart, the newest `start_minutes_ago`; ids oldest first.
fn play_feed(prefix: &str, count: usize, start_minutes_ago: i64) -> (Vec<Value>, Vec<String>) {
    let now = real_now_secs();
    let mut reviews = Vec::new();
    let mut ids = Vec::new();
    for i in 0..count {
        let minutes = start_minutes_ago + (count - i) as i64;
        let id = format!("gp:{prefix}{i:03}");
        reviews.push(play_review(
            &id,
            "Ana",
            &format!("Title {i}\tBody {i}"),
            (i % 5 + 1) as u8,
            now - minutes * 60,
            "pt-BR",
        ));
        ids.push(id);
    }
    (reviews, ids)
}

fn play_env(play: &PlayDouble) -> [(&'static str, String); 2] {
    [
        ("PLAY_PACKAGES", PACKAGE.to_owned()),
        ("PLAY_BASE_URL", play.base_url()),
    ]
}

/// Lines of the service account's private key: never printed.
fn play_key_lines() -> Vec<String> {
    play::private_key_pem()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_owned)
        .collect()
}

fn assert_no_play_leaks(outputs: &[&str]) {
    for output in outputs {
        for line in play_key_lines() {
            assert!(!output.contains(&line), "output leaks the Play key");
        }
        // Access tokens the double issues start `ya29.`; an assertion is a JWT (`eyJ`).
        assert!(!output.contains("ya29."), "output leaks an access token");
        assert!(!output.contains("eyJ"), "output leaks a JWT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_relay_in_one_run_each_review_once_in_its_apps_order() {
    let (world, play) = World::with_play().await;
    let (apple, apple_ids) = feed("a", 3, 30);
    world.asc.set_reviews(APP, apple);
    let (google, google_ids) = play_feed("p", 130, 10);
    play.set_reviews(PACKAGE, google);
    let env = play_env(&play);
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (api, process) = world.lambda_with(APP, &extra);

    let summary = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    let apple_app = summary_app(&summary, APP);
    let play_app = summary_app(&summary, PACKAGE);
    assert_eq!(apple_app["store"], "app_store", "{summary}");
    assert_eq!(play_app["store"], "google_play", "{summary}");
    assert_eq!(play_app["status"], "ok", "{summary}");
    assert_eq!(play_app["delivered"], 130, "{summary}");
    assert_eq!(play_app["pages"], 2, "100 reviews a page: {summary}");
    assert_eq!(world.delivered_to(APP), apple_ids);
    assert_eq!(
        world.delivered_to(PACKAGE),
        google_ids,
        "oldest first, once"
    );
    assert_eq!(play.token_requests(), 1, "one token for both pages");

    // What a Play review looks like in `json`, and where its state lives.
    let sent = world
        .receiver
        .accepted()
        .into_iter()
        .filter_map(|m| m.json)
        .flat_map(|body| body["reviews"].as_array().cloned().unwrap_or_default())
        .find(|r| r["id"] == google_ids[0])
        .expect("the first Play review");
    assert_eq!(sent["store"], "google_play");
    assert_eq!(sent["app_id"], PACKAGE);
    assert_eq!(sent["title"], "Title 0");
    assert_eq!(sent["body"], "Body 0");
    assert_eq!(sent["language"], "pt-BR");
    let items = world.state_items().await;
    let play_items = items
        .iter()
        .filter(|item| {
            item.get("pk").and_then(|v| v.as_s().ok()) == Some(&format!("play#{PACKAGE}"))
        })
        .count();
    assert!(
        play_items > 130,
        "state, lease and a record per review under play#: {play_items}"
    );

    // Nothing new: nothing sent again; then one new review on each store goes out once.
    let again = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(summary_app(&again, PACKAGE)["delivered"], 0, "{again}");
    assert_eq!(summary_app(&again, APP)["delivered"], 0, "{again}");
    let (newer, newer_ids) = play_feed("q", 1, 0);
    play.push_review(PACKAGE, newer[0].clone());
    let third = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(summary_app(&third, PACKAGE)["delivered"], 1, "{third}");
    assert_eq!(
        world.delivered_to(PACKAGE),
        [google_ids.clone(), newer_ids].concat()
    );

    // The reviewer edits a review: it goes out once more, marked, under a key of its own.
    let edited_id = &google_ids[5];
    play.edit_review(
        PACKAGE,
        edited_id,
        "Better now\tThe update fixed it",
        5,
        real_now_secs(),
    );
    let after_edit = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(
        summary_app(&after_edit, PACKAGE)["delivered"],
        1,
        "{after_edit}"
    );
    let last = world.receiver.accepted().pop().unwrap();
    let sent = &last.json.as_ref().unwrap()["reviews"][0];
    assert_eq!(sent["id"], edited_id.as_str());
    assert_eq!(sent["edited"], true);
    assert_eq!(sent["previous_rating"], 1, "review 5 had 1 star: {sent}");
    assert_eq!(sent["rating"], 5);
    assert_eq!(sent["title"], "Better now");
    let key = last.header("idempotency-key").unwrap();
    assert!(
        key.starts_with(&format!("{edited_id}@")),
        "an edit's key is not the first version's: {key}"
    );
    let quiet = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(summary_app(&quiet, PACKAGE)["delivered"], 0, "{quiet}");

    assert_no_leaks(&world, &[&process.output()]);
    assert_no_play_leaks(&[&process.output(), &summary.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_app_the_service_account_may_not_read_fails_naming_the_permission_and_the_app_store_app_still_goes_out()
 {
    let (world, play) = World::with_play().await;
    let (apple, apple_ids) = feed("b", 2, 30);
    world.asc.set_reviews(APP, apple);
    let (google, _) = play_feed("d", 2, 10);
    play.set_reviews(PACKAGE, google);
    play.deny(PACKAGE, Denial::NoPermission);
    let env = play_env(&play);
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (api, process) = world.lambda_with(APP, &extra);

    let Invocation::Err(err) = api.invoke(json!({}), INVOKE_TIMEOUT).await else {
        panic!("a failed app fails the invocation");
    };
    let message = err.to_string();
    assert!(
        message.contains("1 of 2 apps failed")
            && message.contains(PACKAGE)
            && message.contains("Reply to reviews"),
        "{message}"
    );
    assert_eq!(world.delivered_to(APP), apple_ids);
    assert!(world.delivered_to(PACKAGE).is_empty());
    assert_no_play_leaks(&[&process.output(), &message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_only_deployment_needs_no_app_store_key_and_a_missing_service_account_is_named() {
    let (world, play) = World::with_play().await;
    // The secret as a Play-only team writes it: no Apple fields at all.
    let secret = json!({
        "google_service_account": play.service_account_json().to_string(),
        "webhook_url": world.receiver.url(&world.marker),
    });
    world.set_secret(&secret.to_string()).await;
    let (google, google_ids) = play_feed("o", 3, 10);
    play.set_reviews(PACKAGE, google);
    let env = play_env(&play);
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (api, _process) = world.lambda_with("", &extra);
    let summary = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(summary["apps"].as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(world.delivered_to(PACKAGE), google_ids);

    // The same secret with App Store apps configured: refused, naming what is missing.
    let (api, _process) = world.lambda_with(APP, &extra);
    let Invocation::Err(err) = api.invoke(json!({}), INVOKE_TIMEOUT).await else {
        panic!("the App Store app needs a key");
    };
    assert!(
        err.to_string().contains("key_id") && err.to_string().contains("APP_IDS"),
        "{err}"
    );

    // And Play apps with a secret that has no service account.
    world
        .set_secret(&world.secret_json(support::keys::PRIVATE_KEY_P8).to_string())
        .await;
    let (api, _process) = world.lambda_with(APP, &extra);
    let Invocation::Err(err) = api.invoke(json!({}), INVOKE_TIMEOUT).await else {
        panic!("the Play app needs a service account");
    };
    assert!(
        err.to_string().contains("google_service_account")
            && err.to_string().contains("PLAY_PACKAGES"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hours_play_requests_are_tallied_in_the_table_and_googles_429_waits_for_the_next_hour()
{
    let (world, play) = World::with_play().await;
    let (google, google_ids) = play_feed("h", 150, 10);
    play.set_reviews(PACKAGE, google);
    let env = play_env(&play);
    let mut extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Few retries, so the 429s below are given up quickly.
    extra.extend([("ASC_MAX_ATTEMPTS", "2"), ("RETRY_BASE_MS", "10")]);
    let (api, process) = world.lambda_with("", &extra);

    let first = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(summary_app(&first, PACKAGE)["delivered"], 150, "{first}");
    assert_eq!(world.delivered_to(PACKAGE), google_ids);
    let tally =
        |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
         name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
    let requests_item = || async {
        world
            .state_items()
            .await
            .into_iter()
            .find(|item| {
                item.get("pk").and_then(|v| v.as_s().ok()) == Some(&format!("play#{PACKAGE}"))
                    && item
                        .get("sk")
                        .and_then(|v| v.as_s().ok())
                        .map(String::as_str)
                        == Some("requests")
            })
            .expect("the hour's tally")
    };
    let item = requests_item().await;
    assert_eq!(tally(&item, "count"), Some(2), "two pages read");
    let hour = tally(&item, "hour").unwrap();
    assert_eq!(hour % 3600, 0, "a clock hour's first second");

    // Google says the quota is spent: the app waits, it does not fail, and the tally is full.
    play.fail_next(10, 429, play::quota_exceeded_body());
    let limited = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    let app = summary_app(&limited, PACKAGE);
    assert_eq!(app["status"], "waiting", "{limited}");
    assert!(
        app["error"]
            .as_str()
            .unwrap()
            .contains("200 requests an hour"),
        "{limited}"
    );
    if tally(&requests_item().await, "hour") == Some(hour) {
        assert_eq!(tally(&requests_item().await, "count"), Some(200));
        // Later in the same hour: Google is not asked at all.
        let gets = play.gets(PACKAGE);
        let waiting = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
        assert_eq!(summary_app(&waiting, PACKAGE)["status"], "waiting");
        assert_eq!(play.gets(PACKAGE), gets, "no request in a spent hour");
    }
    assert_no_play_leaks(&[&process.output()]);
}
