//! The invocation: an event in, a [`RunSummary`] out, for Lambda and for the `invoke` command.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tracing::{error, info, warn};

use crate::adapters::appstore::AppStoreClient;
use crate::adapters::credentials::SecretHandle;
use crate::adapters::dry_run::{ReadOnlyState, Rehearsal};
use crate::adapters::dynamodb::DynamoStateStore;
use crate::adapters::googleplay::GooglePlayClient;
use crate::adapters::lambda_invoke::LambdaInvoke;
use crate::adapters::metrics;
use crate::adapters::secrets_manager::SecretsManagerSecrets;
use crate::adapters::slack::request::{FunctionUrlRequest, ResponseUrls};
use crate::adapters::slack::web_api::{SlackCalls, SlackWebApi};
use crate::adapters::trust::{TrustError, TrustRoots};
use crate::adapters::webhooks::WebhookNotifier;
use crate::config::Config;
use crate::domain::Store;
use crate::event::{EventRefused, Request};
use crate::ports::{ReviewAnswers, ReviewSource, Secrets};
use crate::relay::{
    Deps, RunOptions, RunSummary, Sources, TestSummary, run_once, send_test_message, time_limit,
};
use crate::reply::{RawAction, ReplyOptions, ReplyRefused, ReplyRequest, ReplySummary, reply};
use crate::slack_reply::{self, Job};

/// What time it is, in nanoseconds since the Unix epoch: the system clock, or one a test moves.
pub type Clock = Arc<dyn Fn() -> i128 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| OffsetDateTime::now_utc().unix_timestamp_nanos())
}

/// Everything built once per cold start.
pub struct Relay {
    config: Config,
    secrets: Arc<SecretsManagerSecrets>,
    source: AppStoreClient,
    /// Built only when `PLAY_PACKAGES` names apps.
    play: Option<GooglePlayClient>,
    state: DynamoStateStore,
    notifier: WebhookNotifier,
    /// When this process started (Unix ms): no real deadline is earlier.
    started_ms: i64,
    /// What the runs take for now: which reviews are new, when records expire, leases. The
    /// invocation's deadline and time limits are always real time.
    clock: Clock,
    /// Slack's Web API, for the Reply button's modal (`slack-interactions` mode).
    slack: SlackWebApi,
    response_urls: ResponseUrls,
    /// This function, invoked asynchronously with the Reply button's store calls; the reason
    /// when it cannot be (outside Lambda, no region).
    jobs: Result<LambdaInvoke, String>,
    /// When the Slack endpoint last read the secret again (Unix ms).
    secret_read_again_ms: std::sync::atomic::AtomicI64,
}

/// Why an invocation ends in an error.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// At least one app (or a test message's destination) failed; the message names each
    /// app and cause.
    #[error("{0}")]
    RunFailed(String),
    /// The event cannot be run: the caller's mistake, named. Nothing was sent or written, and
    /// no app counts as failed.
    #[error("{0}")]
    InvalidEvent(#[from] EventRefused),
}

