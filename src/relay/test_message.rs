//! `"test_message": true`: one sample review to every destination, to check the setup end to end.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Deps;
use crate::domain::{AppId, Review, Store};
use crate::ports::TimeLimit;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TestSummary {
    pub test_message: bool,
    pub destinations: Vec<DestinationResult>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DestinationResult {
    pub destination: String,
    pub status: TestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Sent,
    Failed,
}

impl TestSummary {
    /// `Some("…")` when a destination did not take the message, or the secret could not be read.
    pub fn failure_message(&self) -> Option<String> {
        let failed: Vec<String> = self
            .destinations
            .iter()
            .filter(|d| d.status == TestStatus::Failed)
            .map(|d| {
                format!(
                    "{}: {}",
                    d.destination,
                    d.error.as_deref().unwrap_or("failed")
                )
            })
            .collect();
        (!failed.is_empty()).then(|| {
            format!(
                "the test message reached {} of {} destinations: {}",
                self.destinations.len() - failed.len(),
                self.destinations.len(),
                failed.join("; ")
            )
        })
    }
}

/// How the sample review's id starts: a Reply button on it answers no store.
pub const SAMPLE_REVIEW_PREFIX: &str = "review-relay-test-";

/// The sample review a test message shows. Its id is unique per send, so a receiver that drops
/// resends by idempotency key still shows each test.
pub fn sample_review(store: Store, now_nanos: i128) -> Option<Review> {
    let created = OffsetDateTime::from_unix_timestamp_nanos(now_nanos)
        .ok()?
        .format(&Rfc3339)
        .ok()?;
    let review = Review::new(
        format!("{SAMPLE_REVIEW_PREFIX}{}", now_nanos / 1_000_000),
        Some(5),
        Some("Test message from review-relay".into()),
        Some(format!(
            "If you can read this, review-relay can post new {} reviews here. \
             This sample is not a real review and is not recorded as delivered.",
            store.name()
        )),
        Some("review-relay".into()),
        (store == Store::AppStore).then(|| "USA".to_owned()),
        created,
        None,
    )?
    .in_store(store);
    Some(review)
}

/// Sends the sample to every destination in the secret as it is now, each independently; writes
/// no state.
pub async fn send_test_message(
    deps: &Deps<'_>,
    app: &AppId,
    now_nanos: i128,
    limit: Option<TimeLimit>,
) -> TestSummary {
    let failed = |destination: String, error: String| TestSummary {
        test_message: true,
        destinations: vec![DestinationResult {
            destination,
            status: TestStatus::Failed,
            error: Some(error),
        }],
    };
    // Read afresh: a test message is what people send right after changing the secret (a new
    // webhook URL), and a warm container would otherwise still hold the old one.
    let secret = match deps.secrets.load(true).await {
        Ok(secret) => secret,
        Err(err) => return failed("secret".into(), err.to_string()),
    };
    let Some(review) = sample_review(app.store(), now_nanos) else {
        return failed("clock".into(), "the system clock is out of range".into());
    };
    let mut destinations = Vec::new();
    for destination in &secret.destinations {
        let sent = deps
            .notifier
            .send(destination, app, None, &[&review], limit)
            .await;
        destinations.push(DestinationResult {
            destination: destination.label.clone(),
            status: if sent.is_ok() {
                TestStatus::Sent
            } else {
                TestStatus::Failed
            },
            error: sent.err().map(|e| e.to_string()),
        });
    }
    TestSummary {
        test_message: true,
        destinations,
    }
}
