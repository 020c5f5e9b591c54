//! The invocation: an event in, a [`RunSummary`] out, for Lambda and for the `invoke` command.

use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use time::OffsetDateTime;
use tracing::{error, info};

use crate::adapters::appstore::AppStoreClient;
use crate::adapters::dynamodb::DynamoStateStore;
use crate::adapters::secrets_manager::SecretsManagerSecrets;
use crate::adapters::webhooks::WebhookNotifier;
use crate::config::Config;
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
            source: AppStoreClient::new(http.clone(), config.asc_base_url.clone()),
            state: DynamoStateStore::new(
                aws_sdk_dynamodb::Client::new(&aws),
                config.table_name.clone(),
            ),
            notifier: WebhookNotifier::new(http),
            config,
        })
    }

    /// One run. Unknown event fields are ignored, so scheduler, rule and manual events all work.
    pub async fn handle(&self, _event: &Value, deadline: Option<Instant>) -> RunSummary {
        let deps = Deps {
            secrets: &self.secrets,
            source: &self.source,
            state: &self.state,
            notifier: &self.notifier,
        };
        let options = RunOptions {
            apps: self.config.app_ids.clone(),
            backfill_hours: self.config.backfill_hours,
            now_nanos: OffsetDateTime::now_utc().unix_timestamp_nanos(),
            deadline,
            deadline_margin: Duration::from_secs(self.config.deadline_margin_seconds),
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
        let deadline = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .map_or_else(|_| Instant::now(), |left| Instant::now() + left);
        let summary = self.handle(&event.payload, Some(deadline)).await;
        match summary.failure_message() {
            None => Ok(summary),
            Some(message) => Err(RunFailed(message)),
        }
    }
}
