//! The shipped binary against real local services: moto for DynamoDB and Secrets Manager, the App
//! Store Connect double (which verifies every JWT), a webhook receiver, and the Lambda Runtime API
//! double that runs `target/release/review-relay` exactly as Lambda does.

mod support;

use serde_json::{Value, json};
use support::asc::{AscConfig, review};
use support::keys;
use support::runtime_api::Invocation;
use support::world::{INVOKE_TIMEOUT, World, assert_no_leaks, feed, minutes_ago, ok, summary_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_review_once_in_order_across_pages_apps_invocations_and_a_restart() {
    let world = World::new(AscConfig::team()).await;
    let (big, big_ids) = feed("a", 250, 60);
    let (small, small_ids) = feed("b", 3, 30);
    world.asc.set_reviews("111", big);
    world.asc.set_reviews("222", small);

    let (api, mut process) = world.lambda("111,222");
    let first = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(summary_app(&first, "111")["delivered"], 250);
    assert_eq!(
        summary_app(&first, "111")["pages"],
        2,
        "250 reviews are two pages of 200"
    );
    assert_eq!(summary_app(&first, "222")["delivered"], 3);
    let delivered = world.delivered();
    assert_eq!(delivered["111"], big_ids, "oldest first, each once");
    assert_eq!(delivered["222"], small_ids);

    let second = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(summary_app(&second, "111")["delivered"], 0);
    assert_eq!(
        summary_app(&second, "111")["pages"],
        2,
        "the overlap window (72 h) is read again"
    );
    assert_eq!(world.receiver.accepted().len(), 253);

    // New reviews arrive; the process dies and a new one starts (a cold start).
    process.kill();
    let (newer, newer_ids) = feed("c", 5, 0);
    for r in newer {
        world.asc.push_review("111", r);
    }
    let (api, _process) = world.lambda("111,222");
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    let delivered = world.delivered();
    assert_eq!(delivered["111"], [big_ids, newer_ids.clone()].concat());
    assert_eq!(delivered["222"], small_ids);
    assert_eq!(
        world.watermark_review("111").await.as_deref(),
        Some(newer_ids[4].as_str())
    );
    assert!(
        world.asc.requests().iter().all(|r| r.auth_ok),
        "every request carried a valid token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_the_nth_delivery_keeps_the_first_n_minus_1_and_the_rest_follow() {
    let world = World::new(AscConfig::team()).await;
    let (reviews, ids) = feed("r", 6, 10);
    world.asc.set_reviews("333", reviews);
    world.receiver.fail_from(4, 503);

    let (api, _process) = world.lambda("333");
    let Invocation::Err(err) = api.invoke(json!({}), INVOKE_TIMEOUT).await else {
        panic!("a failed delivery must fail the invocation");
    };
    let message = err["errorMessage"].as_str().unwrap();
    assert!(message.contains("333: review r00003"), "{message}");
    assert!(message.contains("503"), "{message}");
    assert_eq!(world.delivered()["333"], ids[..3]);
    assert_eq!(
        world.watermark_review("333").await.as_deref(),
        Some("r00002")
    );

    world.receiver.reset();
    let summary = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(summary_app(&summary, "333")["delivered"], 3);
    assert_eq!(world.delivered()["333"], ids[3..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn individual_keys_sec1_keys_and_one_line_keys_all_sign_accepted_tokens() {
    let world = World::new(AscConfig::individual()).await;
    let (reviews, ids) = feed("i", 2, 5);
    world.asc.set_reviews("444", reviews);
    for (n, key) in [
        keys::PRIVATE_KEY_SEC1.to_owned(),
        keys::PRIVATE_KEY_P8.trim().replace('\n', "\\n"),
    ]
    .iter()
    .enumerate()
    {
        let mut secret = world.secret_json(key);
        secret.as_object_mut().unwrap().remove("issuer_id");
        world.set_secret(&secret.to_string()).await;
        if n == 1 {
            world.asc.push_review(
                "444",
                review("i9", &minutes_ago(1, 0), 5, None, None, None, None),
            );
        }
        let output = world.cli("444", "manual.json");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(
        world.delivered()["444"],
        [ids, vec!["i9".to_owned()]].concat()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_three_sample_events_run_and_print_the_summary() {
    let world = World::new(AscConfig::team()).await;
    let created = minutes_ago(3, -8);
    world.asc.set_reviews(
        "555",
        vec![review("e1", &created, 4, None, None, None, None)],
    );
    for event in ["scheduled.json", "eventbridge-rule.json", "manual.json"] {
        let output = world.cli("555", event);
        assert!(
            output.status.success(),
            "{event}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary: Value =
            serde_json::from_slice(&output.stdout).expect("summary JSON on stdout");
        assert_eq!(summary_app(&summary, "555")["status"], "ok");
    }
    assert_eq!(world.delivered()["555"], ["e1"]);
    let message = &world.receiver.accepted()[0];
    assert_eq!(message.header("idempotency-key"), Some("e1"));
    assert_eq!(
        message.json.as_ref().unwrap()["reviews"][0],
        json!({"id": "e1", "app_id": "555", "rating": 4, "title": null, "body": null,
               "reviewer_nickname": null, "territory": null,
               "created_date": created, "store": "app_store", "edited": false,
               "previous_rating": null, "language": null,
               "app_version": null, "device": null, "original_text": null})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_secrets_and_rejected_keys_fail_with_the_cause_and_touch_nothing() {
    let world = World::new(AscConfig::team()).await;
    world.asc.set_reviews(
        "666",
        vec![review("x1", &minutes_ago(3, 0), 1, None, None, None, None)],
    );
    let mut missing = world.secret_json(keys::PRIVATE_KEY_P8);
    missing.as_object_mut().unwrap().remove("key_id");
    let cases = [
        (
            format!("not json {}", keys::PRIVATE_KEY_P8),
            "is not a JSON object",
        ),
        (missing.to_string(), "secret field `key_id` is missing"),
        (
            world
                .secret_json(include_str!("fixtures/keys/RsaKey.pem"))
                .to_string(),
            "`private_key` is not an ES256 (P-256) private key",
        ),
        (
            world
                .secret_json("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .to_string(),
            "`private_key` is not a PEM EC private key",
        ),
        (
            world.secret_json(keys::OTHER_KEY_P8).to_string(),
            "App Store Connect rejected the API key (401",
        ),
    ];
    let (api, process) = world.lambda("666");
    for (secret, cause) in &cases {
        world.set_secret(secret).await;
        let Invocation::Err(err) = api.invoke(json!({}), INVOKE_TIMEOUT).await else {
            panic!("{cause}: the invocation must fail");
        };
        let message = err.to_string();
        assert!(
            message.contains("666: ") && message.contains(cause),
            "{message}"
        );
        assert_no_leaks(&world, &[&message]);

        // A fresh process too: the CLI prints the same cause and exits 1.
        let output = world.cli("666", "scheduled.json");
        assert_eq!(output.status.code(), Some(1), "{cause}");
        let printed =
            String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
        assert!(printed.contains(cause), "{printed}");
        assert_no_leaks(&world, &[&printed]);
    }
    assert!(world.receiver.received().is_empty(), "nothing is delivered");
    assert_eq!(
        world.watermark_review("666").await,
        None,
        "the watermark is untouched"
    );
    assert_no_leaks(&world, &[&process.output()]);

    // Fixing the secret is enough: the next run delivers.
    world
        .set_secret(&world.secret_json(keys::PRIVATE_KEY_P8).to_string())
        .await;
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(world.delivered()["666"], ["x1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_name_the_variable() {
    let world = World::new(AscConfig::team()).await;
    let mut env = world.env("777");
    env.push(("WEBHOOK_FORMAT".into(), "carrier-pigeon".into()));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_review-relay"))
        .args(["invoke", "events/manual.json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(env)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WEBHOOK_FORMAT") && stderr.contains("carrier-pigeon"),
        "{stderr}"
    );
}