impl From<InvocationError> for Diagnostic {
    fn from(err: InvocationError) -> Self {
        let error_type = match err {
            InvocationError::RunFailed(_) => "RunFailed",
            InvocationError::InvalidEvent(_) => "InvalidEvent",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

/// The header that carries an invocation's deadline.
pub const DEADLINE_HEADER: &str = "Lambda-Runtime-Deadline-Ms";

/// Lambda's longest allowed run.
pub const LONGEST_RUN_MS: i64 = 15 * 60 * 1_000;

/// The deadline header's value if it can be real: after this process started, not yet passed,
/// and at most Lambda's longest run ahead. Local emulators have sent a duration (600000), 0, or
/// the moment of the invoke; none of those is a deadline.
pub fn real_deadline_ms(header_ms: i64, process_started_ms: i64, now_ms: i64) -> Option<i64> {
    (header_ms >= process_started_ms && header_ms > now_ms && header_ms <= now_ms + LONGEST_RUN_MS)
        .then_some(header_ms)
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Why the relay cannot start, named.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration error: environment variable `EXTRA_CA_CERTS`: {0}")]
    Trust(#[from] TrustError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl Relay {
    /// Builds the clients over one HTTP client trusting Mozilla's roots and those of
    /// `EXTRA_CA_CERTS`. The AWS SDK reads `AWS_REGION`, `AWS_ENDPOINT_URL` and credentials as
    /// it always does, so the same binary talks to local emulators.
    pub async fn new(config: Config) -> Result<Self, StartError> {
        let trust = TrustRoots::load(config.extra_ca_certs.as_deref())?;
        let http = crate::adapters::http_client(&trust)?;
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(crate::adapters::aws_http::sdk_http_client(http.clone()))
            .load()
            .await;
        Ok(Self::with_aws(config, &aws, http))
    }

    /// Over an AWS configuration already loaded, and the HTTP client for App Store Connect and
    /// webhooks.
    pub fn with_aws(config: Config, aws: &aws_config::SdkConfig, http: reqwest::Client) -> Self {
        let secrets = Arc::new(
            SecretsManagerSecrets::new(
                aws_sdk_secretsmanager::Client::new(aws),
                config.secret_id.clone(),
                config.webhook_format,
            )
            .requiring(
                config.relays(Store::AppStore),
                config.relays(Store::GooglePlay),
            ),
        );
        let handle = SecretHandle::new(secrets.clone());
        let play = config.relays(Store::GooglePlay).then(|| {
            GooglePlayClient::new(
                http.clone(),
                handle.clone(),
                config.play_base_url.clone(),
                config.play_translation_language.clone(),
                config.asc_retry,
            )
        });
        Self {
            secrets,
            play,
            source: AppStoreClient::new(
                http.clone(),
                handle,
                config.asc_base_url.clone(),
                config.asc_retry,
            ),
            state: DynamoStateStore::new(
                aws_sdk_dynamodb::Client::new(aws),
                config.table_name.clone(),
            ),
            notifier: WebhookNotifier::new(http.clone(), config.webhook_retry),
            slack: SlackWebApi::new(http.clone(), config.slack_api_url.as_str()),
            response_urls: ResponseUrls::new(&config.slack_api_url),
            jobs: self_invoke(http, aws),
            secret_read_again_ms: std::sync::atomic::AtomicI64::new(0),
            config,
            started_ms: unix_ms(),
            clock: system_clock(),
        }
    }

    /// What this function is (`RELAY_MODE`).
    pub fn mode(&self) -> crate::config::Mode {
        self.config.mode
    }

    /// Runs on `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// One invocation, to end by `deadline_ms` (Unix ms); `holder` names the invocation in the
    /// per-app leases. See [`Request::from_event`] for the events; a refused event sends and
    /// writes nothing.
    pub async fn handle(
        &self,
        event: &Value,
        deadline_ms: i64,
        holder: String,
    ) -> Result<Answer, EventRefused> {
        let request = Request::from_event(event, &self.config)
            .inspect_err(|refused| error!(reason = %refused, "the event was refused"))?;
        if let Some(request) = &request.reply {
            return Ok(Answer::Reply(self.reply(request).await));
        }
        let now_nanos = (self.clock)();
        let now_ms = (now_nanos / 1_000_000) as i64;
        let left_ms = deadline_ms - unix_ms();
        let deadline =
            Some(Instant::now() + Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)));

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
                Some(message) => error!(failures = %message, "test message failed"),
            }
            return Ok(Answer::TestMessage(summary));
        }

        // A lease outlives its invocation by a little, so a crashed run holds an app no longer
        // than its own time limit.
        let lease_until_ms = now_ms + left_ms.max(0) + LEASE_GRACE_MS;
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
            Some(message) => {
                error!(summary = %line, failures = %message, "run finished with failures")
            }
        }
        Ok(Answer::Run(summary))
    }

    /// Checks a request to answer a review against this deployment: the app must be one it
    /// relays, the text within the store's limit.
    pub fn reply_request(
        &self,
        app: &str,
        review_id: &str,
        action: RawAction,
    ) -> Result<ReplyRequest, ReplyRefused> {
        ReplyRequest::new(app, review_id, action, &self.config.app_ids)
    }

    /// Answers a review (or deletes or reads its answer) in its store; the answer is noted on
    /// the review's item for as long as delivery records are kept.
    pub async fn reply(&self, request: &ReplyRequest) -> ReplySummary {
        let answers: &dyn ReviewAnswers = match (request.app.store(), &self.play) {
            (Store::AppStore, _) => &self.source,
            (Store::GooglePlay, Some(play)) => play,
            // A Play app is relayed only when PLAY_PACKAGES names it, which builds the client.
            (Store::GooglePlay, None) => {
                return ReplySummary::failed(request, "PLAY_PACKAGES names no app".into());
            }
        };
        let summary = reply(answers, &self.state, request, self.reply_options()).await;
        if let Some(reason) = summary.failure_message() {
            error!(app_id = %request.app, review_id = %request.review_id, reason = %reason, "the review's answer failed");
        }
        summary
    }

    /// When an answer is noted, and how long the note is kept (as long as delivery records).
    fn reply_options(&self) -> ReplyOptions {
        let now_nanos = (self.clock)();
        ReplyOptions {
            now_nanos,
            keep_until_secs: (now_nanos / 1_000_000_000) as i64
                + i64::from(self.config.retention_days) * 86_400,
        }
    }

    /// The `slack-interactions` function's entry: a Function URL request from Slack (answered
    /// with a Function URL response), or a job it handed itself.
    pub async fn handle_slack(&self, event: LambdaEvent<Value>) -> Result<Value, InvocationError> {
        let event = event.payload;
        let job = Job::from_event(&event);
        let failed = |reason: String| {
            error!(reason = %reason, "the Slack endpoint cannot work");
            match &job {
                // The job fails; Lambda does not retry it (the template sets no retries).
                Some(_) => Err(InvocationError::RunFailed(reason)),
                None => Ok(json!({
                    "statusCode": 503,
                    "headers": {"content-type": "text/plain; charset=utf-8"},
                    "body": "review-relay cannot answer Slack now; its logs say why",
                })),
            }
        };
        // The secret is read once per cold start; read again (at most once a minute) when
        // it lacks `slack_app` or a signature does not match: it may have just been changed.
        let mut refresh = false;
        loop {
            let secret = match self.secrets.load(refresh).await {
                Ok(secret) => secret,
                Err(e) => return failed(e.to_string()),
            };
            let Some(slack_app) = secret.slack_app.as_ref() else {
                if !refresh && self.may_read_secret_again() {
                    refresh = true;
                    continue;
                }
                return failed(match &secret.slack_app_error {
                    Some(e) => e.to_string(),
                    None => "the secret has no `slack_app`: the Reply button needs its signing secret, bot token and allowed teams".into(),
                });
            };
            let jobs = match &self.jobs {
                Ok(jobs) => jobs,
                Err(e) => return failed(e.clone()),
            };
            let views = SlackCalls {
                api: &self.slack,
                token: &slack_app.bot_token,
                response_urls: &self.response_urls,
            };
            let ctx = slack_reply::Context {
                slack_app,
                relayed: &self.config.app_ids,
                urls: &self.response_urls,
                views: &views,
                kept: &self.state,
                jobs,
                now_secs: ((self.clock)() / 1_000_000_000) as i64,
            };
            match &job {
                Some(Ok(job)) => {
                    let stores = slack_reply::Stores {
                        app_store: Some(&self.source),
                        google_play: self.play.as_ref().map(|p| p as &dyn ReviewAnswers),
                        state: &self.state,
                        options: self.reply_options(),
                    };
                    return Ok(slack_reply::run_job(&ctx, &stores, job).await);
                }
                Some(Err(reason)) => {
                    error!(reason = %reason, "an invocation carried a malformed job");
                    return Err(InvocationError::RunFailed(reason.clone()));
                }
                None => {
                    let request: FunctionUrlRequest = match serde_json::from_value(event.clone()) {
                        Ok(request) => request,
                        Err(e) => {
                            warn!(error = %e, "the event is not a Function URL request");
                            return Ok(
                                json!({"statusCode": 400, "body": "not a Function URL request"}),
                            );
                        }
                    };
                    if slack_reply::signature_mismatch(slack_app, &request, ctx.now_secs)
                        && !refresh
                        && self.may_read_secret_again()
                    {
                        refresh = true;
                        continue;
                    }
                    return Ok(slack_reply::interaction(&ctx, &request)
                        .await
                        .to_function_url());
                }
            }
        }
    }

    /// Whether the secret may be read again now: at most once a minute per instance, so a flood
    /// of unsigned requests cannot turn into a flood of Secrets Manager reads.
    fn may_read_secret_again(&self) -> bool {
        let now = unix_ms();
        let last = self
            .secret_read_again_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        now - last >= 60_000
            && self
                .secret_read_again_ms
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
    }

    fn deps(&self) -> Deps<'_> {
        Deps {
            secrets: self.secrets.as_ref(),
            sources: Sources {
                app_store: Some(&self.source),
                google_play: self.play.as_ref().map(|p| p as &dyn ReviewSource),
            },
            state: &self.state,
            notifier: &self.notifier,
        }
    }

    /// The Lambda entry: the summary, or an error listing each failed app or destination, or
    /// naming what is wrong with the event.
    pub async fn handle_lambda(
        &self,
        event: LambdaEvent<Value>,
    ) -> Result<Answer, InvocationError> {
        let header_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        let now_ms = unix_ms();
        let deadline_ms = real_deadline_ms(header_ms, self.started_ms, now_ms).unwrap_or_else(|| {
            warn!(
                header = DEADLINE_HEADER,
                value = header_ms,
                "the invocation's deadline header is not a Unix time in the next 15 minutes (a local emulator?); using 15 minutes from now"
            );
            now_ms + LONGEST_RUN_MS
        });
        let answer = self
            .handle(&event.payload, deadline_ms, event.context.request_id)
            .await?;
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
            Some(message) => Err(InvocationError::RunFailed(message)),
        }
    }
}

