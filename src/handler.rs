//! The invocation: an event in, a [`RunSummary`] out, for Lambda and for the `invoke` command.

use std::time::{Duration, Instant};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use time::OffsetDateTime;
use tracing::{error, info};

use crate::adapters::appstore::AppStoreClient;
use crate::adapters::dynamodb::DynamoStateStore;
use crate::adapters::secrets_manager::SecretsManagerSecrets;
use crate::adapters::webhooks::WebhookNotifier;
use crate::config::Config;
use crate::domain::AppId;
use crate::relay::{Deps, RunOptions, RunSummary, run_once};

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
    /// Builds the clients. The AWS SDK reads `AWS_REGION`, `AWS_ENDPOINT_URL` and credentials as it
    /// always does, so the same binary talks to local emulators.
    pub async fn new(config: Config) -> Result<Self, reqwest::Error> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let http = crate::adapters::http_client()?;
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

    /// One run. `deadline_ms` is when the invocation must end (Unix ms), if it has a limit;
    /// `holder` names the invocation in the per-app leases. Unknown event fields are ignored, so
    /// scheduler, rule and manual events all work; `"app_ids"` runs a subset.
    pub async fn handle(
        &self,
        event: &Value,
        deadline_ms: Option<i64>,
        holder: String,
    ) -> RunSummary {
        let apps = match apps_from_event(event, &self.config.app_ids) {
            Ok(apps) => apps,
            Err(message) => {
                error!(%message, "the event cannot be run");
                return RunSummary::rejected(&self.config.app_ids, &message);
            }
        };
        let now = OffsetDateTime::now_utc();
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let deadline = deadline_ms.map(|ms| {
            Instant::now() + Duration::from_millis(u64::try_from(ms - now_ms).unwrap_or(0))
        });
        // A lease outlives its invocation by a little, so a crashed run holds an app no longer than
        // its own time limit; without a limit (the invoke command) it lasts Lambda's longest run.
        let lease_until_ms = deadline_ms.unwrap_or(now_ms + LONGEST_RUN_MS) + LEASE_GRACE_MS;
        let deps = Deps {
            secrets: &self.secrets,
            source: &self.source,
            state: &self.state,
            notifier: &self.notifier,
        };
        let options = RunOptions {
            apps,
            backfill_hours: self.config.backfill_hours,
            overlap_hours: self.config.overlap_hours,
            retention_days: self.config.retention_days,
            holder,
            lease_until_ms,
            now_nanos: now.unix_timestamp_nanos(),
            deadline,
            deadline_margin: self.config.deadline_margin,
        };
        let summary = run_once(&deps, &options).await;
        let line = serde_json::to_string(&summary).unwrap_or_default();
        match summary.failure_message() {
            None => info!(summary = %line, delivered = summary.delivered(), "run finished"),
            Some(message) => error!(summary = %line, %message, "run finished with failures"),
        }
        summary
    }

    /// The Lambda entry: the summary, or an error listing each failed app.
    pub async fn handle_lambda(&self, event: LambdaEvent<Value>) -> Result<RunSummary, RunFailed> {
        let deadline_ms = i64::try_from(event.context.deadline).ok();
        let summary = self
            .handle(&event.payload, deadline_ms, event.context.request_id)
            .await;
        match summary.failure_message() {
            None => Ok(summary),
            Some(message) => Err(RunFailed(message)),
        }
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

/// Lambda's longest allowed run.
const LONGEST_RUN_MS: i64 = 15 * 60 * 1_000;
const LEASE_GRACE_MS: i64 = 5_000;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
