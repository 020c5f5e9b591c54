//! Weeks in seconds on the real state store: the relay in this process, on a clock the test
//! moves, against moto's DynamoDB and Secrets Manager, the App Store Connect double and a webhook
//! receiver. DynamoDB's TTL is played by deleting every item whose `expires_at` has passed on the
//! test's clock before each run.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use review_relay::config::Config;
use review_relay::handler::{Answer, Relay, unix_ms};
use serde_json::{Value, json};
use support::asc::{AscConfig, not_authorized_body};
use support::world::{World, reviews_minutes_ago, summary_app};

const APP: &str = "1000000001";
const HOUR_NANOS: i64 = 3_600 * 1_000_000_000;

/// A clock the test moves (ns since the epoch).
#[derive(Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn at(nanos: i64) -> Self {
        Self(Arc::new(AtomicI64::new(nanos)))
    }

    fn set(&self, nanos: i64) {
        self.0.store(nanos, Ordering::SeqCst);
    }

    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn real_now_nanos() -> i64 {
    unix_ms() * 1_000_000
}

/// The relay over `world`, configured as the Lambda would be, plus `extra` variables.
fn relay(world: &World, extra: &[(&str, &str)], clock: &TestClock) -> Relay {
    let mut vars: HashMap<String, String> = world.env(APP).into_iter().collect();
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = Config::from_vars(&vars).expect("configuration");
    let http = review_relay::adapters::http_client(&Default::default()).expect("HTTP client");
    let clock = clock.clone();
    Relay::with_aws(config, &world.aws, http).with_clock(Arc::new(move || i128::from(clock.now())))
}

/// [`relay`] of the Google Play app `package` alone, served by `play`.
fn play_relay(
    world: &World,
    play: &support::play::PlayDouble,
    package: &str,
    extra: &[(&str, &str)],
    clock: &TestClock,
) -> Relay {
    let base = play.base_url();
    let mut vars = vec![
        ("APP_IDS", ""),
        ("PLAY_PACKAGES", package),
        ("PLAY_BASE_URL", base.as_str()),
    ];
    vars.extend_from_slice(extra);
    relay(world, &vars, clock)
}

/// One scheduled run that may last `millis` of real time; its summary.
async fn run(relay: &Relay, millis: i64, holder: &str) -> Value {
    let answer = relay
        .handle(
            &json!({"source": "aws.events", "detail-type": "Scheduled Event"}),
            unix_ms() + millis,
            holder.to_owned(),
        )
        .await
        .expect("a scheduled event is accepted");
    match answer {
        Answer::Run(summary) => serde_json::to_value(summary).unwrap(),
        Answer::TestMessage(_) | Answer::Reply(_) => panic!("a run was expected"),
    }
}

/// Deletes the items whose `expires_at` (Unix s) has passed at `now_nanos`, as TTL does.
async fn expire(world: &World, now_nanos: i64) -> usize {
    let client = aws_sdk_dynamodb::Client::new(&world.aws);
    let mut removed = 0;
    for item in world.state_items().await {
        let expired = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .is_some_and(|secs| secs * 1_000_000_000 <= now_nanos);
        if expired {
            client
                .delete_item()
                .table_name(&world.table)
                .key("pk", item["pk"].clone())
                .key("sk", item["sk"].clone())
                .send()
                .await
                .expect("delete an expired item");
            removed += 1;
        }
    }
    removed
}

