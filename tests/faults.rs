//! Fault injection: the release binary, run as Lambda runs it, against a webhook that fails, stalls
//! and rate-limits, an App Store Connect that fails, rejects, loops and points elsewhere, a deadline
//! that runs out, two invocations at once, and a process killed mid-delivery. Every test checks
//! exactly which review ids reached the receiver, in which order, across invocations.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::asc::{AscConfig, AscDouble, encode_cursor, error_body, review};
use support::keys;
use support::runtime_api::{Invocation, RuntimeApi};
use support::world::{INVOKE_TIMEOUT, World, assert_no_leaks, feed, minutes_ago, ok, summary_app};

/// Short backoffs so that retries cost milliseconds.
const FAST: &[(&str, &str)] = &[
    ("RETRY_BASE_MS", "50"),
    ("RETRY_MAX_MS", "200"),
    ("WEBHOOK_TIMEOUT_SECONDS", "5"),
];

/// [`FAST`] with `extra` on top (later entries win).
fn fast(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    [FAST, extra].concat()
}

/// The invocation's `errorMessage`; panics if it succeeded.
fn failed(invocation: Invocation) -> String {
    match invocation {
        Invocation::Err(err) => err["errorMessage"]
            .as_str()
            .unwrap_or_else(|| panic!("no errorMessage in {err}"))
            .to_owned(),
        Invocation::Ok(summary) => panic!("the invocation must fail, but answered {summary}"),
    }
}

async fn invoke(api: &RuntimeApi) -> Invocation {
    api.invoke(json!({}), INVOKE_TIMEOUT).await
}

