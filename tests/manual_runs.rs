//! Manual events against the shipped binary running as a Lambda: a dry run, a replay, a test
//! message, and the metrics each run writes.

mod support;

use serde_json::{Value, json};
use support::asc::AscConfig;
use support::runtime_api::Invocation;
use support::world::{INVOKE_TIMEOUT, World, assert_no_leaks, feed, ok, summary_app};

/// The Embedded Metric Format documents in the process's output.
fn metric_documents(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_formats_everything_sends_nothing_and_writes_nothing() {
    let world = World::new(AscConfig::team()).await;
    let app = "5001";
    let (reviews, ids) = feed("d", 3, 10);
    world.asc.set_reviews(app, reviews);
    let (api, process) = world.lambda(app);

    let dry = ok(api.invoke(json!({"dry_run": true}), INVOKE_TIMEOUT).await);
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(summary_app(&dry, app)["delivered"], 3, "{dry}");
    assert!(world.receiver.received().is_empty(), "nothing sent");
    assert!(
        world.state_items().await.is_empty(),
        "no state, no lease, no delivered ids"
    );
    process
        .wait_for_output("run finished", INVOKE_TIMEOUT)
        .await;
    assert_eq!(
        process.output().matches("dry run: would send").count(),
        3,
        "{}",
        process.output()
    );
    assert!(
        metric_documents(&process.output()).is_empty(),
        "a dry run publishes no metrics"
    );

    // The real run that follows delivers the same reviews, once.
    let real = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert!(real.get("dry_run").is_none(), "{real}");
    assert_eq!(world.delivered_to(app), ids);
    assert_no_leaks(&world, &[&process.output(), &dry.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_publishes_four_metrics_without_a_per_app_dimension() {
    let world = World::new(AscConfig::team()).await;
    let (reviews, _) = feed("m", 4, 10);
    world.asc.set_reviews("5101", reviews);
    world.asc.set_reviews("5102", vec![]);
    let (api, process) = world.lambda("5101,5102");
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    // The process's output is read apart from its answer: wait for the line.
    process
        .wait_for_output("CloudWatchMetrics", INVOKE_TIMEOUT)
        .await;

    let docs = metric_documents(&process.output());
    assert_eq!(docs.len(), 1, "{}", process.output());
    let doc = &docs[0];
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "ReviewRelay");
    assert_eq!(directive["Dimensions"], json!([["FunctionName"]]));
    assert_eq!(directive["Metrics"].as_array().unwrap().len(), 4);
    assert_eq!(doc["ReviewsDelivered"], 4);
    assert_eq!(doc["ReviewsPending"], 0);
    assert_eq!(doc["FailedApps"], 0);
    // The newest review was created 11 minutes ago (`feed` dates them a minute apart).
    let age = doc["NewestReviewAgeSeconds"].as_u64().unwrap();
    assert!((600..=900).contains(&age), "{age}");
    assert!(doc["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);

    // Switched off, nothing is published.
    let (api, quiet) = world.lambda_with("5101", &[("EMIT_METRICS", "false")]);
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    quiet.wait_for_output("run finished", INVOKE_TIMEOUT).await;
    assert!(metric_documents(&quiet.output()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_delivers_what_was_never_sent_and_nothing_twice() {
    let world = World::new(AscConfig::team()).await;
    let app = "5201";
    // BACKFILL_HOURS is 48 in these tests: the first run skips the reviews from 50 hours ago.
    let (old, old_ids) = feed("o", 3, 50 * 60);
    let (recent, recent_ids) = feed("n", 2, 30);
    world
        .asc
        .set_reviews(app, [recent.clone(), old.clone()].concat());
    let (api, process) = world.lambda(app);
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(world.delivered_to(app), recent_ids);

    let replay = ok(api
        .invoke(
            json!({"app_ids": [app], "backfill_hours": 72}),
            INVOKE_TIMEOUT,
        )
        .await);
    assert_eq!(summary_app(&replay, app)["delivered"], 3, "{replay}");
    assert_eq!(
        world.delivered_to(app),
        [recent_ids.clone(), old_ids.clone()].concat()
    );

    // Again, and a plain run: nothing more.
    ok(api
        .invoke(json!({"backfill_hours": 72}), INVOKE_TIMEOUT)
        .await);
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(world.delivered_to(app).len(), 5);
    let mut recorded = world.recorded_deliveries(app).await;
    recorded.sort();
    let mut expected = [recent_ids, old_ids].concat();
    expected.sort();
    assert_eq!(recorded, expected);

    // Further back than delivered ids are remembered is refused, naming the limit.
    let Invocation::Err(err) = api
        .invoke(json!({"backfill_hours": 10_000}), INVOKE_TIMEOUT)
        .await
    else {
        panic!("a replay beyond the retention must be refused");
    };
    let message = err["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("reaches back at most 718 hours"),
        "{message}"
    );
    assert_eq!(world.delivered_to(app).len(), 5);
    assert_no_leaks(&world, &[&process.output(), message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_message_reaches_every_destination_and_says_which_failed() {
    let world = World::new(AscConfig::team()).await;
    let app = "5301";
    world.asc.set_reviews(app, vec![]);
    let (api, process) = world.lambda(app);

    let answer = ok(api
        .invoke(json!({"test_message": true}), INVOKE_TIMEOUT)
        .await);
    assert_eq!(answer["test_message"], true, "{answer}");
    assert_eq!(answer["destinations"][0]["status"], "sent", "{answer}");
    let sent = world.delivered_to(app);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].starts_with("review-relay-test-"), "{sent:?}");
    assert!(
        world.state_items().await.is_empty(),
        "a test writes no state"
    );
    assert!(world.asc.requests().is_empty(), "a test reads no reviews");

    world.receiver.fail_from(1, 404);
    let Invocation::Err(err) = api
        .invoke(json!({"test_message": true}), INVOKE_TIMEOUT)
        .await
    else {
        panic!("a test message that reached no one must fail the invocation");
    };
    let message = err["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("reached 0 of 1 destinations") && message.contains("404"),
        "{message}"
    );
    assert_no_leaks(&world, &[&process.output(), message, &answer.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistaken_events_are_refused_by_name_and_nothing_is_sent_or_written() {
    let world = World::new(AscConfig::team()).await;
    let app = "5401";
    let (reviews, ids) = feed("r", 2, 10);
    world.asc.set_reviews(app, reviews);
    let (api, process) = world.lambda(app);

    for (event, expected) in [
        (
            json!({"dryrun": true}),
            "event field `dryrun` is not known (did you mean `dryrun` → `dry_run`?)",
        ),
        (
            json!({"dryRun": true}),
            "(did you mean `dryRun` → `dry_run`?)",
        ),
        (
            json!({"backfill": 168}),
            "(did you mean `backfill` → `backfill_hours`?)",
        ),
        (json!({"app_ids": []}), "event field `app_ids` is empty"),
        // The Lambda console's default test event.
        (
            json!({"key1": "value1", "key2": "value2", "key3": "value3"}),
            "event fields `key1`, `key2`, `key3` are not known",
        ),
        (
            json!({"source": "aws.scheduler", "backfill_hours": 24}),
            "event field `backfill_hours` is for runs started by hand",
        ),
    ] {
        let Invocation::Err(err) = api.invoke(event.clone(), INVOKE_TIMEOUT).await else {
            panic!("{event} must be refused");
        };
        assert_eq!(err["errorType"], "InvalidEvent", "{err}");
        let message = err["errorMessage"].as_str().unwrap();
        assert!(message.contains(expected), "{event}: {message}");
        assert!(
            message.ends_with("nothing was sent or written"),
            "{message}"
        );
    }
    assert!(world.receiver.received().is_empty(), "nothing sent");
    assert!(world.asc.requests().is_empty(), "nothing read");
    assert!(world.state_items().await.is_empty(), "nothing written");
    assert!(
        metric_documents(&process.output()).is_empty(),
        "a refused event is not a run: no app counts as failed"
    );

    // The same process goes on serving.
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(world.delivered_to(app), ids);
    process
        .wait_for_output("CloudWatchMetrics", INVOKE_TIMEOUT)
        .await;
    let docs = metric_documents(&process.output());
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["FailedApps"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_message_reads_the_secret_as_it_is_now() {
    let world = World::new(AscConfig::team()).await;
    let app = "5501";
    world.asc.set_reviews(app, vec![]);
    let (api, process) = world.lambda(app);
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    ok(api
        .invoke(json!({"test_message": true}), INVOKE_TIMEOUT)
        .await);
    assert_eq!(world.receiver.accepted().len(), 1);

    // The webhook URL changes in the secret; the warm process sends the next test there.
    let moved = support::receiver::Receiver::start();
    let mut secret = world.secret_json(support::keys::PRIVATE_KEY_P8);
    secret["webhook_url"] = json!(moved.url(&world.marker));
    world.set_secret(&secret.to_string()).await;
    let answer = ok(api
        .invoke(json!({"test_message": true}), INVOKE_TIMEOUT)
        .await);
    assert_eq!(answer["destinations"][0]["status"], "sent", "{answer}");
    assert_eq!(moved.accepted().len(), 1, "the new webhook got the test");
    assert_eq!(
        world.receiver.accepted().len(),
        1,
        "the old one nothing more"
    );
    assert_no_leaks(&world, &[&process.output(), &answer.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_local_emulators_send_are_replaced_by_fifteen_minutes() {
    let world = World::new(AscConfig::team()).await;
    let app = "5601";
    let (reviews, ids) = feed("e", 2, 10);
    world.asc.set_reviews(app, reviews.clone());
    let (api, process) = world.lambda(app);

    // cargo lambda's emulator sends a duration; others have sent 0 or the invoke's moment.
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let now_ms = i64::try_from(now_ms).unwrap();
    let answer = api
        .invoke_with_deadline_header(json!({}), 600_000, INVOKE_TIMEOUT)
        .await;
    let summary = ok(answer);
    assert_eq!(summary_app(&summary, app)["status"], "ok", "{summary}");
    assert_eq!(world.delivered_to(app), ids);
    let warnings = process
        .output()
        .matches("Lambda-Runtime-Deadline-Ms")
        .count();
    assert_eq!(warnings, 1, "{}", process.output());

    // The lease was dated from the invocation, not from 1970: it lasts 15 minutes and 5
    // seconds, and its item is kept 30 days after that.
    let lease = world.item(app, "lease").await.expect("a lease item");
    let expires: i64 = lease["expires_at"].as_n().unwrap().parse().unwrap();
    let fifteen_minutes_on = now_ms / 1_000 + 15 * 60 + 30 * 86_400;
    assert!(
        (fifteen_minutes_on - 5..=fifteen_minutes_on + 120).contains(&expires),
        "{expires} vs {fifteen_minutes_on}"
    );

    for header in [0, now_ms] {
        let (more, more_ids) = feed(&format!("h{header}"), 1, 1);
        world.asc.set_reviews(app, [more, reviews.clone()].concat());
        let summary = ok(api
            .invoke_with_deadline_header(json!({}), header, INVOKE_TIMEOUT)
            .await);
        assert_eq!(summary_app(&summary, app)["status"], "ok", "{summary}");
        assert!(world.delivered_to(app).ends_with(&more_ids));
    }
    assert_eq!(
        process
            .output()
            .matches("Lambda-Runtime-Deadline-Ms")
            .count(),
        3
    );
}
