//! The shipped binary's log lines as Lambda's JSON log format reads them: Lambda drops lines below
//! the function's application log level and takes a line without a valid `level` and RFC 3339
//! `timestamp` as INFO. Every line has both, and at each level the template offers the metrics
//! line and the `run finished` summary are kept.

mod support;

use serde_json::{Value, json};
use support::asc::AscConfig;
use support::runtime_api::LambdaProcess;
use support::template::{literal, parameter, template};
use support::world::{INVOKE_TIMEOUT, World, assert_no_leaks, feed, ok};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Lambda's levels, lowest first.
const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

fn rank(level: &str) -> usize {
    LEVELS
        .iter()
        .position(|l| *l == level)
        .unwrap_or_else(|| panic!("`{level}` is not one of Lambda's levels"))
}

/// `2026-12-03T20:41:00.123Z`: RFC 3339, UTC, to the millisecond.
fn is_timestamp(text: &str) -> bool {
    text.len() == "2026-12-03T20:41:00.123Z".len()
        && text.as_bytes()[10] == b'T'
        && text.as_bytes()[19] == b'.'
        && text.ends_with('Z')
        && OffsetDateTime::parse(text, &Rfc3339).is_ok()
}

/// Every line the process wrote, each checked to be a JSON object with a valid `level` and
/// `timestamp`.
fn log_lines(process: &LambdaProcess) -> Vec<Value> {
    let output = process.output();
    output
        .lines()
        .map(|line| {
            let parsed: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let level = parsed["level"].as_str().unwrap_or_default();
            assert!(
                LEVELS[..5].contains(&level),
                "no valid uppercase `level`: {line}"
            );
            let timestamp = parsed["timestamp"].as_str().unwrap_or_default();
            assert!(is_timestamp(timestamp), "no valid `timestamp`: {line}");
            parsed
        })
        .collect()
}

/// What Lambda keeps of `lines` at `level`.
fn kept_at<'a>(lines: &'a [Value], level: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| rank(line["level"].as_str().unwrap()) >= rank(level))
        .collect()
}

/// The levels the template's `LogLevel` parameter allows.
fn offered_levels() -> Vec<String> {
    let doc = template();
    let allowed = parameter(&doc, "LogLevel")["AllowedValues"]
        .as_sequence()
        .expect("LogLevel has AllowedValues");
    allowed
        .iter()
        .map(|v| literal(v).expect("a literal level"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_every_offered_level_lambda_keeps_the_metrics_and_the_summary() {
    let levels = offered_levels();
    assert!(!levels.is_empty());
    let world = World::new(AscConfig::team()).await;
    for (n, level) in levels.iter().enumerate() {
        let app = format!("{}", 7301 + n);
        let (reviews, ids) = feed(&format!("l{n}"), 2, 10);
        world.asc.set_reviews(&app, reviews);
        let (api, process) = world.lambda_with(
            &app,
            &[
                ("AWS_LAMBDA_LOG_LEVEL", level),
                ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ],
        );
        // A dry run logs each message body at DEBUG; the real run then delivers.
        ok(api.invoke(json!({"dry_run": true}), INVOKE_TIMEOUT).await);
        let summary = ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
        assert_eq!(world.delivered_to(&app), ids, "{summary}");
        process.wait_for_output("\"_aws\"", INVOKE_TIMEOUT).await;

        let lines = log_lines(&process);
        let debug_lines = lines.iter().filter(|l| l["level"] == "DEBUG").count();
        if level == "DEBUG" {
            // The dry run's two message bodies, and nothing of the SDK's, hyper's or rustls's.
            assert_eq!(debug_lines, 2, "{}", process.output());
        }
        let kept = kept_at(&lines, level);
        let metrics: Vec<_> = kept.iter().filter(|l| l.get("_aws").is_some()).collect();
        assert_eq!(metrics.len(), 1, "{level}: {}", process.output());
        assert_eq!(metrics[0]["ReviewsDelivered"], 2);
        let finished: Vec<_> = kept
            .iter()
            .filter(|l| l["fields"]["message"] == "run finished")
            .collect();
        assert_eq!(finished.len(), 2, "{level}: {}", process.output());
        let last: Value =
            serde_json::from_str(finished[1]["fields"]["summary"].as_str().unwrap()).unwrap();
        assert_eq!(last, summary);
        // Within the runtime's span, which names the invocation.
        assert!(
            finished[1]["span"]["requestId"].is_string(),
            "{}",
            finished[1]
        );
        assert_no_leaks(&world, &[&process.output()]);
    }
}
