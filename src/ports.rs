//! The narrow traits the relay runs over. Adapters implement them for AWS, App Store Connect,
//! Google Play and webhooks; unit tests implement them in memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;

use crate::domain::{
    AnswerText, AppId, AppState, DeveloperResponse, FoundRecord, Lookback, Progress, Review, Store,
    Watermark,
};
use crate::secret::{Destination, RelaySecret};

/// How long an app's work may go on in this invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimit {
    /// No new request or retry starts after this.
    pub give_up_at: Instant,
    /// A request already under way is cut off here, so the run still saves its progress and
    /// answers before the invocation's deadline.
    pub finish_by: Instant,
}

impl TimeLimit {
    /// The timeout for one request: `default`, shortened to end by `finish_by`.
    pub fn request_timeout(limit: Option<TimeLimit>, default: Duration) -> Duration {
        match limit {
            None => default,
            Some(limit) => default.min(limit.finish_by.saturating_duration_since(Instant::now())),
        }
    }

    pub fn give_up_at(limit: Option<TimeLimit>) -> Option<Instant> {
        limit.map(|l| l.give_up_at)
    }

    /// Past `give_up_at`: start no new delivery and no retry.
    pub fn passed(limit: Option<TimeLimit>) -> bool {
        limit.is_some_and(|l| Instant::now() >= l.give_up_at)
    }

    /// Past `finish_by`: start nothing at all.
    pub fn over(limit: Option<TimeLimit>) -> bool {
        limit.is_some_and(|l| Instant::now() >= l.finish_by)
    }
}

/// The relay's credentials and destinations.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The secret, read once and then kept; `refresh` reads it again (it may have been rotated).
    async fn load(&self, refresh: bool) -> Result<Arc<RelaySecret>, SecretError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret `{secret_id}` from Secrets Manager: {cause}")]
    Unreadable { secret_id: String, cause: String },
    #[error("secret `{secret_id}` has no SecretString (binary secrets are not supported)")]
    NotAString { secret_id: String },
    #[error("secret `{secret_id}`: {cause}")]
    Format {
        secret_id: String,
        cause: crate::secret::SecretFormatError,
    },
}

/// Where a page of reviews is read from. The relay keeps a cursor, saves it and compares it
/// for equality; only the store's adapter knows what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cursor {
    First,
    /// What the previous page said comes next.
    Next(String),
}

/// One page of an app's reviews, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub reviews: Vec<Review>,
    /// `None` on the last page.
    pub next: Option<Cursor>,
}

/// A store's reviews. Each adapter owns its credentials (read through [`Secrets`]), its token
/// cache, the refresh after a refused token and its rate budget.
#[async_trait]
pub trait ReviewSource: Send + Sync {
    /// Reads one page, retrying rate limits and server faults within `limit`.
    async fn page(
        &self,
        app: &AppId,
        cursor: &Cursor,
        limit: Option<TimeLimit>,
    ) -> Result<Page, SourceError>;

    /// Whether optional reads (re-reading the overlap window for late reviews) may be spent now.
    fn optional_reads_affordable(&self, _app: &AppId) -> bool {
        true
    }

    /// The store's limit on requests per app in a clock hour, counted across every caller (so
    /// the relay keeps a tally in the table); `None` when no such limit binds.
    fn hourly_request_limit(&self) -> Option<u32> {
        None
    }

    /// Requests this process has sent for `app` so far, every try counted.
    fn requests_sent(&self, _app: &AppId) -> u64 {
        0
    }

    /// The app's name as people know it, for messages; `None` when it cannot be had (messages
    /// then name the app by its id). Never an error: a message goes out without it.
    async fn app_name(&self, _app: &AppId, _limit: Option<TimeLimit>) -> Option<String> {
        None
    }
}

/// Apple's `X-Rate-Limit` header: requests allowed per hour for the key, and how many are left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBudget {
    pub limit: u32,
    pub remaining: u32,
}

impl RateBudget {
    /// Whether optional requests (re-reading the overlap window for late reviews) may be spent:
    /// a quarter of the hour's budget is kept for the pages every run must read.
    pub fn allows_optional(budget: Option<RateBudget>) -> bool {
        budget.is_none_or(|b| b.remaining > b.limit / 4)
    }

