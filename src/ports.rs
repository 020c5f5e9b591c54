//! The narrow traits the relay runs over. Adapters implement them for AWS, App Store Connect and
//! webhooks; unit tests implement them in memory.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{AppId, AppState, Review, Watermark};
use crate::secret::{ApiKey, Destination, RelaySecret};

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

/// Where a page of reviews is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    First,
    /// A `links.next` URL as the previous page gave it, already resolved against that page's URL.
    Next(url::Url),
}

/// One page of an app's reviews, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub reviews: Vec<Review>,
    pub next: Option<url::Url>,
}

#[async_trait]
pub trait ReviewSource: Send + Sync {
    async fn page(
        &self,
        key: &ApiKey,
        app: &AppId,
        request: &PageRequest,
    ) -> Result<Page, SourceError>;

    /// Drops any cached token, so the next request signs a fresh one.
    fn forget_token(&self);
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
    #[error("App Store Connect rate limit exceeded (429)")]
    RateLimited,
    #[error("App Store Connect answered {status}{detail}")]
    Status { status: u16, detail: String },
    #[error("cannot reach App Store Connect: {0}")]
    Transport(String),
    #[error("the response could not be parsed: {0}")]
    Unparseable(String),
    #[error("links.next points outside ASC_BASE_URL's origin; refusing to send the token there")]
    ForeignNext,
}

/// The per-app delivery state in the table.
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn load(&self, app: &AppId) -> Result<Option<AppState>, StateError>;

    /// Writes a first-run state unless one exists; returns what the table holds afterwards.
    async fn create(&self, app: &AppId, state: &AppState) -> Result<AppState, StateError>;

    /// Moves the watermark forward to `to`; refuses to move it backwards or sideways.
    async fn advance(&self, app: &AppId, to: &Watermark) -> Result<(), StateError>;
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("DynamoDB: {0}")]
    Store(String),
    #[error("the stored watermark is already at or past this review: another run delivered it")]
    Conflict,
    #[error("the state item for this app is malformed: {0}")]
    Malformed(String),
}

/// Sends messages to a destination.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(
        &self,
        destination: &Destination,
        app: &AppId,
        review: &Review,
    ) -> Result<(), DeliveryError>;
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the webhook answered {status}: {first_line}")]
    Rejected { status: u16, first_line: String },
    #[error("the webhook could not be reached: {0}")]
    Transport(String),
}
