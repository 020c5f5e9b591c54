//! Stand-ins for a dry run: the table is read but never written (except the tally of requests
//! against a store's hourly limit, which a dry run's reads spend as much as any), and every
//! message is formatted but never sent.

use async_trait::async_trait;
use tracing::{debug, info};

use crate::domain::{AppId, AppState, FoundRecord, Lookback, Progress, Review, Watermark};
use crate::ports::{
    DeliveryError, Lease, NotedAnswer, Notifier, Snapshot, StateError, StateStore, TimeLimit,
};
use crate::secret::Destination;

/// Reads through to the real table; writes, leases included, go nowhere.
pub struct ReadOnlyState<'a>(pub &'a dyn StateStore);

#[async_trait]
impl StateStore for ReadOnlyState<'_> {
    async fn load(
        &self,
        app: &AppId,
        lookback: Lookback,
        replay_from_nanos: Option<i128>,
    ) -> Result<Snapshot, StateError> {
        // A dry run writes nothing, so another run's lease does not stop it.
        let snapshot = self.0.load(app, lookback, replay_from_nanos).await?;
        Ok(Snapshot {
            lease: Lease::default(),
            ..snapshot
        })
    }

    async fn find_records(
        &self,
        app: &AppId,
        ids: &[String],
        lookback: Lookback,
    ) -> Result<Vec<FoundRecord>, StateError> {
        self.0.find_records(app, ids, lookback).await
    }

    async fn create(&self, _app: &AppId, state: &AppState) -> Result<AppState, StateError> {
        Ok(state.clone())
    }

    async fn record(
        &self,
        _app: &AppId,
        _delivered: &[Watermark],
        _destination: &str,
        _keep_until_secs: i64,
    ) -> Result<(), StateError> {
        Ok(())
    }

    async fn advance(&self, _app: &AppId, _to: &Watermark) -> Result<(), StateError> {
        Ok(())
    }

    async fn note_answer(
        &self,
        _app: &AppId,
        _review_id: &str,
        _answer: Option<&NotedAnswer>,
        _keep_until_secs: i64,
    ) -> Result<(), StateError> {
        Ok(())
    }

    async fn add_destination(
        &self,
        _app: &AppId,
        _destination: &str,
        _since_nanos: i128,
    ) -> Result<(), StateError> {
        Ok(())
    }

    async fn acquire_lease(
        &self,
        _app: &AppId,
        _holder: &str,
        _now_ms: i64,
        _until_ms: i64,
        _seen: &Lease,
    ) -> Result<bool, StateError> {
        Ok(true)
    }

    async fn release_lease(&self, _app: &AppId, _holder: &str) -> Result<(), StateError> {
        Ok(())
    }

    async fn save_progress(&self, _app: &AppId, _progress: &Progress) -> Result<(), StateError> {
        Ok(())
    }

    async fn set_failing(
        &self,
        _app: &AppId,
        _destination: &str,
        _since_nanos: Option<i128>,
    ) -> Result<(), StateError> {
        Ok(())
    }

    async fn count_requests(
        &self,
        app: &AppId,
        hour_start_secs: i64,
        count: u32,
    ) -> Result<(), StateError> {
        self.0.count_requests(app, hour_start_secs, count).await
    }
}

/// Formats each message as it would be sent and logs its size (and, at debug level, the body).
pub struct Rehearsal;

#[async_trait]
impl Notifier for Rehearsal {
    fn max_per_message(&self, destination: &Destination) -> usize {
        super::webhooks::batch::max_per_message(destination.format)
    }

    async fn send(
        &self,
        destination: &Destination,
        app: &AppId,
        app_name: Option<&str>,
        reviews: &[&Review],
        _limit: Option<TimeLimit>,
    ) -> Result<usize, DeliveryError> {
        let Some(message) = super::webhooks::first_message(
            destination.format,
            destination.interactive,
            app,
            app_name,
            reviews,
        ) else {
            return Ok(0);
        };
        let text = message.body.to_string();
        info!(
            reviews = message.review_count,
            first_review_id = %reviews[0].id,
            destination = %destination.label,
            bytes = text.len(),
            "dry run: would send"
        );
        debug!(idempotency_key = %message.idempotency_key, payload = %text, "dry run: message");
        Ok(message.review_count)
    }
}