    /// `user-hour-lim:3500;user-hour-rem:3400;`, as Apple sends it.
    pub fn parse(header: &str) -> Option<RateBudget> {
        let mut limit = None;
        let mut remaining = None;
        for part in header.split(';') {
            match part.trim().split_once(':') {
                Some(("user-hour-lim", v)) => limit = v.trim().parse().ok(),
                Some(("user-hour-rem", v)) => remaining = v.trim().parse().ok(),
                _ => {}
            }
        }
        Some(RateBudget {
            limit: limit?,
            remaining: remaining?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "App Store Connect rejected the API key (401 NOT_AUTHORIZED): check `key_id`, `issuer_id` (omit it only for an individual key) and `private_key` in the secret, and that the key has not been revoked"
    )]
    Unauthorized,
    #[error(
        "the API key's role cannot read this app's customer reviews (403 FORBIDDEN_ERROR): give the key a role with access to Customer Reviews, such as Customer Support, App Manager or Admin"
    )]
    Forbidden,
    #[error("app {0} was not found (404): check APP_IDS, and that the API key's team owns the app")]
    AppNotFound(AppId),
    #[error("App Store Connect rate limit exceeded (429 RATE_LIMIT_EXCEEDED){}", tries(*.attempts))]
    RateLimited { attempts: u32 },
    #[error("App Store Connect answered {status}{detail}{}", tries(*.attempts))]
    Status {
        status: u16,
        detail: String,
        attempts: u32,
    },
    /// The store's API (or its token endpoint) could not be reached, or a request was cut off.
    #[error("cannot reach {}: {cause}{}", api_name(*.store), tries(*.attempts))]
    Transport {
        store: Store,
        cause: String,
        attempts: u32,
    },
    #[error("cannot sign the token: {0}")]
    Signing(String),
    #[error("the response could not be parsed: {0}")]
    Unparseable(String),
    #[error("links.next points outside ASC_BASE_URL's origin; refusing to send the token there")]
    ForeignNext,
    #[error("{0}")]
    Secret(#[from] SecretError),
    #[error("{0}")]
    NoCredentials(&'static str),
    #[error(
        "Google refused the service account's token request ({error}{description}): check in the secret's `google_service_account` its `client_email`, and that `private_key` and `private_key_id` are those of a key that still exists in Google Cloud (IAM & Admin → Service accounts → Keys), and that this machine's clock is right (Google refuses an assertion dated in the future or expired)"
    )]
    PlayTokenRefused {
        /// Google's `error` (`invalid_grant`, …) and `error_description`, quoted: they name the
        /// check that failed, never a credential.
        error: String,
        description: String,
    },
    #[error(
        "Google Play refused the access token twice (401 UNAUTHENTICATED), the second made with the secret read again: check the secret's `google_service_account`"
    )]
    PlayUnauthorized,
    #[error(
        "the Google Play Android Developer API is not enabled in the service account's Google Cloud project{}: enable it in Google Cloud (APIs & Services → Library → Google Play Android Developer API), wait a few minutes, then run again",
        .project.as_deref().map(|p| format!(" ({p})")).unwrap_or_default()
    )]
    PlayApiDisabled { project: Option<String> },
    #[error(
        "the service account {account} cannot read the reviews of {package} (403 PERMISSION_DENIED): in the Play Console, under Users and permissions, give it the permission \"Reply to reviews\" for this app (it is needed even to read reviews)"
    )]
    PlayForbidden { package: AppId, account: String },
    #[error(
        "Google Play app {0} was not found (404): check PLAY_PACKAGES, and that the app is in the service account's Play Console developer account"
    )]
    PlayAppNotFound(AppId),
    #[error(
        "Google Play quota exceeded ({status}): Google allows 200 GET requests an hour per app for reviews{}",
        tries(*.attempts)
    )]
    PlayRateLimited { status: u16, attempts: u32 },
    #[error("Google Play answered {status}{detail}{}", tries(*.attempts))]
    PlayStatus {
        status: u16,
        detail: String,
        attempts: u32,
    },
}

/// The store's API as error messages name it.
fn api_name(store: Store) -> &'static str {
    match store {
        Store::AppStore => "App Store Connect",
        Store::GooglePlay => "Google Play",
    }
}

/// An app's lease as one read found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// The invocation holding it; `None` when it was given back or never taken.
    pub holder: Option<String>,
    /// When the holder's lease lapses (Unix ms).
    pub until_ms: i64,
    /// Counts every take and every give-back (`None` before the first). A run reads the state
    /// without the lease and takes the lease only when it has something to write; the lease is
    /// taken only if this count has not moved since that read, so whatever another run wrote in
    /// between is never missed.
    pub generation: Option<i64>,
}