/// `(status, fetched, new, delivered, pending, pages)` of `app` in `summary`.
fn counts(summary: &Value, app: &str) -> (String, u64, u64, u64, u64, u64) {
    let a = summary_app(summary, app);
    let n = |k: &str| a[k].as_u64().unwrap_or_else(|| panic!("{k} in {a}"));
    (
        a["status"].as_str().unwrap().to_owned(),
        n("fetched"),
        n("new"),
        n("delivered"),
        n("pending"),
        n("pages"),
    )
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `links.next` of the page at `url` as the double writes it (read with a valid token).
async fn next_link_of(url: &str) -> String {
    let page: Value = reqwest::Client::new()
        .get(url)
        .bearer_auth(keys::team_token())
        .send()
        .await
        .expect("GET page")
        .json()
        .await
        .expect("page JSON");
    page["links"]["next"]
        .as_str()
        .unwrap_or_else(|| panic!("no links.next in {page}"))
        .to_owned()
}

fn first_page_url(asc: &AscDouble, app: &str) -> String {
    format!(
        "{}/v1/apps/{app}/customerReviews?sort=-createdDate&limit=200",
        asc.base_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_503_twice_is_retried_with_the_same_idempotency_key() {
    let world = World::new(AscConfig::team()).await;
    let (reviews, ids) = feed("w", 4, 10);
    world.asc.set_reviews("1001", reviews);
    world.receiver.respond_with(vec![200, 503, 503]);

    let (api, process) = world.lambda_with("1001", FAST);
    let summary = ok(invoke(&api).await);
    assert_eq!(
        counts(&summary, "1001"),
        ("ok".into(), 4, 4, 4, 0, 1),
        "{summary}"
    );
    assert_eq!(
        world.delivered_to("1001"),
        ids,
        "each review once, in order"
    );
    let id = |i: usize| ids[i].clone();
    assert_eq!(
        world.attempts(),
        [
            (id(0), 200),
            (id(1), 503),
            (id(1), 503),
            (id(1), 200),
            (id(2), 200),
            (id(3), 200)
        ],
        "the second review was tried three times under one Idempotency-Key"
    );
    assert_eq!(world.recorded_deliveries("1001").await, ids);
    assert_eq!(
        world.watermark_review("1001").await.as_deref(),
        Some(ids[3].as_str())
    );

    let again = ok(invoke(&api).await);
    assert_eq!(counts(&again, "1001"), ("ok".into(), 4, 0, 0, 0, 1));
    assert_eq!(world.receiver.received().len(), 6, "nothing is sent twice");

    // 408 is retried too.
    let (more, more_ids) = feed("x", 1, 5);
    world.asc.push_review("1001", more[0].clone());
    world.receiver.respond_with(vec![408]);
    let third = ok(invoke(&api).await);
    assert_eq!(counts(&third, "1001"), ("ok".into(), 5, 1, 1, 0, 1));
    assert_eq!(
        world.attempts()[6..],
        [(more_ids[0].clone(), 408), (more_ids[0].clone(), 200)]
    );
    assert_eq!(world.delivered_to("1001"), [ids, more_ids].concat());
    assert_no_leaks(
        &world,
        &[&process.output(), &summary.to_string(), &again.to_string()],
    );
}

/// How many requests the receiver got under each `Idempotency-Key` (one key per message).
fn tries_per_message(world: &World) -> BTreeMap<String, usize> {
    let mut tries = BTreeMap::new();
    for (key, _) in world.attempts() {
        *tries.entry(key).or_insert(0) += 1;
    }
    tries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_platform_that_may_have_taken_a_message_gets_it_at_most_twice_a_run() {
    let world = World::new(AscConfig::team()).await;
    let app = "1022";
    // Three reviews make one Slack message (one Idempotency-Key) at every try.
    let (reviews, _) = feed("m", 3, 10);
    world.asc.set_reviews(app, reviews);
    let env = fast(&[
        ("WEBHOOK_FORMAT", "slack"),
        ("WEBHOOK_MAX_ATTEMPTS", "4"),
        ("WEBHOOK_TIMEOUT_SECONDS", "1"),
    ]);
    let (api, process) = world.lambda_with(app, &env);
    let mut outputs = Vec::new();

    // Each run below is the message's next run: the same message, every try recorded whole.
    let mut run_failing = async |what: &str, expected_tries: usize| {
        let message = failed(invoke(&api).await);
        assert!(
            message.ends_with(&format!("(after {expected_tries} attempts)")),
            "{what}: {message}"
        );
        let tries = tries_per_message(&world);
        assert_eq!(tries.len(), 1, "{what}: one message, {tries:?}");
        assert_eq!(
            tries.values().next(),
            Some(&expected_tries),
            "{what}: {tries:?}"
        );
        let bodies: Vec<String> = world
            .receiver
            .received()
            .into_iter()
            .map(|r| r.body)
            .collect();
        assert!(
            bodies.windows(2).all(|pair| pair[0] == pair[1]),
            "{what}: the same body at every try"
        );
        world.receiver.reset();
        outputs.push(message);
    };

    // A 503 may come after Slack posted the message: one more try, then the run gives up.
    world.receiver.fail_from(1, 503);
    run_failing("always 503", 2).await;
    // So may a 408.
    world.receiver.fail_from(1, 408);
    run_failing("always 408", 2).await;
    // And an answer later than WEBHOOK_TIMEOUT_SECONDS, the body already sent.
    world.receiver.set_delay(Duration::from_secs(3));
    run_failing("no answer in time", 2).await;
    // One more try after the 503 whatever it ends in, even a certain refusal (429).
    world.receiver.respond_with(vec![429, 503, 429]);
    run_failing("429, 503, 429", 3).await;

    // 429 takes nothing: tried up to WEBHOOK_MAX_ATTEMPTS, and the fourth try delivers.
    world.receiver.respond_with(vec![429, 429, 429]);
    world.receiver.set_retry_after(Some("0"));
    let summary = ok(invoke(&api).await);
    assert_eq!(
        counts(&summary, app),
        ("ok".into(), 3, 3, 3, 0, 1),
        "{summary}"
    );
    let statuses: Vec<u16> = world.attempts().into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, [429, 429, 429, 200]);
    assert_eq!(tries_per_message(&world).len(), 1);
    assert_eq!(world.recorded_deliveries(app).await.len(), 3);

    // Nothing listens at the webhook's address: a refused connection takes nothing either.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut secret = world.secret_json(keys::PRIVATE_KEY_P8);
    secret["webhook_url"] = json!(format!("http://127.0.0.1:{port}/{}", world.marker));
    world.set_secret(&secret.to_string()).await;
    let (more, _) = feed("n", 1, 5);
    world.asc.push_review(app, more[0].clone());
    let (api, refused) = world.lambda_with(app, &env);
    let message = failed(invoke(&api).await);
    assert!(
        message.contains("could not be reached") && message.ends_with("(after 4 attempts)"),
        "{message}"
    );
    outputs.push(message);
    outputs.push(process.output());
    outputs.push(refused.output());
    assert_no_leaks(
        &world,
        &outputs.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_receiver_that_may_have_taken_a_message_gets_every_try_under_one_key() {
    let world = World::new(AscConfig::team()).await;
    let app = "1023";
    let (reviews, ids) = feed("j", 1, 10);
    world.asc.set_reviews(app, reviews);
    world.receiver.fail_from(1, 503);
    let (api, process) = world.lambda_with(app, &fast(&[("WEBHOOK_MAX_ATTEMPTS", "4")]));

    let message = failed(invoke(&api).await);
    assert!(message.ends_with("(after 4 attempts)"), "{message}");
    assert_eq!(
        world.attempts(),
        vec![(ids[0].clone(), 503); 4],
        "a json receiver drops the copies by Idempotency-Key"
    );
    assert_no_leaks(&world, &[&process.output(), &message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_400_is_not_retried_keeps_earlier_deliveries_and_the_rest_follow() {
    let world = World::new(AscConfig::team()).await;
    let (reviews, ids) = feed("b", 5, 10);
    world.asc.set_reviews("1002", reviews);
    world.receiver.respond_with(vec![200, 200, 400]);
    world.receiver.set_error_body(Some("invalid_payload\nmore"));

    let (api, process) = world.lambda_with("1002", FAST);
    let message = failed(invoke(&api).await);
    let expected = format!(
        "1 of 1 apps failed: 1002: review {} to webhook_url (json): the webhook answered 400: invalid_payload",
        ids[2]
    );
    assert_eq!(message, expected, "one attempt, the body's first line only");
    assert_eq!(
        world.attempts(),
        [
            (ids[0].clone(), 200),
            (ids[1].clone(), 200),
            (ids[2].clone(), 400)
        ],
        "exactly one attempt for the refused review, nothing after it"
    );
    assert_eq!(world.delivered_to("1002"), ids[..2]);
    assert_eq!(world.recorded_deliveries("1002").await, ids[..2]);
    assert!(
        world.lease_given_back("1002").await,
        "a failed app gives its lease back"
    );
    assert_eq!(
        world.watermark_review("1002").await.as_deref(),
        Some(ids[1].as_str())
    );

    // The receiver takes the payload again (its script ran out): the rest goes out, in order.
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, "1002"), ("ok".into(), 5, 3, 3, 0, 1));
    assert_eq!(world.delivered_to("1002"), ids);
    assert_eq!(world.receiver.received().len(), 6);
    assert_no_leaks(&world, &[&process.output(), &message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_429_waits_retry_after_capped_by_the_setting_and_by_the_time_left() {
    let world = World::new(AscConfig::team()).await;
    let app = "1003";
    let (reviews, ids) = feed("r", 2, 30);
    world.asc.set_reviews(app, reviews);
    world.receiver.respond_with(vec![429]);
    world.receiver.set_retry_after(Some("1"));
    let (api, process) = world.lambda_with(
        app,
        &fast(&[
            ("RETRY_AFTER_MAX_SECONDS", "3"),
            ("DEADLINE_MARGIN_SECONDS", "5"),
        ]),
    );

    // Retry-After: 1 is obeyed (the backoff alone would wait at most 50 ms).
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 2, 2, 2, 0, 1));
    let received = world.receiver.received();
    let statuses: Vec<u16> = received.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200, 200]);
    assert_eq!(
        received[0].header("idempotency-key"),
        received[1].header("idempotency-key")
    );
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_millis(900), "waited only {gap:?}");
    assert!(gap < Duration::from_millis(2_500), "waited {gap:?}");
    assert_eq!(world.delivered_to(app), ids);

    // Retry-After: 120 is cut to RETRY_AFTER_MAX_SECONDS = 3.
    let (more, more_ids) = feed("s", 1, 20);
    world.asc.push_review(app, more[0].clone());
    world.receiver.respond_with(vec![429]);
    world.receiver.set_retry_after(Some("120"));
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 3, 1, 1, 0, 1));
    let received = world.receiver.received();
    assert_eq!(received.len(), 5);
    assert_eq!((received[3].status, received[4].status), (429, 200));
    let gap = received[4].at - received[3].at;
    assert!(
        gap >= Duration::from_millis(2_900) && gap < Duration::from_secs(6),
        "waited {gap:?}"
    );

    // A process with the default 60 s cap, warm, whose invocation has 9 s: with the 5 s margin
    // the Retry-After: 120 wait is cut to the ~4 s left; the retry goes out then, and no further
    // delivery starts.
    let (api, short) = world.lambda_with(app, &fast(&[("DEADLINE_MARGIN_SECONDS", "5")]));
    assert_eq!(counts(&ok(invoke(&api).await), app).3, 0);
    let (late, late_ids) = feed("t", 2, 10);
    for r in late {
        world.asc.push_review(app, r);
    }
    world.receiver.respond_with(vec![429]);
    let started = Instant::now();
    let summary = ok(api.invoke(json!({}), Duration::from_secs(9)).await);
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "answered in time"
    );
    assert_eq!(
        counts(&summary, app),
        ("deadline".into(), 5, 2, 1, 1, 1),
        "{summary}"
    );
    let received = world.receiver.received();
    assert_eq!(received.len(), 7);
    assert_eq!((received[5].status, received[6].status), (429, 200));
    let gap = received[6].at - received[5].at;
    assert!(
        gap < Duration::from_secs(6),
        "the wait must end at the deadline margin, not after 60 s: {gap:?}"
    );
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 5, 1, 1, 0, 1));
    assert_eq!(
        world.delivered_to(app),
        [ids, more_ids, late_ids].concat(),
        "each once, in order"
    );
    assert_no_leaks(&world, &[&process.output(), &short.output()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_too_slow_or_unreachable_fails_after_the_attempts_without_naming_the_url() {
    let world = World::new(AscConfig::team()).await;
    let app = "1004";
    let (reviews, ids) = feed("s", 2, 10);
    world.asc.set_reviews(app, reviews);
    world.receiver.set_delay(Duration::from_secs(3));
    let (api, process) = world.lambda_with(
        app,
        &fast(&[
            ("WEBHOOK_TIMEOUT_SECONDS", "1"),
            ("WEBHOOK_MAX_ATTEMPTS", "2"),
        ]),
    );

    let message = failed(invoke(&api).await);
    assert!(
        message.starts_with(&format!(
            "1 of 1 apps failed: {app}: review {} to webhook_url (json): the webhook could not be reached: timed out",
            ids[0]
        )) && message.ends_with("(after 2 attempts)"),
        "{message}"
    );
    assert!(!message.contains(&world.receiver.base_url()), "{message}");
    let keys: Vec<String> = world.attempts().into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, [ids[0].clone(), ids[0].clone()]);
    let received = world.receiver.received();
    let gap = received[1].at - received[0].at;
    assert!(
        gap >= Duration::from_millis(950) && gap < Duration::from_millis(2_500),
        "the first try gave up after 1 s, not after the receiver's 3 s: {gap:?}"
    );
    assert!(world.recorded_deliveries(app).await.is_empty());
    assert_eq!(world.watermark_review(app).await, None);

    // A prompt webhook again: the first review goes out a third time (the receiver saw the two
    // timed-out tries; the Idempotency-Key lets it drop them), then the second.
    world.receiver.set_delay(Duration::ZERO);
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 2, 2, 2, 0, 1));
    let keys: Vec<String> = world.attempts().into_iter().map(|(key, _)| key).collect();
    assert_eq!(
        keys,
        [
            ids[0].clone(),
            ids[0].clone(),
            ids[0].clone(),
            ids[1].clone()
        ]
    );
    assert_eq!(world.recorded_deliveries(app).await, ids);

    // Nothing listens at the webhook's address (a new process: the secret is read once per process).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut secret = world.secret_json(keys::PRIVATE_KEY_P8);
    secret["webhook_url"] = json!(format!("http://127.0.0.1:{port}/{}", world.marker));
    world.set_secret(&secret.to_string()).await;
    let (more, more_ids) = feed("u", 1, 5);
    world.asc.push_review(app, more[0].clone());
    let (api, unreachable) = world.lambda_with(
        app,
        &fast(&[
            ("WEBHOOK_TIMEOUT_SECONDS", "1"),
            ("WEBHOOK_MAX_ATTEMPTS", "2"),
        ]),
    );
    let refused = failed(invoke(&api).await);
    assert!(
        refused.starts_with(&format!(
            "1 of 1 apps failed: {app}: review {} to webhook_url (json): the webhook could not be reached: ",
            more_ids[0]
        )) && refused.ends_with("(after 2 attempts)"),
        "{refused}"
    );
    assert!(!refused.contains("http://"), "{refused}");
    assert_eq!(world.receiver.received().len(), 4);
    assert_eq!(world.recorded_deliveries(app).await, ids);
    assert_no_leaks(
        &world,
        &[&process.output(), &unreachable.output(), &message, &refused],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_store_connect_rate_limits_server_errors_and_timeouts_are_retried_then_reported() {
    let world = World::new(AscConfig::team()).await;
    let app = "1005";
    let (first, first_ids) = feed("a", 3, 30);
    world.asc.set_reviews(app, first);
    world.asc.fail_next(
        2,
        429,
        error_body(
            429,
            "RATE_LIMIT_EXCEEDED",
            "The request rate limit has been reached.",
            "We've received too many requests for this API. Please wait and try again or slow down your request rate.",
        ),
        vec![(
            "X-Rate-Limit".into(),
            "user-hour-lim:3500;user-hour-rem:0;".into(),
        )],
    );
    let (api, process) = world.lambda_with(app, &fast(&[("ASC_TIMEOUT_SECONDS", "1")]));

    // 429, 429, 200.
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 3, 3, 3, 0, 1));
    assert_eq!(world.asc.review_list_requests(app), 3);
    assert_eq!(world.delivered_to(app), first_ids);
    assert!(
        process.output().contains("user-hour-rem:0"),
        "Apple's X-Rate-Limit header is logged"
    );

    // 503, 200.
    let (second, second_ids) = feed("b", 2, 20);
    for r in second {
        world.asc.push_review(app, r);
    }
    world.asc.fail_next(
        1,
        503,
        error_body(
            503,
            "SERVICE_UNAVAILABLE",
            "The service is unavailable.",
            "Try again later.",
        ),
        vec![],
    );
    world.asc.clear_requests();
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 5, 2, 2, 0, 1));
    assert_eq!(world.asc.review_list_requests(app), 2);

    // 500 on every try: four tries (the default), then the app fails; nothing is delivered.
    let (third, third_ids) = feed("c", 2, 10);
    for r in third {
        world.asc.push_review(app, r);
    }
    world.asc.fail_next(
        100,
        500,
        error_body(
            500,
            "UNEXPECTED_ERROR",
            "An unexpected error occurred.",
            "An unexpected error occurred on the server side.",
        ),
        vec![],
    );
    world.asc.clear_requests();
    let server_error = failed(invoke(&api).await);
    assert_eq!(
        server_error,
        format!(
            "1 of 1 apps failed: {app}: page 1: App Store Connect answered 500: UNEXPECTED_ERROR: \
             An unexpected error occurred on the server side. (after 4 attempts)"
        )
    );
    assert_eq!(world.asc.review_list_requests(app), 4);

    // Every answer slower than ASC_TIMEOUT_SECONDS = 1: four timed-out tries.
    world.asc.fail_next(0, 500, Value::Null, vec![]);
    world.asc.set_delay(Duration::from_secs(2));
    world.asc.clear_requests();
    let timed_out = failed(invoke(&api).await);
    assert!(
        timed_out.starts_with(&format!(
            "1 of 1 apps failed: {app}: page 1: cannot reach App Store Connect: timed out"
        )) && timed_out.ends_with("(after 4 attempts)"),
        "{timed_out}"
    );
    assert_eq!(world.asc.review_list_requests(app), 4);
    assert_eq!(
        world.delivered_to(app),
        [first_ids.clone(), second_ids.clone()].concat()
    );

    // Healthy again: what waited goes out.
    world.asc.set_delay(Duration::ZERO);
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 7, 2, 2, 0, 1));
    assert_eq!(
        world.delivered_to(app),
        [first_ids, second_ids, third_ids].concat()
    );
    assert_no_leaks(&world, &[&process.output(), &server_error, &timed_out]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_fails_then_the_same_warm_process_picks_up_the_rotated_secret() {
    let world = World::new(AscConfig::team()).await;
    let app = "1006";
    let (reviews, ids) = feed("k", 2, 10);
    world.asc.set_reviews(app, reviews);
    world
        .set_secret(&world.secret_json(keys::OTHER_KEY_P8).to_string())
        .await;
    let (api, mut process) = world.lambda_with(app, FAST);

    let message = failed(invoke(&api).await);
    assert_eq!(
        message,
        format!(
            "1 of 1 apps failed: {app}: page 1: App Store Connect rejected the API key (401 NOT_AUTHORIZED): \
             check `key_id`, `issuer_id` (omit it only for an individual key) and `private_key` in the \
             secret, and that the key has not been revoked"
        )
    );
    let auth: Vec<bool> = world.asc.requests().iter().map(|r| r.auth_ok).collect();
    assert_eq!(
        auth,
        [false, false],
        "one retry with the secret read again, no more"
    );
    assert!(world.receiver.received().is_empty(), "nothing delivered");
    assert_eq!(world.watermark_review(app).await, None, "no watermark");
    assert!(world.recorded_deliveries(app).await.is_empty());

    // Rotated: the process still holds the old key, is refused once, reads the secret again.
    world
        .set_secret(&world.secret_json(keys::PRIVATE_KEY_P8).to_string())
        .await;
    world.asc.clear_requests();
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 2, 2, 2, 0, 1));
    let auth: Vec<(bool, String)> = world
        .asc
        .requests()
        .iter()
        .map(|r| (r.auth_ok, r.path.clone()))
        .collect();
    let reviews = format!("/v1/apps/{app}/customerReviews");
    let name = format!("/v1/apps/{app}");
    assert_eq!(
        auth,
        [(false, reviews.clone()), (true, reviews), (true, name)],
        "refused once, then the page and the app's name with the new key"
    );
    assert_eq!(world.delivered_to(app), ids);
    assert_eq!(
        process.wait_exit(Duration::ZERO).await,
        None,
        "the same warm process served both"
    );
    assert_no_leaks(&world, &[&process.output(), &message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_fails_at_once_naming_the_role() {
    let world = World::new(AscConfig::team()).await;
    let app = "1007";
    let (reviews, ids) = feed("f", 2, 10);
    world.asc.set_reviews(app, reviews);
    world.asc.fail_next(
        1,
        403,
        error_body(
            403,
            "FORBIDDEN_ERROR",
            "This request is forbidden for security reasons",
            "The API key in use does not allow this request",
        ),
        vec![],
    );
    let (api, process) = world.lambda_with(app, FAST);
    let message = failed(invoke(&api).await);
    assert!(
        message.starts_with(&format!(
            "1 of 1 apps failed: {app}: page 1: the API key's role cannot read this app's customer \
             reviews (403 FORBIDDEN_ERROR): give the key a role with access to Customer Reviews"
        )),
        "{message}"
    );
    assert_eq!(world.asc.review_list_requests(app), 1, "no retry");
    assert!(world.receiver.received().is_empty());

    // The role is fixed: the next run delivers.
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 2, 2, 2, 0, 1));
    assert_eq!(world.delivered_to(app), ids);
    assert_no_leaks(&world, &[&process.output(), &message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_app_fails_by_name_while_the_other_app_delivers() {
    let world = World::new(AscConfig::team()).await;
    let (reviews, ids) = feed("g", 3, 10);
    world.asc.set_reviews("1008", reviews);
    let (api, process) = world.lambda_with("1999,1008", FAST);
    let message = failed(invoke(&api).await);
    assert_eq!(
        message,
        "1 of 2 apps failed: 1999: page 1: app 1999 was not found (404): check APP_IDS, and that \
         the API key's team owns the app"
    );
    assert_eq!(world.asc.review_list_requests("1999"), 1, "no retry");
    assert_eq!(world.delivered_to("1008"), ids);
    assert_eq!(world.delivered().len(), 1, "only 1008 delivered");
    assert_eq!(
        world.watermark_review("1008").await.as_deref(),
        Some(ids[2].as_str())
    );
    assert_no_leaks(&world, &[&process.output(), &message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_second_page_delivers_nothing_until_it_parses_again() {
    let world = World::new(AscConfig::team()).await;
    let app = "1009";
    let (reviews, ids) = feed("p", 201, 60);
    world.asc.set_reviews(app, reviews);
    world.asc.set_page_override(app, 1, "<html>oops".to_owned());
    let (api, process) = world.lambda_with(app, FAST);

    let message = failed(invoke(&api).await);
    assert!(
        message.starts_with(&format!(
            "1 of 1 apps failed: {app}: page 2: the response could not be parsed: "
        )),
        "{message}"
    );
    assert_eq!(
        world.asc.review_list_requests(app),
        2,
        "a 200 that does not parse is not retried"
    );
    assert!(
        world.receiver.received().is_empty(),
        "not even page 1's reviews"
    );
    assert!(world.recorded_deliveries(app).await.is_empty());
    assert_eq!(world.watermark_review(app).await, None);

    world.asc.clear_overrides(app);
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 201, 201, 201, 0, 2));
    assert_eq!(world.delivered_to(app), ids);
    assert_no_leaks(&world, &[&process.output(), &message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_next_that_repeats_an_earlier_page_ends_the_reading_without_duplicates() {
    let world = World::new(AscConfig::team()).await;
    // 1010: two real pages; page 2 (the last) links to itself, cursor and all, absolutely.
    let (looping, looping_ids) = feed("l", 201, 60);
    world.asc.set_reviews("1010", looping);
    let page_2 = next_link_of(&first_page_url(&world.asc, "1010")).await;
    assert!(page_2.contains("cursor="), "{page_2}");
    world.asc.set_next_link_override("1010", 1, page_2);
    // 1011: one page, whose relative links.next names a cursor for that same page: page 1 is
    // read a second time (under a cursor it has not seen), then the cursor repeats.
    let (small, small_ids) = feed("m", 5, 30);
    world.asc.set_reviews("1011", small);
    world.asc.set_next_link_override(
        "1011",
        0,
        format!("?cursor={}&limit=200&sort=-createdDate", encode_cursor(0)),
    );
    // 1012: page 1 links back to the first page's own URL (no cursor), relative to the origin.
    let (back, back_ids) = feed("n", 3, 30);
    world.asc.set_reviews("1012", back);
    world.asc.set_next_link_override(
        "1012",
        0,
        "/v1/apps/1012/customerReviews?sort=-createdDate&limit=200".to_owned(),
    );
    world.asc.clear_requests();
    let (api, process) = world.lambda_with("1010,1011,1012", FAST);

    // A loop would never answer; the invocation's own limit is short to say so quickly.
    let summary = ok(api.invoke(json!({}), Duration::from_secs(90)).await);
    assert_eq!(
        counts(&summary, "1010"),
        ("ok".into(), 201, 201, 201, 0, 2),
        "{summary}"
    );
    assert_eq!(world.asc.review_list_requests("1010"), 2);
    assert_eq!(counts(&summary, "1011"), ("ok".into(), 10, 5, 5, 0, 2));
    assert_eq!(world.asc.review_list_requests("1011"), 2);
    assert_eq!(counts(&summary, "1012"), ("ok".into(), 6, 3, 3, 0, 2));
    assert_eq!(world.asc.review_list_requests("1012"), 2);
    assert_eq!(world.delivered_to("1010"), looping_ids);
    assert_eq!(world.delivered_to("1011"), small_ids);
    assert_eq!(world.delivered_to("1012"), back_ids);
    let cursor_reads: Vec<String> = world
        .asc
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/apps/1011/customerReviews")
        .map(|r| r.query.clone().unwrap_or_default())
        .collect();
    let cursor_of = |query: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "cursor")
            .map(|(_, value)| value.into_owned())
    };
    assert_eq!(
        cursor_of(&cursor_reads[1]),
        Some(encode_cursor(0)),
        "the relative link's cursor was read: {cursor_reads:?}"
    );
    assert!(
        world.asc.requests().iter().all(|r| r.auth_ok),
        "every page read with a valid token"
    );

    // Still looping next time: the run ends again and sends nothing.
    let again = ok(api.invoke(json!({}), Duration::from_secs(90)).await);
    for app in ["1010", "1011", "1012"] {
        assert_eq!(counts(&again, app).0, "ok");
        assert_eq!(counts(&again, app).3, 0, "{again}");
    }
    assert_eq!(world.receiver.received().len(), 209);
    assert!(
        process
            .output()
            .contains("next page repeats an earlier page")
    );
    assert_no_leaks(&world, &[&process.output()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_next_to_another_origin_fails_the_app_and_the_token_never_goes_there() {
    let world = World::new(AscConfig::team()).await;
    let app = "1013";
    let (reviews, ids) = feed("o", 5, 60);
    world.asc.set_reviews(app, reviews.clone());
    // Another server on another port, which would accept the token if it were sent.
    let foreign = AscDouble::start(AscConfig::team());
    foreign.set_reviews(app, reviews);
    // The next override applies to the last page too.
    let elsewhere = format!(
        "{}/v1/apps/{app}/customerReviews?cursor={}&limit=200&sort=-createdDate",
        foreign.base_url(),
        encode_cursor(2)
    );
    world.asc.set_next_link_override(app, 0, elsewhere);
    world.asc.clear_requests();
    let (api, process) = world.lambda_with(app, FAST);

    let message = failed(invoke(&api).await);
    assert_eq!(
        message,
        format!(
            "1 of 1 apps failed: {app}: page 1: links.next points outside ASC_BASE_URL's origin; \
             refusing to send the token there"
        )
    );
    assert!(
        foreign.requests().is_empty(),
        "the foreign server got nothing"
    );
    assert_eq!(
        world.asc.review_list_requests(app),
        1,
        "no page after the first"
    );
    assert!(world.receiver.received().is_empty(), "nothing delivered");
    assert!(!message.contains(&foreign.base_url()));

    world.asc.clear_overrides(app);
    let summary = ok(invoke(&api).await);
    assert_eq!(counts(&summary, app), ("ok".into(), 5, 5, 5, 0, 1));
    assert_eq!(world.delivered_to(app), ids);
    assert!(foreign.requests().is_empty());
    assert_no_leaks(&world, &[&process.output(), &message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_reviews_inside_the_overlap_are_delivered_once_and_older_ones_never() {
    let world = World::new(AscConfig::team()).await;
    let app = "1014";
    let (reviews, ids) = feed("n", 3, 10);
    let newest_date = reviews[2]["attributes"]["createdDate"]
        .as_str()
        .unwrap()
        .to_owned();
    world.asc.set_reviews(app, reviews);
    // Baseline 200 h back, so "before the overlap" and "before the baseline" differ.
    let (api, process) = world.lambda_with(app, &fast(&[("BACKFILL_HOURS", "200")]));
    let first = ok(invoke(&api).await);
    assert_eq!(counts(&first, app), ("ok".into(), 3, 3, 3, 0, 1));
    assert_eq!(world.delivered_to(app), ids);

    // Published late, dated before the newest delivered review.
    let late = |id: &str, date: &str| review(id, date, 3, None, Some("late"), None, Some("FRA"));
    world
        .asc
        .push_review(app, late("late-5h", &minutes_ago(5 * 60, 9)));
    world
        .asc
        .push_review(app, late("late-30h", &minutes_ago(30 * 60, -8)));
    // Same instant as the watermark review, smaller id: after it in no order, so late too.
    world.asc.push_review(app, late("n00001z", &newest_date));
    // Before the overlap (newest − 72 h) but after the baseline: too late to look for.
    world
        .asc
        .push_review(app, late("too-late-100h", &minutes_ago(100 * 60, 0)));
    // Before the baseline: never.
    world
        .asc
        .push_review(app, late("pre-baseline-250h", &minutes_ago(250 * 60, 0)));

    let second = ok(invoke(&api).await);
    assert_eq!(counts(&second, app), ("ok".into(), 8, 3, 3, 0, 1));
    assert_eq!(
        world.delivered_to(app),
        [ids.clone(), strings(&["late-30h", "late-5h", "n00001z"])].concat(),
        "late ones once, oldest first (ties by id)"
    );
    assert_eq!(
        world.watermark_review(app).await.as_deref(),
        Some(ids[2].as_str()),
        "a late review does not move the watermark"
    );

    let third = ok(invoke(&api).await);
    assert_eq!(counts(&third, app), ("ok".into(), 8, 0, 0, 0, 1));
    assert_eq!(world.receiver.received().len(), 6);
    assert_no_leaks(&world, &[&process.output()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_created_dates_across_a_page_boundary_go_out_once_ordered_by_id() {
    let world = World::new(AscConfig::team()).await;
    let app = "1015";
    let date = minutes_ago(30, 2);
    let mut ids: Vec<String> = (0..202).map(|i| format!("t{i:05}")).collect();
    // Stored (and so paged) in a scrambled order: the relay must order the ties itself.
    let scrambled = (0..202).map(|i| ids[(i * 37) % 202].clone());
    world.asc.set_reviews(
        app,
        scrambled
            .map(|id| review(&id, &date, 4, None, None, None, None))
            .collect(),
    );
    let (api, process) = world.lambda_with(app, FAST);
    let first = ok(invoke(&api).await);
    assert_eq!(counts(&first, app), ("ok".into(), 202, 202, 202, 0, 2));
    assert_eq!(world.delivered_to(app), ids);

    world
        .asc
        .push_review(app, review("t00100x", &date, 5, None, None, None, None));
    let second = ok(invoke(&api).await);
    assert_eq!(counts(&second, app), ("ok".into(), 203, 1, 1, 0, 2));
    ids.push("t00100x".to_owned());
    assert_eq!(world.delivered_to(app), ids);
    assert_eq!(world.recorded_deliveries(app).await.len(), 203);
    assert_no_leaks(&world, &[&process.output()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_invocations_at_once_deliver_each_review_once_and_one_is_locked_out() {
    let world = World::new(AscConfig::team()).await;
    let app = "1016";
    world.asc.set_reviews(app, vec![]);
    let (api_a, process_a) = world.lambda_with(app, FAST);
    let (api_b, process_b) = world.lambda_with(app, FAST);
    // Warm both processes (and create the app's state) so their runs start together.
    for api in [&api_a, &api_b] {
        let summary = ok(invoke(api).await);
        assert_eq!(counts(&summary, app), ("ok".into(), 0, 0, 0, 0, 1));
    }

    let (reviews, ids) = feed("c", 8, 5);
    for r in reviews {
        world.asc.push_review(app, r);
    }
    world.receiver.set_delay(Duration::from_millis(300));
    let (a, b) = tokio::join!(invoke(&api_a), invoke(&api_b));
    let (a, b) = (ok(a), ok(b));
    let mut statuses = [counts(&a, app), counts(&b, app)];
    statuses.sort();
    // The run locked out may have read the reviews before the other took the lease.
    let locked_read = (statuses[0].1, statuses[0].5);
    assert!(
        [(0, 0), (8, 1)].contains(&locked_read),
        "the locked run read nothing, or the one page: {a} {b}"
    );
    statuses[0].1 = 0;
    statuses[0].5 = 0;
    assert_eq!(
        statuses,
        [
            ("locked".into(), 0, 0, 0, 0, 0),
            ("ok".into(), 8, 8, 8, 0, 1)
        ],
        "{a} {b}"
    );
    assert_eq!(world.delivered_to(app), ids, "each once, in order");
    assert!(world.lease_given_back(app).await, "the lease is given back");

    world.receiver.set_delay(Duration::ZERO);
    let (a, b) = tokio::join!(invoke(&api_a), invoke(&api_b));
    assert_eq!(ok(a)["apps"][0]["delivered"], 0);
    assert_eq!(ok(b)["apps"][0]["delivered"], 0);
    assert_eq!(world.receiver.received().len(), 8);
    assert_no_leaks(&world, &[&process_a.output(), &process_b.output()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_short_of_time_stops_at_the_deadline_margin_and_the_next_run_finishes() {
    let world = World::new(AscConfig::team()).await;
    let app = "1017";
    world.asc.set_reviews(app, vec![]);
    let (api, process) = world.lambda_with(app, &fast(&[("DEADLINE_MARGIN_SECONDS", "5")]));
    ok(invoke(&api).await); // warm, and the state exists

    let (reviews, ids) = feed("d", 10, 5);
    for r in reviews {
        world.asc.push_review(app, r);
    }
    world.receiver.set_delay(Duration::from_secs(1));
    // 10 s to the deadline, 5 s of margin: deliveries (1 s each) may start for about 5 s.
    let started = Instant::now();
    let summary = ok(api.invoke(json!({}), Duration::from_secs(10)).await);
    let took = started.elapsed();
    let (status, fetched, new, delivered, pending, _) = counts(&summary, app);
    assert_eq!(
        (status.as_str(), fetched, new),
        ("deadline", 10, 10),
        "{summary}"
    );
    assert!((1..10).contains(&delivered), "{summary}");
    assert_eq!(pending, 10 - delivered);
    assert!(
        took < Duration::from_secs(8),
        "no delivery starts within 5 s of the deadline: took {took:?}"
    );
    let delivered = delivered as usize;
    assert_eq!(world.delivered_to(app), ids[..delivered]);
    assert_eq!(
        world.watermark_review(app).await.as_deref(),
        Some(ids[delivered - 1].as_str())
    );
    assert!(world.lease_given_back(app).await);

    world.receiver.set_delay(Duration::ZERO);
    let summary = ok(invoke(&api).await);
    assert_eq!(
        counts(&summary, app),
        (
            "ok".into(),
            10,
            10 - delivered as u64,
            10 - delivered as u64,
            0,
            1
        )
    );
    assert_eq!(world.delivered_to(app), ids, "all once, in order");
    assert_no_leaks(&world, &[&process.output()]);
}

/// Invokes `process` (10 s) and kills it once the receiver has the second message; checks that
/// the app's lease was left to lapse at the deadline plus 5 s. The process's output and when
/// its lease lapses (Unix ms).
async fn kill_at_the_second_message(
    world: &World,
    app: &str,
    api: &RuntimeApi,
    mut process: support::runtime_api::LambdaProcess,
) -> (String, i64) {
    let invoked_ms = now_ms();
    tokio::select! {
        answer = api.invoke(json!({}), Duration::from_secs(10)) => {
            panic!("the run ended before the kill: {answer:?}")
        }
        _ = world.receiver.wait_for(2, Duration::from_secs(60)) => {}
    }
    process.kill();
    let output = process.output();
    let lease = world
        .item(app, "lease")
        .await
        .expect("the killed run never gave its lease back");
    let lease_until: i64 = lease["lease_until_ms"].as_n().unwrap().parse().unwrap();
    let expected = invoked_ms + 10_000 + 5_000;
    assert!(
        (lease_until - expected).abs() < 1_000,
        "the lease lasts to the deadline + 5 s: {lease_until} vs {expected}"
    );
    (output, lease_until)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_delivery_holds_the_app_until_its_lease_lapses_then_one_resend() {
    let world = World::new(AscConfig::team()).await;
    let app = "1018";
    let (reviews, ids) = feed("k", 5, 10);
    world.asc.set_reviews(app, reviews);
    world.receiver.set_delay(Duration::from_secs(2));
    // A 1 s margin: the 2 s deliveries may start until 9 s into the 10 s invocation.
    let env = fast(&[("DEADLINE_MARGIN_SECONDS", "1")]);
    let (api, process) = world.lambda_with(app, &env);

    let (killed_output, lease_until) = kill_at_the_second_message(&world, app, &api, process).await;
    // The first review was answered and recorded; the second was in flight.
    assert_eq!(world.recorded_deliveries(app).await, ids[..1]);

    world.receiver.set_delay(Duration::ZERO);
    let (api, process) = world.lambda_with(app, &env);
    let during = ok(invoke(&api).await);
    assert!(now_ms() < lease_until, "this run was inside the lease");
    assert_eq!(
        counts(&during, app),
        ("locked".into(), 0, 0, 0, 0, 0),
        "{during}"
    );
    assert_eq!(
        world.receiver.received().len(),
        2,
        "a locked run sends nothing"
    );

    let wait = lease_until - now_ms() + 200;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let after = ok(invoke(&api).await);
    assert_eq!(counts(&after, app), ("ok".into(), 5, 4, 4, 0, 1), "{after}");

    let delivered = world.delivered_to(app);
    assert_eq!(
        delivered,
        [&ids[..2], &ids[1..]].concat(),
        "the review in flight at the kill is the one sent twice"
    );
    let mut first_seen: Vec<String> = Vec::new();
    for id in &delivered {
        if !first_seen.contains(id) {
            first_seen.push(id.clone());
        }
    }
    assert_eq!(first_seen, ids, "first occurrences in order");
    assert!(
        delivered.len() - first_seen.len() <= 1,
        "at most one resend"
    );
    assert_eq!(world.recorded_deliveries(app).await, ids);
    assert_no_leaks(&world, &[&killed_output, &process.output()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_delivery_of_a_google_play_app_resends_only_the_review_in_flight() {
    use support::play::{PlayConfig, play_review};
    const PACKAGE: &str = "com.example.killed";
    let world = World::new(AscConfig::team()).await;
    let play = world.add_play(PlayConfig::fixture(), PACKAGE).await;
    let now_secs = now_ms() / 1_000;
    let ids: Vec<String> = (0..5).map(|i| format!("gp:killed{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let modified = now_secs - 3_600 * (5 - i as i64);
        play.push_review(
            PACKAGE,
            play_review(id, "Ana", "Crashes", 2, modified, "en-GB"),
        );
    }
    world.receiver.set_delay(Duration::from_secs(2));
    let base = play.base_url();
    let mut env: Vec<(&str, &str)> = fast(&[("DEADLINE_MARGIN_SECONDS", "1")])
        .into_iter()
        .collect();
    env.extend([("PLAY_PACKAGES", PACKAGE), ("PLAY_BASE_URL", base.as_str())]);
    let (api, process) = world.lambda_with("", &env);

    let (killed_output, lease_until) =
        kill_at_the_second_message(&world, PACKAGE, &api, process).await;
    assert_eq!(world.recorded_deliveries(PACKAGE).await, ids[..1]);

    world.receiver.set_delay(Duration::ZERO);
    let (api, process) = world.lambda_with("", &env);
    let wait = lease_until - now_ms() + 200;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let after = ok(invoke(&api).await);
    assert_eq!(
        counts(&after, PACKAGE),
        ("ok".into(), 5, 4, 4, 0, 1),
        "{after}"
    );
    assert_eq!(
        world.delivered_to(PACKAGE),
        [&ids[..2], &ids[1..]].concat(),
        "the review in flight at the kill is the one sent twice, the rest once, in order"
    );
    assert_eq!(world.recorded_deliveries(PACKAGE).await, ids);
    assert_no_leaks(&world, &[&killed_output, &process.output()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_while_several_apps_deliver_repeats_only_what_each_had_in_flight() {
    let world = World::new(AscConfig::team()).await;
    let apps = ["1031", "1032", "1033"];
    // Two destinations on the receiver, told apart by path.
    let mut secret = world.secret_json(keys::PRIVATE_KEY_P8);
    let fields = secret.as_object_mut().unwrap();
    fields.remove("webhook_url");
    fields.insert(
        "destinations".into(),
        json!([
            {"url": world.receiver.url(&format!("{}/a", world.marker)), "name": "a", "format": "json"},
            {"url": world.receiver.url(&format!("{}/b", world.marker)), "name": "b", "format": "json"},
        ]),
    );
    world.set_secret(&secret.to_string()).await;
    let mut ids: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, app) in apps.iter().enumerate() {
        let (reviews, app_ids) = feed(&format!("c{i}x"), 4, 10);
        world.asc.set_reviews(app, reviews);
        ids.insert(app, app_ids);
    }
    // Each message is answered 2 s after it arrives; the apps deliver at the same time.
    world.receiver.set_delay(Duration::from_secs(2));
    let env = fast(&[("DEADLINE_MARGIN_SECONDS", "1")]);
    let (api, mut process) = world.lambda_with(&apps.join(","), &env);

    // Six arrivals: each app's first message answered, and a later one on its way.
    tokio::select! {
        answer = api.invoke(json!({}), Duration::from_secs(10)) => {
            panic!("the run ended before the kill: {answer:?}")
        }
        _ = world.receiver.wait_for(6, Duration::from_secs(60)) => {}
    }
    process.kill();
    let killed_output = process.output();
    let before_kill = world.receiver.received();
    // (destination, app, review id) of every message the receiver got.
    let message = |r: &support::receiver::Received| {
        let review = &r.json.as_ref().expect("json body")["reviews"][0];
        (
            r.path.rsplit('/').next().unwrap().to_owned(),
            review["app_id"].as_str().unwrap().to_owned(),
            review["id"].as_str().unwrap().to_owned(),
        )
    };
    // Each app's last message before the kill: the one it had in flight.
    let mut in_flight = BTreeMap::new();
    for r in &before_kill {
        let (destination, app, id) = message(r);
        in_flight.insert(app, (destination, id));
    }

    let mut lease_until = 0;
    for app in apps {
        let lease = world
            .item(app, "lease")
            .await
            .expect("the killed run never gave its lease back");
        lease_until = lease_until.max(lease["lease_until_ms"].as_n().unwrap().parse().unwrap());
    }
    let wait = lease_until - now_ms() + 200;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    world.receiver.set_delay(Duration::ZERO);
    let (api, process) = world.lambda_with(&apps.join(","), &env);
    let after = ok(invoke(&api).await);
    for app in apps {
        assert_eq!(summary_app(&after, app)["status"], "ok", "{after}");
    }

    let mut copies: BTreeMap<(String, String), BTreeMap<String, usize>> = BTreeMap::new();
    let mut first_seen: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in world.receiver.received() {
        let (destination, app, id) = message(&r);
        let pair = (app, destination);
        let count = copies
            .entry(pair.clone())
            .or_default()
            .entry(id.clone())
            .or_insert(0);
        *count += 1;
        if *count == 1 {
            first_seen.entry(pair).or_default().push(id);
        }
    }
    let mut repeated = Vec::new();
    for app in apps {
        for destination in ["a", "b"] {
            let pair = (app.to_owned(), destination.to_owned());
            assert_eq!(
                first_seen.get(&pair),
                Some(&ids[app]),
                "{pair:?}: every review at least once, first copies in order"
            );
            let twice: Vec<&String> = copies[&pair]
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(id, n)| {
                    assert_eq!(*n, 2, "{pair:?}: {id} arrived {n} times");
                    id
                })
                .collect();
            assert!(twice.len() <= 1, "{pair:?}: {twice:?} all arrived twice");
            for id in twice {
                assert_eq!(
                    in_flight.get(app),
                    Some(&(destination.to_owned(), id.clone())),
                    "{pair:?}: {id} arrived twice, but the app's message in flight was another"
                );
                repeated.push(app);
            }
        }
    }
    assert!(
        repeated.len() >= 2,
        "the kill caught several apps with a message in flight: {in_flight:?}, repeated {repeated:?}"
    );
    for app in apps {
        assert_eq!(world.recorded_deliveries(app).await, ids[app]);
    }
    assert_no_leaks(&world, &[&killed_output, &process.output()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_hanging_near_the_deadline_does_not_keep_the_run_past_it() {
    let world = World::new(AscConfig::team()).await;
    let app = "1019";
    world.asc.set_reviews(app, vec![]);
    // The default per-try timeout (10 s) and margin (5 s).
    let (api, process) =
        world.lambda_with(app, &[("RETRY_BASE_MS", "50"), ("RETRY_MAX_MS", "200")]);
    ok(invoke(&api).await); // warm, and the state exists
    let (reviews, ids) = feed("h", 2, 5);
    for r in reviews {
        world.asc.push_review(app, r);
    }
    world.receiver.set_delay(Duration::from_secs(30));

    let started = Instant::now();
    let answer = api.invoke(json!({}), Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the invocation answered {took:?} after it started, past its 8 s deadline: {answer:?}"
    );
    assert_eq!(world.receiver.received().len(), 1, "one try, no retry");
    assert!(world.recorded_deliveries(app).await.is_empty());
    assert_no_leaks(&world, &[&process.output(), &format!("{answer:?}")]);
    let summary = ok(answer);
    assert_eq!(
        counts(&summary, app),
        ("deadline".into(), 2, 2, 0, 2, 1),
        "{summary}"
    );

    // With time enough and a receiver that answers, the next run delivers both, in order.
    world.receiver.set_delay(Duration::ZERO);
    let after = ok(invoke(&api).await);
    assert_eq!(counts(&after, app), ("ok".into(), 2, 2, 2, 0, 1), "{after}");
    assert_eq!(world.recorded_deliveries(app).await, ids);
    assert!(
        world.delivered_to(app).ends_with(&ids),
        "{:?}",
        world.delivered_to(app)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_app_store_connect_near_the_deadline_does_not_keep_the_run_past_it() {
    let world = World::new(AscConfig::team()).await;
    let app = "1020";
    world.asc.set_reviews(app, vec![]);
    let (api, process) = world.lambda_with(app, FAST);
    ok(invoke(&api).await);
    let (reviews, ids) = feed("j", 2, 5);
    for r in reviews {
        world.asc.push_review(app, r);
    }
    // Slower than the time the invocation has, faster than ASC_TIMEOUT_SECONDS (30 s).
    world.asc.set_delay(Duration::from_secs(14));

    let started = Instant::now();
    let answer = api.invoke(json!({}), Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the invocation answered {took:?} after it started, past its 8 s deadline: {answer:?}"
    );
    assert!(world.receiver.received().is_empty());
    assert_no_leaks(&world, &[&process.output(), &format!("{answer:?}")]);
    let summary = ok(answer);
    assert_eq!(
        summary_app(&summary, app)["status"],
        "deadline",
        "{summary}"
    );

    world.asc.set_delay(Duration::ZERO);
    let after = ok(invoke(&api).await);
    assert_eq!(counts(&after, app), ("ok".into(), 2, 2, 2, 0, 1), "{after}");
    assert_eq!(world.delivered_to(app), ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_apples_hourly_budget_low_the_overlap_re_scan_is_put_off_not_lost() {
    let world = World::new(AscConfig::team()).await;
    let app = "1021";
    // 201 reviews: two pages of 200, the second reaching back past the watermark.
    let (reviews, mut ids) = feed("k", 201, 30);
    world.asc.set_reviews(app, reviews);
    let (api, process) = world.lambda_with(app, FAST);
    ok(invoke(&api).await);
    assert_eq!(world.delivered_to(app), ids);

    // A late review dated before the whole first page, and a new one; Apple's budget runs low.
    let (late, late_ids) = feed("late", 1, 400);
    let (new, new_ids) = feed("new", 1, 0);
    world.asc.push_review(app, late[0].clone());
    world.asc.push_review(app, new[0].clone());
    world.asc.set_rate_limit(Some((3_500, 700)));
    let low = ok(invoke(&api).await);
    assert_eq!(summary_app(&low, app)["rescan_skipped"], true, "{low}");
    assert_eq!(counts(&low, app), ("ok".into(), 200, 1, 1, 0, 1), "{low}");
    ids.extend(new_ids);
    assert_eq!(world.delivered_to(app), ids);

    // With budget to spare again, the re-scan finds the late review.
    world.asc.set_rate_limit(Some((3_500, 3_000)));
    let full = ok(invoke(&api).await);
    assert!(
        summary_app(&full, app).get("rescan_skipped").is_none(),
        "{full}"
    );
    assert_eq!(counts(&full, app), ("ok".into(), 203, 1, 1, 0, 2), "{full}");
    ids.extend(late_ids);
    assert_eq!(world.delivered_to(app), ids);
    assert_no_leaks(&world, &[&process.output()]);
}
