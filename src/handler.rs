//! The invocation: an event in, a [`RunSummary`] out, for Lambda and for the `invoke` command.

use std::time::{Duration, Instant};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tracing::{error, info};

use crate::adapters::appstore::AppStoreClient;
use crate::adapters::dry_run::{ReadOnlyState, Rehearsal};
use crate::adapters::dynamodb::DynamoStateStore;
use crate::adapters::metrics;
use crate::adapters::secrets_manager::SecretsManagerSecrets;
use crate::adapters::webhooks::WebhookNotifier;
use crate::config::Config;
use crate::domain::AppId;
use crate::relay::{
    Deps, RunOptions, RunSummary, TestSummary, run_once, send_test_message, time_limit,
};

/// Everything built once per cold start.
pub struct Relay {
    config: Config,
    secrets: SecretsManagerSecrets,
    source: AppStoreClient,
    state: DynamoStateStore,
    notifier: WebhookNotifier,
}

/// An invocation in which at least one app failed; its message names each app and cause.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunFailed(pub String);

impl From<RunFailed> for Diagnostic {
    fn from(err: RunFailed) -> Self {
        Diagnostic {
            error_type: "RunFailed".into(),
            error_message: err.0,
        }
    }
}

impl Relay {
    /// Builds the clients over one HTTP client trusting `config.trust`. The AWS SDK reads
    /// `AWS_REGION`, `AWS_ENDPOINT_URL` and credentials as it always does, so the same binary
    /// talks to local emulators.
    pub async fn new(config: Config) -> Result<Self, reqwest::Error> {
        let http = crate::adapters::http_client(&config.trust)?;
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(crate::adapters::aws_http::sdk_http_client(http.clone()))
            .load()
            .await;
        Ok(Self {
            secrets: SecretsManagerSecrets::new(
                aws_sdk_secretsmanager::Client::new(&aws),
                config.secret_id.clone(),
                config.webhook_format,
            ),
            source: AppStoreClient::new(
                http.clone(),
                config.asc_base_url.clone(),
                config.asc_retry,
            ),
            state: DynamoStateStore::new(
                aws_sdk_dynamodb::Client::new(&aws),
                config.table_name.clone(),
            ),
            notifier: WebhookNotifier::new(http, config.webhook_retry),
            config,
        })
    }

    /// One invocation. `deadline_ms` is when it must end (Unix ms), if it has a limit; `holder`
    /// names the invocation in the per-app leases. See [`Request::from_event`] for the events.
    pub async fn handle(&self, event: &Value, deadline_ms: Option<i64>, holder: String) -> Answer {
        let request = match Request::from_event(event, &self.config) {
            Ok(request) => request,
            Err(message) => {
                error!(%message, "the event cannot be run");
                return Answer::Run(RunSummary::rejected(&self.config.app_ids, &message));
            }
        };
        let now = OffsetDateTime::now_utc();
        let now_nanos = now.unix_timestamp_nanos();
        let now_ms = (now_nanos / 1_000_000) as i64;
        let deadline = deadline_ms.map(|ms| {
            Instant::now() + Duration::from_millis(u64::try_from(ms - now_ms).unwrap_or(0))
        });

        if request.test_message {
            let deps = self.deps();
            let app = request.apps.first().unwrap_or(&self.config.app_ids[0]);
            let limit = time_limit(deadline, self.config.deadline_margin);
            let summary = send_test_message(&deps, app, now_nanos, limit).await;
            match summary.failure_message() {
                None => info!(
                    destinations = summary.destinations.len(),
                    "test message sent"
                ),
                Some(message) => error!(%message, "test message failed"),
            }
            return Answer::TestMessage(summary);
        }

        // A lease outlives its invocation by a little, so a crashed run holds an app no longer than
        // its own time limit; without a limit (the invoke command) it lasts Lambda's longest run.
        let lease_until_ms = deadline_ms.unwrap_or(now_ms + LONGEST_RUN_MS) + LEASE_GRACE_MS;
        let options = RunOptions {
            apps: request.apps,
            backfill_hours: self.config.backfill_hours,
            overlap_hours: self.config.overlap_hours,
            retention_days: self.config.retention_days,
            holder,
            lease_until_ms,
            now_nanos,
            replay_from_nanos: request
                .replay_hours
                .map(|hours| now_nanos - i128::from(hours) * NANOS_PER_HOUR),
            deadline,
            deadline_margin: self.config.deadline_margin,
        };
        let read_only = ReadOnlyState(&self.state);
        let deps = if request.dry_run {
            Deps {
                state: &read_only,
                notifier: &Rehearsal,
                ..self.deps()
            }
        } else {
            self.deps()
        };
        let mut summary = run_once(&deps, &options).await;
        summary.dry_run = request.dry_run;
        let line = serde_json::to_string(&summary).unwrap_or_default();
        match summary.failure_message() {
            None => info!(summary = %line, delivered = summary.delivered(), "run finished"),
            Some(message) => error!(summary = %line, %message, "run finished with failures"),
        }
        Answer::Run(summary)
    }