async fn delivered_records(world: &World) -> usize {
    world.recorded_deliveries(APP).await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_app_over_ninety_days_gets_nothing_twice() {
    let world = World::new(AscConfig::team()).await;
    let (reviews, ids) = reviews_minutes_ago("quiet", &[16, 15, 14, 13, 12, 11]);
    world.asc.set_reviews(APP, reviews);
    let start = real_now_nanos();
    let clock = TestClock::at(start);
    let relay = relay(&world, &[], &clock);
    let mut expired = 0;
    // A run every 12 hours for 90 days.
    for step in 0..=180 {
        clock.set(start + step * 12 * HOUR_NANOS);
        expired += expire(&world, clock.now()).await;
        let summary = run(&relay, 60_000, &format!("quiet-{step}")).await;
        assert_eq!(
            summary_app(&summary, APP)["status"],
            "ok",
            "day {}: {summary}",
            step / 2
        );
        if step == 0 {
            assert_eq!(delivered_records(&world).await, 6);
        }
    }
    assert_eq!(world.delivered_to(APP), ids, "each once, oldest first");
    assert!(expired >= 6, "the delivery records expired on the way");
    assert_eq!(delivered_records(&world).await, 0);
}

/// Runs of `millis` real milliseconds, the clock ten minutes on each time, until `ids` all went
/// out and a run ends `ok` (at most `runs`); the summaries of `APP`.
async fn run_short_until_done(
    world: &World,
    relay: &Relay,
    clock: &TestClock,
    ids: &[String],
    runs: usize,
) -> Vec<Value> {
    let mut summaries = Vec::new();
    for run_number in 0..runs {
        clock.set(clock.now() + HOUR_NANOS / 6);
        expire(world, clock.now()).await;
        let summary = run(relay, 3_500, &format!("short-{run_number}")).await;
        let app = summary_app(&summary, APP).clone();
        summaries.push(app.clone());
        if world.delivered_to(APP).len() >= ids.len() && app["status"] == "ok" {
            break;
        }
    }
    summaries
}

/// Every review of `ids` went out, oldest first. A run whose time ran out while a message was on
/// its way cannot know whether the receiver took it, so the next run sends it again (with the
/// same `Idempotency-Key`): on a loaded machine a 3.5-second run can end so. At most one such
/// repeat per run that ended at its deadline, and nothing else twice.
fn assert_sent_once_but_what_a_deadline_cut(world: &World, ids: &[String], summaries: &[Value]) {
    let sent = world.delivered_to(APP);
    let mut first_seen: Vec<String> = Vec::new();
    for id in &sent {
        if !first_seen.contains(id) {
            first_seen.push(id.clone());
        }
    }
    assert_eq!(first_seen, ids, "each, oldest first");
    let cut = summaries
        .iter()
        .filter(|s| s["status"] == "deadline")
        .count();
    assert!(
        sent.len() - ids.len() <= cut,
        "{} repeats, {cut} runs cut by their deadline: {sent:?}",
        sent.len() - ids.len()
    );
    let keys: Vec<String> = world
        .receiver
        .accepted()
        .iter()
        .filter_map(|m| m.header("idempotency-key").map(str::to_owned))
        .collect();
    let unique: std::collections::HashSet<&String> = keys.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "a repeat carries its first copy's key"
    );
}