impl Lease {
    /// Whether another invocation holds it at `now_ms`.
    pub fn held(&self, now_ms: i64) -> bool {
        self.holder.is_some() && self.until_ms >= now_ms
    }
}

/// What one read of an app's items found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `None` on a first run.
    pub state: Option<AppState>,
    pub lease: Lease,
    /// The requests counted against the store's hourly limit, if any were.
    pub requests: Option<RequestTally>,
    /// Answers sent from here and not yet expired, by the review's id in its store.
    pub answers: HashMap<String, DeveloperResponse>,
}

/// Requests sent for an app in one clock hour, by every run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestTally {
    /// The hour's first second (Unix seconds).
    pub hour_start_secs: i64,
    pub count: u32,
}

impl RequestTally {
    /// What is left of `limit` in the hour of `now_secs`.
    pub fn left(tally: Option<RequestTally>, limit: u32, now_secs: i64) -> u32 {
        let hour = now_secs - now_secs.rem_euclid(3600);
        let used = tally
            .filter(|t| t.hour_start_secs == hour)
            .map_or(0, |t| t.count);
        limit.saturating_sub(used)
    }
}

/// The per-app delivery state in the table.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The app's state, with the ids delivered since `window_start(lookback)` whose records
    /// have not expired by `lookback.now_nanos`, its `replay_from_nanos` set to
    /// `replay_from_nanos`, and the app's lease, in one read.
    async fn load(
        &self,
        app: &AppId,
        lookback: Lookback,
        replay_from_nanos: Option<i128>,
    ) -> Result<Snapshot, StateError>;

    /// The delivery records of reviews by their ids in the store (`ids`), whatever their time:
    /// for each, the latest version recorded, unless expired by `lookback.now_nanos`. Only
    /// apps of a store whose edits move reviews ([`crate::domain::Store::edits_move_reviews`])
    /// have their records found this way; others find none.
    async fn find_records(
        &self,
        app: &AppId,
        ids: &[String],
        lookback: Lookback,
    ) -> Result<Vec<FoundRecord>, StateError>;

    /// Writes a first-run state unless one exists; returns what the table holds afterwards.
    async fn create(&self, app: &AppId, state: &AppState) -> Result<AppState, StateError>;

    /// Records, in one write, that one message brought `delivered` to `destination` (a key):
    /// the key is added to each review's delivered item, kept until `keep_until_secs` (Unix
    /// seconds). Refuses a review already recorded for that destination.
    async fn record(
        &self,
        app: &AppId,
        delivered: &[Watermark],
        destination: &str,
        keep_until_secs: i64,
    ) -> Result<(), StateError>;

    /// Moves the watermark forward to `to`: every destination has, or does not want, the reviews
    /// up to it. Keeps a newer watermark.
    async fn advance(&self, app: &AppId, to: &Watermark) -> Result<(), StateError>;

    /// Notes that `destination` (a key) gets this app's reviews created since `since_nanos`,
    /// unless an earlier note exists.
    async fn add_destination(
        &self,
        app: &AppId,
        destination: &str,
        since_nanos: i128,
    ) -> Result<(), StateError>;

    /// Takes the app's lease for `holder` until `until_ms` (Unix ms), provided nobody holds it at
    /// `now_ms` and nobody has taken or given it back since `seen` was read. `false` otherwise:
    /// read again to tell which.
    async fn acquire_lease(
        &self,
        app: &AppId,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
        seen: &Lease,
    ) -> Result<bool, StateError>;

    /// Gives the lease back if `holder` still has it (a give-back counts as a change).
    async fn release_lease(&self, app: &AppId, holder: &str) -> Result<(), StateError>;

    /// Saves where reading stands across runs, on the app's state item.
    async fn save_progress(&self, app: &AppId, progress: &Progress) -> Result<(), StateError>;

    /// Adds `count` to the app's tally of requests for the hour starting `hour_start_secs`; a
    /// tally of an earlier hour is replaced.
    async fn count_requests(
        &self,
        app: &AppId,
        hour_start_secs: i64,
        count: u32,
    ) -> Result<(), StateError>;

    /// Notes that review `review_id` (its id in the store) was answered with `answer`, kept
    /// until `keep_until_secs` (Unix seconds), replacing an earlier note; `None` removes the note
    /// (the answer was deleted). Later messages about the review show the answer.
    async fn note_answer(
        &self,
        app: &AppId,
        review_id: &str,
        answer: Option<&NotedAnswer>,
        keep_until_secs: i64,
    ) -> Result<(), StateError>;

    /// Notes since when `destination` (a key) has been failing, or that it is healthy (`None`).
    async fn set_failing(
        &self,
        app: &AppId,
        destination: &str,
        since_nanos: Option<i128>,
    ) -> Result<(), StateError>;
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("DynamoDB: {0}")]
    Store(String),
    #[error(
        "the table already records this review as delivered, or its watermark is past it: another run delivered it"
    )]
    Conflict,
    #[error("the state item for this app is malformed: {0}")]
    Malformed(String),
}