    fn deps(&self) -> Deps<'_> {
        Deps {
            secrets: &self.secrets,
            source: &self.source,
            state: &self.state,
            notifier: &self.notifier,
        }
    }

    /// The Lambda entry: the summary, or an error listing each failed app or destination.
    pub async fn handle_lambda(&self, event: LambdaEvent<Value>) -> Result<Answer, RunFailed> {
        let deadline_ms = i64::try_from(event.context.deadline).ok();
        let answer = self
            .handle(&event.payload, deadline_ms, event.context.request_id)
            .await;
        if let Answer::Run(summary) = &answer
            && self.config.emit_metrics
            && !summary.dry_run
        {
            let function =
                std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "review-relay".into());
            let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
            // Its own line on stdout, where CloudWatch Logs looks for EMF documents.
            println!("{}", metrics::document(summary, &function, now));
        }
        match answer.failure_message() {
            None => Ok(answer),
            Some(message) => Err(RunFailed(message)),
        }
    }
}

/// What an invocation answers: a run's summary, or a test message's.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Answer {
    Run(RunSummary),
    TestMessage(TestSummary),
}

impl Answer {
    pub fn failure_message(&self) -> Option<String> {
        match self {
            Answer::Run(summary) => summary.failure_message(),
            Answer::TestMessage(summary) => summary.failure_message(),
        }
    }
}

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub apps: Vec<AppId>,
    pub dry_run: bool,
    /// Replay reviews created in the last N hours that were not delivered.
    pub replay_hours: Option<u32>,
    pub test_message: bool,
}

impl Request {
    /// Unknown fields are ignored, so scheduler, rule and manual events all work. A manual event
    /// may hold `"app_ids": [...]` (a subset of `APP_IDS`), `"dry_run": true`,
    /// `"backfill_hours": N` and `"test_message": true`.
    pub fn from_event(event: &Value, config: &Config) -> Result<Self, String> {
        let flag = |name: &str| match event.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(format!(
                "event field `{name}` must be true or false, not `{other}`"
            )),
        };
        let dry_run = flag("dry_run")?;
        let test_message = flag("test_message")?;
        let max_replay = config.retention_days * 24;
        let replay_hours = match event.get("backfill_hours") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let hours = value
                    .as_u64()
                    .ok_or_else(|| {
                        format!("event field `backfill_hours` must be a whole number of hours, not `{value}`")
                    })?;
                if hours > u64::from(max_replay) {
                    return Err(format!(
                        "event field `backfill_hours` is {hours}, but delivered reviews are remembered \
                         for {max_replay} hours (DELIVERED_RETENTION_DAYS={}); a longer replay could \
                         send reviews twice",
                        config.retention_days
                    ));
                }
                Some(hours as u32)
            }
        };
        if test_message && (dry_run || replay_hours.is_some()) {
            return Err(
                "event field `test_message` cannot be combined with `dry_run` or `backfill_hours`"
                    .into(),
            );
        }
        Ok(Self {
            apps: apps_from_event(event, &config.app_ids)?,
            dry_run,
            replay_hours,
            test_message,
        })
    }
}