/// This function as a target of asynchronous invocations: its name from Lambda
/// (`AWS_LAMBDA_FUNCTION_NAME`), Lambda's endpoint from `AWS_ENDPOINT_URL_LAMBDA` or
/// `AWS_ENDPOINT_URL` when set, the region and credentials as the SDK found them.
fn self_invoke(http: reqwest::Client, aws: &aws_config::SdkConfig) -> Result<LambdaInvoke, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let function = var("AWS_LAMBDA_FUNCTION_NAME").ok_or(
        "AWS_LAMBDA_FUNCTION_NAME is not set: the Slack endpoint runs only as a Lambda function",
    )?;
    let region = aws
        .region()
        .ok_or("no AWS region: set AWS_REGION")?
        .to_string();
    let endpoint = var("AWS_ENDPOINT_URL_LAMBDA").or_else(|| var("AWS_ENDPOINT_URL"));
    LambdaInvoke::new(
        http,
        endpoint.as_deref(),
        &region,
        &function,
        aws.credentials_provider(),
    )
}

/// What an invocation answers: a run's summary, or a test message's.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Answer {
    Run(RunSummary),
    TestMessage(TestSummary),
    Reply(ReplySummary),
}

impl Answer {
    pub fn failure_message(&self) -> Option<String> {
        match self {
            Answer::Run(summary) => summary.failure_message(),
            Answer::TestMessage(summary) => summary.failure_message(),
            Answer::Reply(summary) => summary.failure_message(),
        }
    }
}

