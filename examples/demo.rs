//! `make demo`: review-relay end to end on this machine. Starts moto (DynamoDB and Secrets
//! Manager), an App Store Connect double that checks the JWT, a Google Play double that checks the
//! service account's assertion, and a webhook receiver; creates the table from template.yaml; runs
//! `review-relay invoke events/scheduled.json` twice over two App Store apps and one Google Play
//! app; prints what the webhook received, per store; stops everything.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::process::{Command, ExitCode};

use serde_json::Value;
use support::asc::{AscConfig, AscDouble, review};
use support::keys;
use support::moto::{Moto, aws_env, sdk_config};
use support::play::{PlayConfig, PlayDouble, play_review, real_now_secs};
use support::receiver::Receiver;
use support::template::{create_table_from_template, put_secret};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

const APP: &str = "1234567890";
const OTHER_APP: &str = "987654321";
const PACKAGE: &str = "com.example.demo";

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
    println!(
        "== starting local services (moto, App Store Connect double, Google Play double, webhook receiver)"
    );
    let moto = Moto::start();
    let asc = AscDouble::start(AscConfig::team());
    let play = PlayDouble::start(PlayConfig::fixture());
    let receiver = Receiver::start();
    let aws = sdk_config(&moto.endpoint()).await;

    create_table_from_template(&aws, "review-relay-demo").await;
    let secret = serde_json::json!({
        "issuer_id": keys::ISSUER_ID,
        "key_id": keys::KEY_ID,
        "private_key": keys::PRIVATE_KEY_P8,
        "google_service_account": play.service_account_json(),
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
    asc.set_app_name(APP, "Demo Notes");
    asc.set_app_name(OTHER_APP, "Demo Weather");
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

    // Google Play: the text of a review with a title is `title<TAB>body`; a review's time is the
    // lastModified of its text.
    let hours_ago_secs = |hours: i64| real_now_secs() - hours * 3600;
    play.set_reviews(
        PACKAGE,
        vec![
            play_review(
                "gp:AOqpTOEdemo1",
                "Early Bird",
                "Older than the backfill: sets the baseline only.",
                3,
                hours_ago_secs(40),
                "en-US",
            ),
            play_review(
                "gp:AOqpTOEdemo2",
                "Ana Souza",
                "Ótimo app\tSó falta o modo escuro.",
                4,
                hours_ago_secs(9),
                "pt-BR",
            ),
            play_review(
                "gp:AOqpTOEdemo3",
                "Sam Lee",
                "Great widget\tThe home screen widget is exactly what I needed.",
                5,
                hours_ago_secs(3),
                "en-GB",
            ),
            play_review(
                "gp:AOqpTOEdemo4",
                "Kai",
                "Logs me out every day since the update.",
                1,
                hours_ago_secs(1),
                "de-DE",
            ),
        ],
    );

    let mut env = aws_env(&moto.endpoint());
    env.extend(
        [
            ("APP_IDS", format!("{APP},{OTHER_APP}")),
            ("SECRET_ID", "review-relay-demo".to_owned()),
            ("TABLE_NAME", "review-relay-demo".to_owned()),
            ("ASC_BASE_URL", asc.base_url()),
            ("PLAY_PACKAGES", PACKAGE.to_owned()),
            ("PLAY_BASE_URL", play.base_url()),
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
    let keys: HashSet<&str> = received
        .iter()
        .filter_map(|m| m.header("idempotency-key"))
        .collect();
    println!(
        "\n== the webhook received {} messages, {} different Idempotency-Keys: each review once",
        received.len(),
        keys.len()
    );
    let reviews: Vec<Value> = received
        .iter()
        .filter_map(|m| m.json.as_ref())
        .filter_map(|body| body["reviews"].as_array().cloned())
        .flatten()
        .collect();
    for (store, code) in [("App Store", "app_store"), ("Google Play", "google_play")] {
        let mut of_store: Vec<&Value> = reviews.iter().filter(|r| r["store"] == code).collect();
        // Apps run side by side; each app's reviews arrived oldest first.
        of_store.sort_by_key(|r| r["app_id"].as_str().unwrap_or_default().to_owned());
        println!(
            "-- {store}: {} (app, review id, stars, text, reviewer)",
            of_store.len()
        );
        for review in &of_store {
            println!("   {}", one_line(review));
        }
    }
    for code in ["app_store", "google_play"] {
        if let Some(message) = received.iter().find(|m| {
            m.json
                .as_ref()
                .is_some_and(|j| j["reviews"][0]["store"] == code)
        }) {
            println!(
                "\n== the first {code} message in full (format json), Idempotency-Key: {}",
                message.header("idempotency-key").unwrap_or("-")
            );
            let shown = message
                .json
                .as_ref()
                .and_then(|j| serde_json::to_string_pretty(j).ok())
                .unwrap_or_else(|| message.body.clone());
            println!("{shown}");
        }
    }
    println!("\n== stopping local services");
    ExitCode::SUCCESS
}

/// `1234567890  9002  ★★★★★  "Love it" Does exactly what it says.  (sam, USA)`: one `json` review.
fn one_line(review: &Value) -> String {
    let stars = review["rating"].as_u64().map_or_else(String::new, |r| {
        "★".repeat(r as usize) + &"☆".repeat(5usize.saturating_sub(r as usize))
    });
    let title = review["title"]
        .as_str()
        .map_or_else(String::new, |t| format!("\"{t}\" "));
    let place = match review["language"].as_str() {
        Some(language) => format!("language {language}"),
        None => review["territory"].as_str().unwrap_or("-").to_owned(),
    };
    let who = review["reviewer_nickname"].as_str().unwrap_or("anonymous");
    let text = format!("{title}{}", review["body"].as_str().unwrap_or_default());
    format!(
        "{}  {}  {stars}  {}  ({who}, {place})",
        review["app_id"].as_str().unwrap_or_default(),
        review["id"].as_str().unwrap_or_default(),
        text.trim_end(),
    )
}
