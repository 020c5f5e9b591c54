//! Webhook destinations: one file per message format, one sender for all.

pub mod json;
pub mod slack;

use async_trait::async_trait;
use serde_json::Value;

use crate::config::WebhookFormat;
use crate::domain::{AppId, Review};
use crate::ports::{DeliveryError, Notifier};
use crate::secret::Destination;

pub struct WebhookNotifier {
    http: reqwest::Client,
}

impl WebhookNotifier {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
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
    ) -> Result<(), DeliveryError> {
        let body = payload(destination.format, app, review);
        let response = self
            .http
            .post(destination.url.expose().clone())
            // Lets a receiver drop a message it already has (a resend after a crash).
            .header("Idempotency-Key", &review.id)
            .json(&body)
            .send()
            .await
            .map_err(|e| DeliveryError::Transport(crate::adapters::describe_http_error(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(DeliveryError::Rejected {
            status: status.as_u16(),
            first_line: crate::adapters::first_line(&text),
        })
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
