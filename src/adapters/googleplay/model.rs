//! The JSON of `reviews.list` (`ReviewsListResponse` in Google's discovery document,
//! tests/fixtures/google-play/reviews.discovery.json), of Google's error bodies and of the OAuth
//! token endpoint, read once into domain types. Every field is optional in Google's schema.

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{DeveloperResponse, Review, Store, StoreDetails};

/// `ReviewsListResponse`; Google answers `{}` when there is nothing to list.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewsPage {
    /// Read one review at a time by [`PlayReview::into_review`]: a review that does not parse
    /// costs that review, never the page.
    #[serde(default)]
    pub reviews: Vec<Value>,
    #[serde(default)]
    pub token_pagination: Option<TokenPagination>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPagination {
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayReview {
    pub review_id: String,
    #[serde(default)]
    pub author_name: Option<String>,
    #[serde(default)]
    pub comments: Vec<Comment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    #[serde(default)]
    pub user_comment: Option<UserComment>,
    #[serde(default)]
    pub developer_comment: Option<DeveloperComment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserComment {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub last_modified: Option<Timestamp>,
    #[serde(default)]
    pub star_rating: Option<i64>,
    #[serde(default)]
    pub reviewer_language: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub device_metadata: Option<DeviceMetadata>,
    #[serde(default)]
    pub app_version_name: Option<String>,
    #[serde(default)]
    pub original_text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceMetadata {
    #[serde(default)]
    pub product_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeveloperComment {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub last_modified: Option<Timestamp>,
}

/// `Timestamp`: `seconds` is an int64, which Google's JSON writes as a string.
#[derive(Deserialize)]
pub struct Timestamp {
    #[serde(default)]
    pub seconds: Option<String>,
    #[serde(default)]
    pub nanos: Option<i64>,
}

impl Timestamp {
    /// RFC 3339 in UTC (`2026-11-20T10:00:00Z`, with a fraction when `nanos` is not 0); `None`
    /// when it is not a valid instant after 1970.
    pub fn rfc3339(&self) -> Option<String> {
        let seconds: i64 = self.seconds.as_deref()?.trim().parse().ok()?;
        let nanos = self.nanos.unwrap_or(0);
        if seconds < 0 || !(0..1_000_000_000).contains(&nanos) {
            return None;
        }
        let at = OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(seconds) * 1_000_000_000 + i128::from(nanos),
        )
        .ok()?;
        at.format(&Rfc3339).ok()
    }
}

/// Just the id of a review that did not parse, for the log line.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewIdOnly {
    #[serde(default)]
    pub review_id: Option<String>,
}

impl PlayReview {
    /// The review as the relay sees it; `Err` says why it is left out (for a log line: no text).
    pub fn into_review(self) -> Result<Review, String> {
        let mut user = None;
        let mut developer = None;
        for comment in self.comments {
            if user.is_none() {
                user = comment.user_comment;
            }
            if developer.is_none() {
                developer = comment.developer_comment;
            }
        }
        let Some(user) = user else {
            return Err("it has no user comment".into());
        };
        let Some(created) = user.last_modified.as_ref().and_then(Timestamp::rfc3339) else {
            return Err("its user comment has no usable lastModified".into());
        };
        let (title, body) = split_title(user.text);
        let rating = user
            .star_rating
            .filter(|stars| (1..=5).contains(stars))
            .and_then(|stars| u8::try_from(stars).ok());
        let response = developer.and_then(|reply| {
            Some(DeveloperResponse {
                body: reply.text.filter(|t| !t.trim().is_empty())?,
                last_modified_date: reply.last_modified.as_ref().and_then(Timestamp::rfc3339),
            })
        });
        let device = user
            .device_metadata
            .and_then(|m| m.product_name)
            .filter(|name| !name.trim().is_empty())
            .or(user.device);
        let mut review = Review::new(
            self.review_id,
            rating,
            title,
            body,
            self.author_name,
            None,
            created,
            response,
        )
        .ok_or("its lastModified is not an instant after 1970")?
        .in_store(Store::GooglePlay);
        review.details = StoreDetails {
            language: user.reviewer_language,
            device,
            app_version: user.app_version_name,
            original_text: user.original_text.filter(|t| !t.is_empty()),
        };
        Ok(review)
    }
}

/// Google joins a separate title and body with a tab; otherwise the text is all body.
fn split_title(text: Option<String>) -> (Option<String>, Option<String>) {
    let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.to_owned());
    match text {
        None => (None, None),
        Some(text) => match text.split_once('\t') {
            Some((title, body)) => (non_empty(title), non_empty(body)),
            None => (None, non_empty(&text)),
        },
    }
}

/// Google's error body: `{"error": {code, message, status, errors: [...], details: [...]}}`.
#[derive(Deserialize, Default)]
pub struct ErrorDocument {
    #[serde(default)]
    pub error: Option<ErrorStatus>,
}

#[derive(Deserialize, Default)]
pub struct ErrorStatus {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub reason: Option<String>,
}

/// One of `details`; only a `google.rpc.ErrorInfo` has `reason` and `metadata`.
#[derive(Deserialize)]
pub struct ErrorDetail {
    #[serde(default, rename = "@type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub metadata: Option<ErrorMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorMetadata {
    #[serde(default)]
    pub consumer: Option<String>,
    #[serde(default)]
    pub container_info: Option<String>,
}

const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";
/// `errors[].reason` of a quota answered with 403 (the project's quota, reported by users).
const QUOTA_REASONS: [&str; 3] = [
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "dailyLimitExceeded",
];

/// What a 403 means, told by its body (Google answers 403 for three different things).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forbidden {
    /// The API is not enabled in the Cloud project (named when the body says which).
    ApiDisabled { project: Option<String> },
    /// A quota, as a 429 would be.
    RateLimited,
    /// The service account has no permission for the app.
    NoPermission,
}