/// An answer sent from here, as the table notes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotedAnswer {
    pub text: String,
    /// [`crate::domain::text_digest`] of the text.
    pub digest: String,
    /// When it was sent (Unix ns).
    pub answered_nanos: i128,
}

/// A developer's answer as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PostedAnswer {
    /// Apple's `customerReviewResponses` id; Google Play gives none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub text: String,
    /// Apple's `state`: `PENDING_PUBLISH` until Apple publishes it, then `PUBLISHED`; Google Play
    /// gives none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Apple's `lastModifiedDate`, or Google's `lastEdited` in RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// Answers to reviews, in the review's own store. Each adapter uses the credentials, token cache
/// and refresh after a refused token it reads with. One try each: nothing is retried, so an
/// answer is never sent twice without the caller seeing it.
#[async_trait]
pub trait ReviewAnswers: Send + Sync {
    /// Publishes `text` as the answer to review `review_id` of `app`, replacing any earlier one.
    async fn answer(
        &self,
        app: &AppId,
        review_id: &str,
        text: &AnswerText,
    ) -> Result<PostedAnswer, AnswerError>;

    /// Removes the answer; the removed answer, as it was.
    async fn delete(&self, app: &AppId, review_id: &str) -> Result<PostedAnswer, AnswerError>;

    /// The answer as the store holds it now; `None` when there is none.
    async fn current(
        &self,
        app: &AppId,
        review_id: &str,
    ) -> Result<Option<PostedAnswer>, AnswerError>;
}

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The secret, the token, or a key refused twice: the same causes as for reading.
    #[error("{0}")]
    Credentials(#[from] SourceError),
    #[error(
        "the API key's role may not answer customer reviews (403 FORBIDDEN_ERROR{detail}): answering needs a key with the role Account Holder, Admin, App Manager or Customer Support (App Store Connect → Users and Access → Integrations); some team keys with the Customer Support role have been refused, so use an App Manager or Admin key if this one has that role"
    )]
    AppStoreForbidden { detail: String },
    #[error("App Store Connect refused the answer ({status} {code}): {detail}{}", apple_hint(*.status))]
    AppStoreRefused {
        status: u16,
        code: String,
        detail: String,
    },
    #[error(
        "the service account {account} may not reply to reviews of {package} (403 PERMISSION_DENIED): in the Play Console, under Users and permissions, give it the permission \"Reply to reviews\" for this app"
    )]
    PlayForbidden { package: AppId, account: String },
    #[error(
        "Google Play refused the reply (400{detail}): Google takes at most 350 characters of plain text, and only for a review of the last year that it lists"
    )]
    PlayRefused { detail: String },
    #[error(
        "Google Play has no way to delete a reply through its API: send a new reply to replace it, or delete it in the Play Console"
    )]
    PlayCannotDelete,
    #[error("{} has no review {review_id} for app {app} (404): check the review id", .app.store().name())]
    ReviewNotFound { app: AppId, review_id: String },
    #[error("review {review_id} has no answer to delete")]
    NoAnswer { review_id: String },
    #[error("{} answered 429: too many requests{}; try again later", api_name(*.store), quota_of(*.store))]
    RateLimited { store: Store },
    #[error("{} answered {status}{detail}", api_name(*.store))]
    Status {
        store: Store,
        status: u16,
        detail: String,
    },
    #[error("cannot reach {}: {cause}; the answer may or may not have been sent, read it with --show", api_name(*.store))]
    Transport { store: Store, cause: String },
    #[error("{}'s answer could not be parsed: {cause}", api_name(*.store))]
    Unparseable { store: Store, cause: String },
}

impl From<SecretError> for AnswerError {
    fn from(err: SecretError) -> Self {
        AnswerError::Credentials(SourceError::Secret(err))
    }
}

