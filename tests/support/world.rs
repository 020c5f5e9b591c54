//! One isolated world for the integration tests (its own table, secret, App Store Connect double
//! and webhook receiver on the shared moto), and the small helpers the test files share.

use std::collections::HashMap;
use std::process::Output;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::asc::{AscConfig, AscDouble, review};
use super::keys;
use super::moto::{Moto, aws_env, sdk_config, unique_name};
use super::play::{PlayConfig, PlayDouble};
use super::receiver::Receiver;
use super::runtime_api::{Invocation, LambdaProcess, RuntimeApi};
use super::template::{create_table_from_template, put_secret, scan_table, update_secret};

/// Generous: moto answers a transactional write in tens of milliseconds on a busy machine.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(240);

/// One isolated world: its own table, secret, App Store Connect double and receiver.
pub struct World {
    pub aws: aws_config::SdkConfig,
    pub moto_endpoint: String,
    pub asc: AscDouble,
    pub receiver: Receiver,
    pub table: String,
    pub secret: String,
    /// A unique string inside the webhook URL's path: it must never appear in any output.
    pub marker: String,
}

impl World {
    pub async fn new(asc: AscConfig) -> World {
        let moto = Moto::shared();
        let aws = sdk_config(&moto.endpoint()).await;
        let table = unique_name("relay");
        create_table_from_template(&aws, &table).await;
        let world = World {
            aws,
            moto_endpoint: moto.endpoint(),
            asc: AscDouble::start(asc),
            receiver: Receiver::start(),
            secret: unique_name("relay-secret"),
            marker: unique_name("hook-marker-T0K3N"),
            table,
        };
        put_secret(
            &world.aws,
            &world.secret,
            &world.secret_json(keys::PRIVATE_KEY_P8).to_string(),
        )
        .await;
        world
    }

    /// A world whose secret also holds the Google Play double's service account.
    pub async fn with_play() -> (World, PlayDouble) {
        let world = World::new(AscConfig::team()).await;
        let play = PlayDouble::start(PlayConfig::fixture());
        let mut secret = world.secret_json(keys::PRIVATE_KEY_P8);
        secret["google_service_account"] = play.service_account_json();
        world.set_secret(&secret.to_string()).await;
        (world, play)
    }

    pub fn secret_json(&self, private_key: &str) -> Value {
        json!({
            "issuer_id": keys::ISSUER_ID,
            "key_id": keys::KEY_ID,
            "private_key": private_key,
            "webhook_url": self.receiver.url(&self.marker),
        })
    }

    pub async fn set_secret(&self, value: &str) {
        update_secret(&self.aws, &self.secret, value).await;
    }

    /// A Google Play double serving `package`, its service account merged into the secret.
    pub async fn add_play(
        &self,
        config: super::play::PlayConfig,
        package: &str,
    ) -> super::play::PlayDouble {
        let play = super::play::PlayDouble::start(config);
        let mut secret = self.secret_json(super::keys::PRIVATE_KEY_P8);
        secret["google_service_account"] = play.service_account_json();
        self.set_secret(&secret.to_string()).await;
        play.add_app(package);
        play
    }

