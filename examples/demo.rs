//! `make demo`: review-relay end to end on this machine. Starts moto (DynamoDB and Secrets
//! Manager), an App Store Connect double that checks the JWT, and a webhook receiver; creates the
//! table from template.yaml; runs `review-relay invoke events/scheduled.json` twice; prints what
//! the webhook received; stops everything.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, ExitCode};

use support::asc::{AscConfig, AscDouble, review};
use support::keys;
use support::moto::{Moto, aws_env, sdk_config};
use support::receiver::Receiver;
use support::template::{create_table_from_template, put_secret};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

const APP: &str = "1234567890";
const OTHER_APP: &str = "987654321";

fn hours_ago(hours: i64, offset_hours: i8) -> String {
    let offset = UtcOffset::from_hms(offset_hours, 0, 0).unwrap_or(UtcOffset::UTC);
    (OffsetDateTime::now_utc() - Duration::hours(hours))
        .to_offset(offset)
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> ExitCode {
    println!("== starting local services (moto, App Store Connect double, webhook receiver)");
    let moto = Moto::start();
    let asc = AscDouble::start(AscConfig::team());
    let receiver = Receiver::start();
    let aws = sdk_config(&moto.endpoint()).await;

    create_table_from_template(&aws, "review-relay-demo").await;
    let secret = serde_json::json!({
        "issuer_id": keys::ISSUER_ID,
        "key_id": keys::KEY_ID,
        "private_key": keys::PRIVATE_KEY_P8,
        "webhook_url": receiver.url("demo/webhook"),
    });
    put_secret(&aws, "review-relay-demo", &secret.to_string()).await;

    asc.set_reviews(
        APP,
        vec![
            review(
                "9001",
                &hours_ago(30, -8),
                3,
                Some("Older than the backfill"),
                Some("Sets the baseline only."),
                Some("early-bird"),
                Some("USA"),
            ),
            review(
                "9002",
                &hours_ago(20, -8),
                5,
                Some("Love it"),
                Some("Does exactly what it says."),
                Some("sam"),
                Some("USA"),
            ),
            review(
                "9003",
                &hours_ago(6, 9),
                4,
                None,
                Some("使いやすい！ 👍"),
                Some("ゆき"),
                Some("JPN"),
            ),
            review(
                "9004",
                &hours_ago(1, 0),
                1,
                Some("<!channel> crashes on launch"),
                None,
                None,
                Some("GBR"),
            ),
        ],
    );
    asc.set_reviews(
        OTHER_APP,
        vec![review(
            "7001",
            &hours_ago(2, 2),
            2,
            Some("Bitte Dark Mode"),
            Some("Sonst gut."),
            Some("jo"),
            Some("DEU"),
        )],
    );

    let mut env = aws_env(&moto.endpoint());
    env.extend(
        [
            ("APP_IDS", format!("{APP},{OTHER_APP}")),
            ("SECRET_ID", "review-relay-demo".to_owned()),
            ("TABLE_NAME", "review-relay-demo".to_owned()),
            ("ASC_BASE_URL", asc.base_url()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let binary = support::runtime_api::LambdaProcess::binary_path();

    for run in 1..=2 {
        println!("\n== run {run}: review-relay invoke events/scheduled.json");
        let status = Command::new(&binary)
            .args(["invoke", "events/scheduled.json"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status();
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("demo: run {run} failed ({status})");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!(
                    "demo: cannot start {}: {e} (run `cargo build --release` first)",
                    binary.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }

    let received = receiver.received();
    println!(
        "\n== the webhook received {} messages (oldest first per app; nothing twice):",
        received.len()
    );
    for message in &received {
        let key = message.header("idempotency-key").unwrap_or("-");
        println!("-- POST Idempotency-Key: {key}");
        let shown = message
            .json
            .as_ref()
            .and_then(|j| serde_json::to_string_pretty(j).ok())
            .unwrap_or_else(|| message.body.clone());
        println!("{shown}");
    }
    println!("\n== stopping local services");
    ExitCode::SUCCESS
}