impl ErrorDocument {
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    fn reasons(&self) -> impl Iterator<Item = &str> {
        self.error
            .iter()
            .flat_map(|e| e.errors.iter().filter_map(|item| item.reason.as_deref()))
    }

    fn service_disabled(&self) -> Option<&ErrorDetail> {
        self.error.iter().flat_map(|e| e.details.iter()).find(|d| {
            d.kind.as_deref() == Some(ERROR_INFO) && d.reason.as_deref() == Some("SERVICE_DISABLED")
        })
    }

    pub fn forbidden(&self) -> Forbidden {
        let disabled = self.service_disabled();
        if disabled.is_some() || self.reasons().any(|r| r == "accessNotConfigured") {
            let project = disabled.and_then(|d| d.metadata.as_ref()).and_then(|m| {
                m.consumer
                    .clone()
                    .or_else(|| m.container_info.as_ref().map(|c| format!("projects/{c}")))
            });
            return Forbidden::ApiDisabled { project };
        }
        if self.reasons().any(|r| QUOTA_REASONS.contains(&r)) {
            return Forbidden::RateLimited;
        }
        Forbidden::NoPermission
    }

    /// ` STATUS: message`, for an error message; empty when the body says nothing.
    pub fn summary(&self) -> String {
        let Some(error) = &self.error else {
            return String::new();
        };
        let status = error.status.as_deref().unwrap_or_default();
        let message = error
            .message
            .as_deref()
            .map(crate::adapters::first_line)
            .unwrap_or_default();
        match (status.is_empty(), message.is_empty()) {
            (true, true) => String::new(),
            (false, true) => format!(" {status}"),
            (true, false) => format!(": {message}"),
            (false, false) => format!(" {status}: {message}"),
        }
    }
}

/// The token endpoint's answer to a granted assertion. No `Debug`: it holds the access token.
#[derive(Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// The token endpoint's refusal: `{"error": "invalid_grant", "error_description": "..."}`.
#[derive(Deserialize, Default)]
pub struct TokenRefusal {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}