    pub fn env(&self, apps: &str) -> Vec<(String, String)> {
        let mut env = aws_env(&self.moto_endpoint);
        env.extend(
            [
                ("APP_IDS", apps.to_owned()),
                ("SECRET_ID", self.secret.clone()),
                ("TABLE_NAME", self.table.clone()),
                ("ASC_BASE_URL", self.asc.base_url()),
                ("BACKFILL_HOURS", "48".to_owned()),
                ("RUST_LOG", "debug".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }

    pub fn lambda(&self, apps: &str) -> (RuntimeApi, LambdaProcess) {
        self.lambda_with(apps, &[])
    }

    /// [`lambda`](Self::lambda) with extra environment variables (they win over the defaults).
    pub fn lambda_with(&self, apps: &str, extra: &[(&str, &str)]) -> (RuntimeApi, LambdaProcess) {
        let mut env = self.env(apps);
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let api = RuntimeApi::start();
        let process = LambdaProcess::spawn(&api.address(), &env);
        (api, process)
    }

    /// `review-relay invoke events/<event>` in a child process.
    pub fn cli(&self, apps: &str, event: &str) -> Output {
        std::process::Command::new(LambdaProcess::binary_path())
            .args(["invoke", &format!("events/{event}")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env(apps))
            .output()
            .expect("run review-relay invoke")
    }

    /// Review ids the receiver accepted, per app, in arrival order.
    pub fn delivered(&self) -> HashMap<String, Vec<String>> {
        let mut per_app: HashMap<String, Vec<String>> = HashMap::new();
        for message in self.receiver.accepted() {
            let body = message.json.expect("json body");
            for review in body["reviews"].as_array().expect("reviews array") {
                per_app
                    .entry(review["app_id"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(review["id"].as_str().unwrap().to_owned());
            }
        }
        per_app
    }

    /// Review ids the receiver accepted for `app`, in arrival order (empty when none).
    pub fn delivered_to(&self, app: &str) -> Vec<String> {
        self.delivered().remove(app).unwrap_or_default()
    }

    /// Every request the receiver got, accepted or not: (`Idempotency-Key`, answered status).
    pub fn attempts(&self) -> Vec<(String, u16)> {
        self.receiver
            .received()
            .iter()
            .map(|r| {
                (
                    r.header("idempotency-key").unwrap_or("<none>").to_owned(),
                    r.status,
                )
            })
            .collect()
    }

    pub async fn state_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        scan_table(&self.aws, &self.table).await
    }

    pub async fn watermark_review(&self, app: &str) -> Option<String> {
        self.state_items().await.into_iter().find_map(|item| {
            let pk = item.get("pk")?.as_s().ok()?.clone();
            (pk == partition_key(app))
                .then(|| {
                    item.get("wm_review_id")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                })
                .flatten()
        })
    }

    /// The app's item with sort key `sk`, if the table holds one.
    pub async fn item(&self, app: &str, sk: &str) -> Option<HashMap<String, AttributeValue>> {
        let pk = partition_key(app);
        self.state_items().await.into_iter().find(|item| {
            item.get("pk").and_then(|v| v.as_s().ok()) == Some(&pk)
                && item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(sk)
        })
    }

    /// Whether nobody holds the app's lease: never taken, or given back (no holder, lapsed).
    pub async fn lease_given_back(&self, app: &str) -> bool {
        self.item(app, "lease").await.is_none_or(|lease| {
            !lease.contains_key("holder")
                && lease.get("lease_until_ms").and_then(|v| v.as_n().ok()) == Some(&"0".to_owned())
        })
    }

    /// Review ids recorded as delivered for `app` (`sk = delivered#…`), in sort-key order.
    pub async fn recorded_deliveries(&self, app: &str) -> Vec<String> {
        let pk = partition_key(app);
        let mut recorded: Vec<(String, String)> = self
            .state_items()
            .await
            .into_iter()
            .filter(|item| item.get("pk").and_then(|v| v.as_s().ok()) == Some(&pk))
            .filter_map(|item| {
                let sk = item.get("sk")?.as_s().ok()?;
                if !sk.starts_with("delivered#") {
                    return None;
                }
                let id = item.get("review_id")?.as_s().ok()?;
                Some((sk.clone(), id.clone()))
            })
            .collect();
        recorded.sort();
        recorded.into_iter().map(|(_, id)| id).collect()
    }
}

/// The table's partition key of an App Store app id or a Google Play package name.
pub fn partition_key(app: &str) -> String {
    let app = review_relay::domain::AppId::parse_any(app).expect("an app id or a package name");
    review_relay::adapters::dynamodb::app_pk(&app)
}

pub fn minutes_ago(minutes: i64, offset_hours: i8) -> String {
    let offset = UtcOffset::from_hms(offset_hours, 0, 0).unwrap();
    (OffsetDateTime::now_utc() - time::Duration::minutes(minutes))
        .to_offset(offset)
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// `count` reviews of `app`, one a minute going back in time, with assorted UTC offsets;
/// returns them and their ids oldest first.
pub fn feed(prefix: &str, count: usize, start_minutes_ago: i64) -> (Vec<Value>, Vec<String>) {
    let minutes: Vec<i64> = (0..count)
        .map(|i| start_minutes_ago + (count - i) as i64)
        .collect();
    reviews_minutes_ago(prefix, &minutes)
}

/// One review for each entry of `minutes`, created that many minutes ago, with assorted UTC
/// offsets; returns them and their ids, in the order given.
pub fn reviews_minutes_ago(prefix: &str, minutes: &[i64]) -> (Vec<Value>, Vec<String>) {
    let mut reviews = Vec::new();
    let mut ids = Vec::new();
    for (i, minutes) in minutes.iter().enumerate() {
        let id = format!("{prefix}{i:05}");
        let offset = [-8, 0, 9, 5][i % 4];
        reviews.push(review(
            &id,
            &minutes_ago(*minutes, offset),
            (i % 5 + 1) as u8,
            Some("Title"),
            Some("Body"),
            Some("nick"),
            Some("USA"),
        ));
        ids.push(id);
    }
    (reviews, ids)
}

pub fn summary_app<'a>(summary: &'a Value, app: &str) -> &'a Value {
    summary["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app_id"] == app)
        .unwrap_or_else(|| panic!("no app {app} in {summary}"))
}

pub fn ok(invocation: Invocation) -> Value {
    match invocation {
        Invocation::Ok(summary) => summary,
        Invocation::Err(err) => panic!("invocation failed: {err}"),
    }
}

/// Lines of the PEM body, JWTs the double accepted, and the webhook marker: none may be printed.
pub fn assert_no_leaks(world: &World, outputs: &[&str]) {
    let mut forbidden: Vec<String> = keys::PRIVATE_KEY_P8
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_owned)
        .collect();
    forbidden.extend(
        keys::OTHER_KEY_P8
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_owned),
    );
    forbidden.extend(world.asc.accepted_tokens());
    forbidden.extend(world.asc.requests().into_iter().filter_map(|r| r.token));
    forbidden.push(world.marker.clone());
    for output in outputs {
        for secret in &forbidden {
            assert!(
                !output.contains(secret.as_str()),
                "output leaks {secret:?}:\n{output}"
            );
        }
    }
}