const NANOS_PER_HOUR: i128 = 3_600 * 1_000_000_000;

const LEASE_GRACE_MS: i64 = 5_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra_ca_certs: Option<&str>) -> Config {
        let vars = [
            ("APP_IDS", "123"),
            ("SECRET_ID", "review-relay/key"),
            ("TABLE_NAME", "relay"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let mut config = Config::from_vars(&vars.into_iter().collect()).unwrap();
        config.extra_ca_certs = extra_ca_certs.map(Into::into);
        config
    }

    #[tokio::test]
    async fn extra_ca_certs_are_read_when_the_relay_starts_and_a_bad_file_is_named() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
        assert!(Relay::new(config(Some(path))).await.is_ok());
        let Err(err) = Relay::new(config(Some("/nonexistent/ca.pem"))).await else {
            panic!("a missing file starts nothing");
        };
        assert!(
            err.to_string().starts_with(
                "configuration error: environment variable `EXTRA_CA_CERTS`: cannot read `/nonexistent/ca.pem`:"
            ),
            "{err}"
        );
    }

    #[test]
    fn only_a_deadline_that_can_be_real_is_used() {
        let started = 1_764_000_000_000;
        let now = started + 60_000;
        // What Lambda sends: the invoke moment plus the function's timeout.
        assert_eq!(
            real_deadline_ms(now + 120_000, started, now),
            Some(now + 120_000)
        );
        assert_eq!(
            real_deadline_ms(now + LONGEST_RUN_MS, started, now),
            Some(now + LONGEST_RUN_MS)
        );
        // What emulators have sent: a duration, zero, the invoke moment, or far ahead.
        for bogus in [
            600_000,
            0,
            -5,
            started - 1,
            now - 10,
            now,
            now + LONGEST_RUN_MS + 1,
        ] {
            assert_eq!(real_deadline_ms(bogus, started, now), None, "{bogus}");
        }
    }
}