/// One page of 200 reviews answered in 0.9 s; 3.5-second runs keeping 1 s to answer read for
/// 1.25 s, so two pages at most.
const SLOW_PAGES: Duration = Duration::from_millis(900);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_day_backfill_over_short_runs_goes_out_once_in_order() {
    let world = World::new(AscConfig::team()).await;
    // 430 reviews from 719 to 650 hours ago, every ten minutes, then 20 in the last hours.
    let mut minutes: Vec<i64> = (0..415).map(|i| 719 * 60 - i * 10).collect();
    minutes.extend((0..20).map(|i| 200 - i * 10));
    let (reviews, ids) = reviews_minutes_ago("back", &minutes);
    world.asc.set_reviews(APP, reviews);
    world.asc.set_delay(SLOW_PAGES);
    let clock = TestClock::at(real_now_nanos());
    let relay = relay(
        &world,
        &[
            ("BACKFILL_HOURS", "720"),
            ("DELIVERED_RETENTION_DAYS", "60"),
            ("DEADLINE_MARGIN_SECONDS", "1"),
        ],
        &clock,
    );
    let summaries = run_short_until_done(&world, &relay, &clock, &ids, 80).await;
    assert_sent_once_but_what_a_deadline_cut(&world, &ids, &summaries);
    assert!(
        summaries
            .iter()
            .any(|s| s["status"] == "deadline" && s["delivered"] == 0),
        "reading alone spanned runs: {summaries:?}"
    );
    assert!(
        summaries.iter().all(|s| s["status"] != "failed"),
        "{summaries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_month_long_outage_short_runs_deliver_every_review_once_in_order() {
    let world = World::new(AscConfig::team()).await;
    let now = real_now_nanos();
    let clock = TestClock::at(now - 29 * 24 * HOUR_NANOS);
    let relay = relay(&world, &[("DEADLINE_MARGIN_SECONDS", "1")], &clock);
    world.asc.set_reviews(APP, Vec::new());
    let first = run(&relay, 60_000, "before").await;
    assert_eq!(summary_app(&first, APP)["status"], "ok", "{first}");

    // The key is revoked for 29 days while 420 reviews arrive, one every 100 minutes.
    let minutes: Vec<i64> = (0..415).map(|i| (29 * 24 - 1) * 60 - i * 100).collect();
    let (reviews, ids) = reviews_minutes_ago("out", &minutes);
    world.asc.set_reviews(APP, reviews);
    clock.set(now - 10 * 24 * HOUR_NANOS);
    world
        .asc
        .fail_next(2, 401, not_authorized_body(), Vec::new());
    let revoked = run(&relay, 60_000, "revoked").await;
    assert_eq!(summary_app(&revoked, APP)["status"], "failed", "{revoked}");

    // Fixed; the runs are short and App Store Connect slow.
    world.asc.set_delay(SLOW_PAGES);
    clock.set(now);
    let summaries = run_short_until_done(&world, &relay, &clock, &ids, 80).await;
    assert_sent_once_but_what_a_deadline_cut(&world, &ids, &summaries);
    assert!(
        summaries.iter().any(|s| s["status"] == "deadline"),
        "the backlog spanned runs: {summaries:?}"
    );
    assert!(
        summaries.iter().all(|s| s["status"] != "failed"),
        "{summaries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_reading_stopped_is_kept_as_saved_and_stops_in_the_earlier_form_are_dropped() {
    use review_relay::adapters::dynamodb::{DynamoStateStore, app_pk};
    use review_relay::domain::{AppId, Lookback, Progress, ReviewKey, Scan};
    use review_relay::ports::StateStore;

    let world = World::new(AscConfig::team()).await;
    world.asc.set_reviews(APP, Vec::new());
    let clock = TestClock::at(real_now_nanos());
    let relay = relay(&world, &[], &clock);
    run(&relay, 60_000, "first").await;
    let client = aws_sdk_dynamodb::Client::new(&world.aws);
    let store = DynamoStateStore::new(client.clone(), world.table.clone());
    let app = AppId::parse(APP).unwrap();
    let key = |hours_ago: i64, id: &str| ReviewKey {
        nanos: i128::from(clock.now() - hours_ago * HOUR_NANOS),
        id: id.into(),
    };
    let progress = Progress {
        stops: vec![
            Scan {
                page: None,
                reached: key(5, "on-the-first-page"),
            },
            Scan {
                page: Some(
                    "https://api.example/v1/apps/1/customerReviews?cursor=eyJvZmZzZXQiOiIyMDAifQ"
                        .into(),
                ),
                reached: key(50, "deeper"),
            },
        ],
        deepest: Some(key(50, "deeper")),
        stalls: 2,
        handled: Some(key(60, "handled")),
        rescan_from: Some(i128::from(clock.now() - 3 * HOUR_NANOS)),
        rescan_cuts: 1,
    };
    store.save_progress(&app, &progress).await.unwrap();
    let lookback = Lookback {
        overlap_hours: 72,
        retention_days: 30,
        now_nanos: i128::from(clock.now()),
    };
    let loaded = store.load(&app, lookback, None).await.unwrap();
    assert_eq!(loaded.state.unwrap().progress, progress);

    // A stop saved with the link after its page cannot prove nothing moved past it.
    use aws_sdk_dynamodb::types::AttributeValue;
    let earlier = AttributeValue::M(HashMap::from([
        (
            "next".to_owned(),
            AttributeValue::S("https://api.example/next".into()),
        ),
        (
            "reached".to_owned(),
            AttributeValue::S(key(50, "deeper").encode()),
        ),
    ]));
    client
        .update_item()
        .table_name(&world.table)
        .key("pk", AttributeValue::S(app_pk(&app)))
        .key("sk", AttributeValue::S("state".into()))
        .update_expression("SET stops = :stops")
        .expression_attribute_values(":stops", AttributeValue::L(vec![earlier]))
        .send()
        .await
        .unwrap();
    let loaded = store.load(&app, lookback, None).await.unwrap();
    let loaded = loaded.state.unwrap().progress;
    assert!(loaded.stops.is_empty(), "{loaded:?}");
    assert_eq!(loaded.handled, progress.handled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_play_app_over_a_month_gets_each_review_and_each_edit_once_as_records_expire() {
    use support::play::{PlayConfig, play_review};
    const PACKAGE: &str = "com.example.weeks";
    let world = World::new(AscConfig::team()).await;
    let play = world.add_play(PlayConfig::fixture(), PACKAGE).await;
    let start = real_now_nanos() - 30 * 24 * HOUR_NANOS;
    let clock = TestClock::at(start);
    // Records kept 3 days, so they expire all along; the window reaches 24 hours back.
    let relay = play_relay(
        &world,
        &play,
        PACKAGE,
        &[
            ("DELIVERED_RETENTION_DAYS", "3"),
            ("OVERLAP_HOURS", "24"),
            ("BACKFILL_HOURS", "24"),
        ],
        &clock,
    );
    let secs = |day: i64, hour: i64| (start + (day * 24 + hour) * HOUR_NANOS) / 1_000_000_000;
    let id = |day: i64| format!("gp:weeks{day}");
    let mut expected = Vec::new();
    let mut expired = 0;
    // A run every 6 hours for 30 days: 10 quiet days, a review a day for 10 days (2 stars), every
    // third one edited the next day to 5 stars (the first of them twice between two runs).
    for step in 0..(30 * 4) {
        let (day, hour) = (step / 4, step % 4 * 6);
        if hour == 0 && (11..=20).contains(&day) && (day - 1) % 3 == 0 {
            let edited = day - 1;
            if edited == 12 {
                play.edit_review(PACKAGE, &id(edited), "Better", 4, secs(day, 1) - 3_600);
            }
            play.edit_review(PACKAGE, &id(edited), "Fixed\tThanks", 5, secs(day, 1));
            expected.push(id(edited));
        }
        if hour == 0 && (10..20).contains(&day) {
            play.push_review(
                PACKAGE,
                play_review(&id(day), "Ana", "Crashes", 2, secs(day, 3), "en-GB"),
            );
            expected.push(id(day));
        }
        clock.set(start + (day * 24 + hour) * HOUR_NANOS);
        play.set_listing_now(clock.now() / 1_000_000_000);
        expired += expire(&world, clock.now()).await;
        let summary = run(&relay, 60_000, &format!("play-{step}")).await;
        let app = summary_app(&summary, PACKAGE);
        assert_eq!(app["status"], "ok", "day {day} {hour}h: {summary}");
    }
    assert_eq!(
        world.delivered_to(PACKAGE),
        expected,
        "each review and each edit once, in order"
    );
    let messages: Vec<Value> = world
        .receiver
        .accepted()
        .into_iter()
        .filter_map(|m| m.json)
        .map(|body| body["reviews"][0].clone())
        .collect();
    let edits: Vec<&Value> = messages.iter().filter(|r| r["edited"] == true).collect();
    assert_eq!(edits.len(), 3, "{edits:?}");
    for edit in &edits {
        assert_eq!(edit["previous_rating"], 2, "{edit}");
        assert_eq!(edit["rating"], 5, "the latest version: {edit}");
        assert_eq!(edit["body"], "Thanks", "{edit}");
    }
    let keys: std::collections::HashSet<String> = world
        .receiver
        .accepted()
        .iter()
        .filter_map(|m| m.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), expected.len(), "a key per version");
    assert!(
        expired >= expected.len(),
        "the records expired on the way: {expired}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_play_edit_of_a_review_delivered_days_before_the_window_goes_out_as_an_edit() {
    use support::play::{PlayConfig, play_review};
    const PACKAGE: &str = "com.example.late.edit";
    let world = World::new(AscConfig::team()).await;
    let play = world.add_play(PlayConfig::fixture(), PACKAGE).await;
    let start = real_now_nanos() - 10 * 24 * HOUR_NANOS;
    let clock = TestClock::at(start);
    // The window reaches 24 hours before the newest review delivered; records are kept 30 days.
    let relay = play_relay(
        &world,
        &play,
        PACKAGE,
        &[("OVERLAP_HOURS", "24"), ("BACKFILL_HOURS", "24")],
        &clock,
    );
    let secs = |day: i64, hour: i64| (start + (day * 24 + hour) * HOUR_NANOS) / 1_000_000_000;
    let id = |day: i64| format!("gp:late{day}");
    let mut keys_sent = Vec::new();
    // A review a day for six days, each delivered by the run of its day; on day 6, the first
    // one is edited from 2 to 5 stars: its record lies five days before the window.
    for day in 0..8 {
        if day < 6 {
            play.push_review(
                PACKAGE,
                play_review(&id(day), "Ana", "Crashes", 2, secs(day, 3), "en-GB"),
            );
        }
        if day == 6 {
            play.edit_review(PACKAGE, &id(0), "Fixed\tThanks", 5, secs(day, 1));
        }
        for hour in [6, 12] {
            clock.set(start + (day * 24 + hour) * HOUR_NANOS);
            play.set_listing_now(clock.now() / 1_000_000_000);
            let summary = run(&relay, 60_000, &format!("late-{day}-{hour}")).await;
            let app = summary_app(&summary, PACKAGE);
            assert_eq!(app["status"], "ok", "day {day} {hour}h: {summary}");
        }
        keys_sent = world
            .receiver
            .accepted()
            .iter()
            .filter_map(|m| m.header("idempotency-key").map(str::to_owned))
            .collect();
    }
    let messages: Vec<Value> = world
        .receiver
        .accepted()
        .into_iter()
        .filter_map(|m| m.json)
        .map(|body| body["reviews"][0].clone())
        .collect();
    let firsts: Vec<&Value> = messages.iter().filter(|r| r["id"] == id(0)).collect();
    assert_eq!(
        firsts.len(),
        2,
        "the review, then its edit, once each: {firsts:?}"
    );
    assert_eq!(firsts[0]["edited"], false, "{}", firsts[0]);
    assert_eq!(
        firsts[1]["edited"], true,
        "marked as an edit: {}",
        firsts[1]
    );
    assert_eq!(firsts[1]["previous_rating"], 2, "{}", firsts[1]);
    assert_eq!(firsts[1]["rating"], 5, "{}", firsts[1]);
    assert_eq!(messages.len(), 7, "six reviews and one edit: {messages:?}");
    let unique: std::collections::HashSet<&String> = keys_sent.iter().collect();
    assert_eq!(
        unique.len(),
        keys_sent.len(),
        "the edit has a key of its own, or receivers that honour it would drop it: {keys_sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_play_backlog_larger_than_an_hours_requests_goes_out_over_hours_within_the_limit()
{
    use support::play::{PlayConfig, play_review};
    const PACKAGE: &str = "com.example.backlog";
    const REVIEWS: i64 = 450;
    let world = World::new(AscConfig::team()).await;
    // One review a page: the backlog takes more than two hours' worth of Google's 200 requests.
    let config = PlayConfig {
        page_cap: Some(1),
        ..PlayConfig::fixture()
    };
    let play = world.add_play(config, PACKAGE).await;
    // The clock starts on the hour, so each hour's runs share one tally.
    let real = real_now_nanos();
    let start = real - real.rem_euclid(HOUR_NANOS);
    let clock = TestClock::at(start);
    let start_secs = start / 1_000_000_000;
    let ids: Vec<String> = (0..REVIEWS).map(|i| format!("gp:backlog{i:03}")).collect();
    for (i, id) in ids.iter().enumerate() {
        // Oldest first, six minutes apart, the newest an hour ago.
        let modified = start_secs - 3_600 - (REVIEWS - 1 - i as i64) * 360;
        play.push_review(
            PACKAGE,
            play_review(id, "Ana", "Slow", 3, modified, "en-GB"),
        );
    }
    let relay = play_relay(&world, &play, PACKAGE, &[("BACKFILL_HOURS", "72")], &clock);
    let mut statuses = Vec::new();
    let mut gets_per_hour = Vec::new();
    // A run every 15 minutes until everything went out (reading down a stretch, then again from
    // the stop above it, takes several hours' worth of requests).
    for hour in 0..12 {
        let before = play.gets(PACKAGE);
        for quarter in 0..4 {
            clock.set(start + hour * HOUR_NANOS + quarter * HOUR_NANOS / 4 + 1_000_000_000);
            play.set_listing_now(clock.now() / 1_000_000_000);
            let summary = run(&relay, 60_000, &format!("backlog-{hour}-{quarter}")).await;
            statuses.push(summary_app(&summary, PACKAGE)["status"].clone());
        }
        gets_per_hour.push(play.gets(PACKAGE) - before);
        if world.delivered_to(PACKAGE).len() >= ids.len() {
            break;
        }
    }
    assert!(gets_per_hour.len() > 2, "it took hours: {gets_per_hour:?}");
    assert!(
        gets_per_hour.iter().all(|gets| *gets <= 200),
        "at most Google's 200 requests an hour: {gets_per_hour:?}"
    );
    assert!(
        play.requests().iter().all(|r| r.status != 429),
        "the tally kept every run under the limit: Google never refused"
    );
    assert!(statuses.iter().any(|s| s == "waiting"), "{statuses:?}");
    assert!(statuses.iter().all(|s| s != "failed"), "{statuses:?}");
    assert_eq!(
        world.delivered_to(PACKAGE),
        ids,
        "each once, oldest first, once reading got through"
    );
}