fn apple_hint(status: u16) -> &'static str {
    match status {
        409 => {
            " (409 CONFLICT: the review or its answer changed meanwhile, or the review was removed; read it with --show and try again)"
        }
        422 => {
            " (422 UNPROCESSABLE_ENTITY: Apple cannot take the answer as it is; change the text)"
        }
        _ => "",
    }
}

fn quota_of(store: Store) -> &'static str {
    match store {
        Store::GooglePlay => " (Google allows 2,000 replies a day per app)",
        Store::AppStore => "",
    }
}

/// Sends messages to a destination.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// The most reviews one message to `destination` can carry.
    fn max_per_message(&self, destination: &Destination) -> usize;

    /// Sends one message carrying the first of `reviews` (at least one, as many as fit, in
    /// order), retrying as the destination allows, within `limit`; returns how many it carried.
    /// `app_name` is shown when known, else the app id.
    async fn send(
        &self,
        destination: &Destination,
        app: &AppId,
        app_name: Option<&str>,
        reviews: &[&Review],
        limit: Option<TimeLimit>,
    ) -> Result<usize, DeliveryError>;
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the webhook answered {status}: {first_line}{}", tries(*.attempts))]
    Rejected {
        status: u16,
        first_line: String,
        attempts: u32,
    },
    #[error("the webhook could not be reached: {cause}{}", tries(*.attempts))]
    Transport { cause: String, attempts: u32 },
}

fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// Work a function hands to a later invocation of itself, so the caller is answered at once
/// (the Reply button's store calls: Slack waits 3 seconds).
#[async_trait]
pub trait Jobs: Send + Sync {
    /// Queues `job` (the event the later invocation gets); the reason when it cannot.
    async fn start(&self, job: &serde_json::Value) -> Result<(), String>;
}

/// What the Reply button's endpoint asks of Slack: open and update the modal, and update the
/// message a click came from through the click's `response_url`.
#[async_trait]
pub trait SlackViews: Send + Sync {
    /// Opens `view` for the click `trigger_id`; the view's id.
    async fn open(&self, trigger_id: &str, view: &serde_json::Value) -> Result<String, String>;
    /// Replaces the open view `view_id` with `view`.
    async fn update(&self, view_id: &str, view: &serde_json::Value) -> Result<(), String>;
    /// Posts `body` to `response_url` (checked to be Slack's by the caller and again here).
    async fn respond(&self, response_url: &str, body: &serde_json::Value) -> Result<(), String>;
}

/// Messages a click came from, kept until the answer's outcome is shown in them: a click's copy
/// of the message can be 100 KB, far more than a modal's `private_metadata` carries.
#[async_trait]
pub trait KeptMessages: Send + Sync {
    /// Keeps `message` under `key` until `expires_at_secs`.
    async fn keep(
        &self,
        key: &str,
        message: &serde_json::Value,
        expires_at_secs: i64,
    ) -> Result<(), StateError>;
    /// The message kept under `key`, unless it has expired by `now_secs`.
    async fn kept(&self, key: &str, now_secs: i64)
    -> Result<Option<serde_json::Value>, StateError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_apples_rate_limit_header_and_keeps_a_quarter_in_reserve() {
        let budget = RateBudget::parse("user-hour-lim:3500;user-hour-rem:876;");
        assert_eq!(
            budget,
            Some(RateBudget {
                limit: 3500,
                remaining: 876
            })
        );
        assert!(RateBudget::allows_optional(budget));
        let low = RateBudget::parse("user-hour-rem:875; user-hour-lim:3500");
        assert!(!RateBudget::allows_optional(low));
        assert!(
            RateBudget::allows_optional(None),
            "no header, no limit known"
        );
        assert_eq!(RateBudget::parse("user-hour-lim:3500;"), None);
        assert_eq!(RateBudget::parse("garbage"), None);
    }

    #[test]
    fn a_transport_error_names_its_store() {
        let apple = SourceError::Transport {
            store: Store::AppStore,
            cause: "timed out".into(),
            attempts: 1,
        };
        assert_eq!(
            apple.to_string(),
            "cannot reach App Store Connect: timed out"
        );
        let play = SourceError::Transport {
            store: Store::GooglePlay,
            cause: "timed out".into(),
            attempts: 2,
        };
        assert_eq!(
            play.to_string(),
            "cannot reach Google Play: timed out (after 2 attempts)"
        );
    }
}
