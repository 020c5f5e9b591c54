//! Webhook destinations: one file per message format, one sender for all.

pub mod json;
pub mod slack;

use std::time::Instant;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::Value;

use crate::adapters::retry::{Attempt, retry_after, with_retries};
use crate::config::{RetryPolicy, WebhookFormat};
use crate::domain::{AppId, Review};
use crate::ports::{DeliveryError, Notifier};
use crate::secret::Destination;

pub struct WebhookNotifier {
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl WebhookNotifier {
    pub fn new(http: reqwest::Client, retry: RetryPolicy) -> Self {
        Self { http, retry }
    }

    async fn post_once(
        &self,
        destination: &Destination,
        review: &Review,
        body: &Value,
        attempt: u32,
    ) -> Attempt<(), DeliveryError> {
        let sent = self
            .http
            .post(destination.url.expose().clone())
            .timeout(self.retry.request_timeout)
            // Lets a receiver drop a message it already has (a resend after a crash).
            .header("Idempotency-Key", &review.id)
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Attempt::Retry {
                    error: DeliveryError::Transport {
                        cause: crate::adapters::describe_http_error(e),
                        attempts: attempt,
                    },
                    after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Done(());
        }
        let after = retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        let error = DeliveryError::Rejected {
            status: status.as_u16(),
            first_line: crate::adapters::first_line(&text),
            attempts: attempt,
        };
        match status {
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry { error, after },
            StatusCode::REQUEST_TIMEOUT => Attempt::Retry { error, after: None },
            s if s.is_server_error() => Attempt::Retry { error, after: None },
            // Any other 4xx will not change by asking again: a wrong URL, a revoked hook, a payload
            // the platform refuses.
            _ => Attempt::Fail(error),
        }
    }
}

/// The message a review becomes in `format`.
pub fn payload(format: WebhookFormat, app: &AppId, review: &Review) -> Value {
    match format {
        WebhookFormat::Slack => slack::message(app, review),
        WebhookFormat::Json => json::message(app, review),
    }
}

/// Where a person reads and answers the app's reviews in App Store Connect.
pub fn ratings_page(app: &AppId) -> String {
    format!(
        "https://appstoreconnect.apple.com/apps/{app}/distribution/activity/ios/ratingsResponses"
    )
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn send(
        &self,
        destination: &Destination,
        app: &AppId,
        review: &Review,
        give_up_at: Option<Instant>,
    ) -> Result<(), DeliveryError> {
        let body = payload(destination.format, app, review);
        with_retries(&self.retry, give_up_at, |attempt| {
            self.post_once(destination, review, &body, attempt)
        })
        .await
    }
}

/// Cuts `text` to at most `max` characters, ending with an ellipsis when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep: String = text.chars().take(max.saturating_sub(1)).collect();
            keep + "…"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate_chars("héllo", 5), "héllo");
        assert_eq!(truncate_chars("héllo wörld", 5), "héll…");
        assert_eq!(truncate_chars("👍👍👍", 2), "👍…");
    }
}