/// The apps to run: all of `APP_IDS`, or the subset a manual event names in `"app_ids"`
/// (strings or numbers). Naming an app outside `APP_IDS` is refused.
pub fn apps_from_event(event: &Value, configured: &[AppId]) -> Result<Vec<AppId>, String> {
    let Some(requested) = event.get("app_ids") else {
        return Ok(configured.to_vec());
    };
    let Some(requested) = requested.as_array() else {
        return Err("event field `app_ids` must be a list of app ids".into());
    };
    let mut apps = Vec::new();
    for value in requested {
        let raw = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "event field `app_ids` holds `{other}`, not an app id"
                ));
            }
        };
        let app = AppId::parse(&raw).map_err(|e| format!("event field `app_ids`: {e}"))?;
        if !configured.contains(&app) {
            return Err(format!(
                "event field `app_ids` names app {app}, which is not in APP_IDS"
            ));
        }
        if !apps.contains(&app) {
            apps.push(app);
        }
    }
    Ok(apps)
}

const NANOS_PER_HOUR: i128 = 3_600 * 1_000_000_000;

/// Lambda's longest allowed run.
const LONGEST_RUN_MS: i64 = 15 * 60 * 1_000;
const LEASE_GRACE_MS: i64 = 5_000;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Config {
        let vars = [
            ("APP_IDS", "1,2"),
            ("SECRET_ID", "s"),
            ("TABLE_NAME", "t"),
            ("DELIVERED_RETENTION_DAYS", "10"),
        ];
        Config::from_vars(
            &vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn manual_events_ask_for_a_dry_run_a_replay_or_a_test_message() {
        let config = config();
        let plain = Request::from_event(&json!({"source": "aws.scheduler"}), &config).unwrap();
        assert_eq!(
            plain,
            Request {
                apps: ids(&["1", "2"]),
                dry_run: false,
                replay_hours: None,
                test_message: false
            }
        );
        let dry = Request::from_event(
            &json!({"dry_run": true, "backfill_hours": 240, "app_ids": ["2"]}),
            &config,
        )
        .unwrap();
        assert_eq!((dry.dry_run, dry.replay_hours), (true, Some(240)));
        assert_eq!(dry.apps, ids(&["2"]));
        let test = Request::from_event(&json!({"test_message": true}), &config).unwrap();
        assert!(test.test_message);
    }

    #[test]
    fn manual_events_that_cannot_be_run_say_why() {
        let config = config();
        let cases = [
            (json!({"dry_run": "yes"}), "`dry_run` must be true or false"),
            (json!({"backfill_hours": -1}), "whole number of hours"),
            (json!({"backfill_hours": 2.5}), "whole number of hours"),
            (json!({"backfill_hours": 241}), "remembered for 240 hours"),
            (
                json!({"test_message": true, "dry_run": true}),
                "cannot be combined",
            ),
        ];
        for (event, expected) in cases {
            let message = Request::from_event(&event, &config).unwrap_err();
            assert!(message.contains(expected), "{event}: {message}");
        }
    }

    fn ids(raw: &[&str]) -> Vec<AppId> {
        raw.iter().map(|r| AppId::parse(r).unwrap()).collect()
    }

    #[test]
    fn scheduled_rule_and_empty_events_run_every_app() {
        let configured = ids(&["1", "2"]);
        for event in [
            json!({}),
            json!({"source": "aws.scheduler", "scheduled_time": "x"}),
            json!({"detail-type": "Scheduled Event", "detail": {}}),
            json!(null),
        ] {
            assert_eq!(apps_from_event(&event, &configured).unwrap(), configured);
        }
    }

    #[test]
    fn a_manual_event_runs_a_subset() {
        let configured = ids(&["1", "2", "3"]);
        let event = json!({"app_ids": ["3", 1, "3"]});
        assert_eq!(
            apps_from_event(&event, &configured).unwrap(),
            ids(&["3", "1"])
        );
    }

    #[test]
    fn unknown_or_malformed_app_ids_are_refused_with_the_reason() {
        let configured = ids(&["1"]);
        let cases = [
            (json!({"app_ids": "1"}), "must be a list"),
            (json!({"app_ids": [true]}), "not an app id"),
            (
                json!({"app_ids": ["abc"]}),
                "not a numeric App Store app id",
            ),
            (json!({"app_ids": ["2"]}), "not in APP_IDS"),
        ];
        for (event, expected) in cases {
            let message = apps_from_event(&event, &configured).unwrap_err();
            assert!(message.contains(expected), "{message}");
        }
    }
}
