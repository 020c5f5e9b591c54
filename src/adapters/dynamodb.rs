//! Per-app state in the DynamoDB table (`pk`, `sk` strings; TTL on the number `expires_at`).
//!
//! Item kinds, all under `pk = "app#<app id>"` for an App Store app, `pk = "play#<package name>"`
//! for a Google Play app:
//! - `sk = "state"`: `baseline_ns` (N, ns since the epoch), `wm` (S, the watermark as an
//!   order-preserving string: 21-digit ns, `#`, review id), `wm_created_date`, `wm_review_id`,
//!   `created_ns` (N, when the first run created it; absent in older states), `updated_at`;
//!   while reading spans runs, `stops` (L of M: `page`, S, the link of the page read last, absent
//!   for the first page; `reached`, S, the oldest review on it, encoded as `wm`; the deepest
//!   last) and `deepest` (S,
//!   encoded as `wm`: the furthest back reading got since the last delivery);
//!   `handled` (S, encoded as `wm`: every review listed after it went out); `stalls` (N) counts runs in a row
//!   without progress; `rescan_from_ns` (N): the overlap re-scan also reaches back from this
//!   instant; `rescan_cuts` (N) counts runs in a row that ran out of time before its end.
//! - `sk = "dest#<destination key>"`: `since_ns` (N), `added_at`; `failing_since_ns` (N) while
//!   the destination fails (absent: healthy).
//! - `sk = "requests"` (Google Play apps): `hour` (N, the clock hour's first Unix second) and
//!   `count` (N): requests sent for the app in that hour by every run, against Google's hourly
//!   limit; `expires_at` two days after the hour.
//! - `sk = "lease"`: `holder` (absent once given back), `lease_until_ms` (N, 0 once given back),
//!   `gen` (N, counts takes and give-backs); `expires_at` lets TTL sweep it when the app stops.
//! - `sk = "delivered#<21-digit ns>#<review id>"`: one per delivered review; `review_id`,
//!   `created_date`, `delivered_at`, `expires_at`; `digest`, `original_id` and `rating`: the
//!   version delivered (absent in items from earlier versions).
//! - `sk = "by-id#<review id in the store>"` (Google Play apps, whose edits move a review to a
//!   later time): `record` (S, the sort key of the review's latest delivery record) and
//!   `expires_at` as that record's, so an edit of a review delivered before the overlap window
//!   finds its record.
//! - `sk = "reply#<review id>"`: the answer sent from here to that review (its id in the store);
//!   `review_id`, `text`, `length` (N, characters), `digest`, `answered_at`, `answered_ns` (N),
//!   `expires_at` (as long as delivery records). Later messages about the review show it.
//!
//!
//! And under `pk = "slack#click"`, one item per click on a Reply button: `sk` the click's key
//! (32 hex digits, carried by the modal), `message` (S, the message clicked, as Slack sent it),
//! `expires_at` 30 minutes on (Slack's `response_url` is no use after that).
//!
//! Sort keys order as `state` > `requests` > `reply#…` > `lease` > `dest#…` > `delivered#…` >
//! `by-id#…` (newest first when read backwards), so one backwards query from `delivered#` up reads the state and then only the
//! delivered ids the overlap window needs.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::adapters::sdk_error::SdkFailure;
use crate::domain::{
    AppId, AppState, Delivered, DeveloperResponse, FoundRecord, Lookback, Progress, ReviewKey,
    Scan, Store, Version, Watermark,
};
use crate::ports::{
    KeptMessages, Lease, NotedAnswer, RequestTally, Snapshot, StateError, StateStore,
};

/// The table's key schema and TTL attribute, as template.yaml defines them (a test checks both agree).
pub const PARTITION_KEY: &str = "pk";
pub const SORT_KEY: &str = "sk";
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// Items per query page: enough for most apps' whole window in one read.
const QUERY_PAGE: i32 = 500;
const STATE_SK: &str = "state";
const REQUESTS_SK: &str = "requests";
/// A tally of requests outlives its hour by this much, then TTL sweeps it.
const REQUESTS_KEPT_SECONDS: i64 = 2 * 86_400;
const LEASE_SK: &str = "lease";
const DELIVERED_PREFIX: &str = "delivered#";
/// Sorts below [`DELIVERED_PREFIX`], so loading the window never reads these items.
const BY_ID_PREFIX: &str = "by-id#";
const RECORD: &str = "record";
/// DynamoDB's most keys in one BatchGetItem.
const BATCH_GET_MAX: usize = 100;
/// Tries of a BatchGetItem whose keys DynamoDB left unprocessed (it answers with fewer under
/// load) before the read fails.
const BATCH_GET_TRIES: u32 = 5;
const REPLY_PREFIX: &str = "reply#";
const DESTINATION_PREFIX: &str = "dest#";
/// The string set on a delivered item naming the destinations that have the review.
const DELIVERED_TO: &str = "to";
/// The lease item's count of takes and give-backs (see [`Lease::generation`]).
const LEASE_GENERATION: &str = "gen";
/// A lease item is swept this long after its last lease lapsed (an app no longer relayed).
const LEASE_KEPT_SECONDS: i64 = 30 * 86_400;
const STOPS: &str = "stops";
/// On a delivered item: the version delivered (see [`Version`]).
const DIGEST: &str = "digest";
const ORIGINAL_ID: &str = "original_id";
const RATING: &str = "rating";
const CREATED: &str = "created_ns";
const RESCAN_FROM: &str = "rescan_from_ns";
const RESCAN_CUTS: &str = "rescan_cuts";
const STALLS: &str = "stalls";
const DEEPEST: &str = "deepest";
const HANDLED: &str = "handled";
const FAILING_SINCE: &str = "failing_since_ns";

pub struct DynamoStateStore {
    client: Client,
    table: String,
}

impl DynamoStateStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// The items of `pk` under the sort keys `sks` that exist, read consistently, a hundred
    /// keys a request; keys DynamoDB leaves unprocessed are asked for again.
    async fn batch_get(
        &self,
        pk: &str,
        sks: impl Iterator<Item = String>,
    ) -> Result<Vec<Item>, StateError> {
        let keys: Vec<Item> = sks
            .map(|sk| {
                HashMap::from([
                    (PARTITION_KEY.to_owned(), s(pk)),
                    (SORT_KEY.to_owned(), s(sk)),
                ])
            })
            .collect();
        let mut items = Vec::new();
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = chunk.to_vec();
            let mut tries = 0;
            while !pending.is_empty() {
                tries += 1;
                if tries > BATCH_GET_TRIES {
                    return Err(StateError::Store(format!(
                        "DynamoDB left {} keys unread after {BATCH_GET_TRIES} tries; the table is busy, the next run reads them",
                        pending.len()
                    )));
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StateError::Store(e.to_string()))?;
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(store_error)?;
                if let Some(read) = answer.responses().and_then(|r| r.get(&self.table)) {
                    items.extend(read.iter().cloned());
                }
                if let Some(left) = answer.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    pending = left.keys().to_vec();
                }
            }
        }
        Ok(items)
    }
}

/// The latest record of each review among `delivered`, by its id in the store.
fn latest_records(delivered: &[Watermark]) -> HashMap<&str, &ReviewKey> {
    let mut latest: HashMap<&str, &ReviewKey> = HashMap::new();
    for mark in delivered {
        let Some(version) = &mark.version else {
            continue;
        };
        let kept = latest
            .entry(version.original_id.as_str())
            .or_insert(&mark.key);
        if mark.key > **kept {
            *kept = &mark.key;
        }
    }
    latest
}

pub fn app_pk(app: &AppId) -> String {
    match app.store() {
        // As every earlier version wrote it: upgrading reads App Store state as it is.
        Store::AppStore => format!("app#{app}"),
        Store::GooglePlay => format!("play#{app}"),
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A conditional write refused because its condition did not hold (another run got there first).
fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

/// A conditional write's outcome: `true` when written, `false` when its condition refused it.
fn written<T, E: ProvideErrorMetadata>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<bool, StateError> {
    match result {
        Ok(_) => Ok(true),
        Err(err) if condition_failed(&err) => Ok(false),
        Err(err) => Err(store_error(err)),
    }
}

/// The SDK's error as its kind and request id (never the response: items hold review text), with
/// what to do for the codes a deployment gets wrong.
fn store_error<E: ProvideErrorMetadata>(err: SdkError<E, HttpResponse>) -> StateError {
    let failure = SdkFailure::of(&err);
    let hint = match failure.code() {
        Some("ResourceNotFoundException") => {
            ": the table named by `TABLE_NAME` does not exist in this region"
        }
        Some("AccessDeniedException") => {
            ": the function's role needs dynamodb:Query, PutItem, UpdateItem and BatchGetItem on the table"
        }
        _ => "",
    };
    StateError::Store(format!("{failure}{hint}"))
}

/// Who has a delivered review, and the version its record holds (`None` in records written
/// before edits were noticed).
fn parse_delivered(
    item: &HashMap<String, AttributeValue>,
    key: &ReviewKey,
) -> (Delivered, Option<Version>) {
    let to = match item.get(DELIVERED_TO).and_then(|v| v.as_ss().ok()) {
        // Recorded before destinations were told apart: every destination has it.
        None => Delivered::All,
        Some(keys) => Delivered::To(keys.iter().cloned().collect()),
    };
    let version = item.get(DIGEST).and_then(|v| v.as_s().ok()).map(|digest| {
        let original_id = item
            .get(ORIGINAL_ID)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| key.id.clone());
        Version {
            original_id,
            digest: digest.clone(),
            rating: number(item, RATING)
                .and_then(|r| u8::try_from(r).ok())
                .filter(|r| (1..=5).contains(r)),
        }
    });
    (to, version)
}

type Item = HashMap<String, AttributeValue>;

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i128> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

impl DynamoStateStore {
    /// Moves the app's watermark to `mark`, unless it is already there or past it.
    fn watermark_update(&self, app: &AppId, mark: &Watermark) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(app_pk(app)))
            .key(SORT_KEY, s(STATE_SK))
            .update_expression(
                "SET wm = :wm, wm_created_date = :date, wm_review_id = :id, updated_at = :now",
            )
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(wm) OR wm < :wm)")
            .expression_attribute_values(":wm", s(mark.key.encode()))
            .expression_attribute_values(":date", s(&mark.created_date))
            .expression_attribute_values(":id", s(&mark.key.id))
            .expression_attribute_values(":now", s(now_text()))
    }
}

fn now_text() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// A lease item; a missing or malformed attribute reads as free (the conditional write that takes
/// the lease checks the item itself).
fn parse_lease(item: &HashMap<String, AttributeValue>) -> Lease {
    Lease {
        holder: item.get("holder").and_then(|v| v.as_s().ok()).cloned(),
        until_ms: number(item, "lease_until_ms")
            .and_then(|n| i64::try_from(n).ok())
            .unwrap_or(0),
        generation: number(item, LEASE_GENERATION).and_then(|n| i64::try_from(n).ok()),
    }
}

/// A noted answer not yet expired; `None` when expired or without text.
fn parse_answer(
    item: &HashMap<String, AttributeValue>,
    lookback: Lookback,
) -> Option<DeveloperResponse> {
    let expired = number(item, TTL_ATTRIBUTE)
        .and_then(|secs| i64::try_from(secs).ok())
        .is_some_and(|secs| lookback.expired(secs));
    let text = item.get("text").and_then(|v| v.as_s().ok())?;
    (!expired).then(|| DeveloperResponse {
        body: text.clone(),
        last_modified_date: item.get("answered_at").and_then(|v| v.as_s().ok()).cloned(),
    })
}

fn parse_state(item: &HashMap<String, AttributeValue>) -> Result<AppState, StateError> {
    let baseline_nanos = item
        .get("baseline_ns")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i128>().ok())
        .ok_or_else(|| StateError::Malformed("`baseline_ns` is missing or not a number".into()))?;
    let watermark = match item.get("wm") {
        None => None,
        Some(value) => {
            let key = value
                .as_s()
                .ok()
                .and_then(|s| ReviewKey::decode(s))
                .ok_or_else(|| StateError::Malformed("`wm` is not a watermark".into()))?;
            let created_date = item
                .get("wm_created_date")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            Some(Watermark {
                key,
                created_date,
                version: None,
            })
        }
    };
    let key_at = |name: &str| -> Result<Option<ReviewKey>, StateError> {
        item.get(name)
            .map(|value| {
                value
                    .as_s()
                    .ok()
                    .and_then(|s| ReviewKey::decode(s))
                    .ok_or_else(|| StateError::Malformed(format!("`{name}` is not a review key")))
            })
            .transpose()
    };
    let malformed_stops = || StateError::Malformed(format!("`{STOPS}` is not a list of stops"));
    let stops = match item.get(STOPS) {
        None => Vec::new(),
        Some(list) => list
            .as_l()
            .map_err(|_| malformed_stops())?
            .iter()
            .map(|stop| {
                let stop = stop.as_m().map_err(|_| malformed_stops())?;
                // Stops saved with the link after the page (`next`) cannot prove that nothing
                // moved past them: reading starts again from the newest review.
                if stop.contains_key("next") {
                    return Ok(None);
                }
                let page = match stop.get("page") {
                    None => None,
                    Some(link) => Some(link.as_s().map_err(|_| malformed_stops())?.clone()),
                };
                let reached = stop
                    .get("reached")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| ReviewKey::decode(s))
                    .ok_or_else(malformed_stops)?;
                Ok(Some(Scan { page, reached }))
            })
            .collect::<Result<Option<Vec<_>>, _>>()?
            .unwrap_or_default(),
    };
    let progress = Progress {
        stops,
        deepest: key_at(DEEPEST)?,
        handled: key_at(HANDLED)?,
        stalls: number(item, STALLS)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        rescan_from: number(item, RESCAN_FROM),
        rescan_cuts: number(item, RESCAN_CUTS)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
    };
    Ok(AppState {
        baseline_nanos,
        created_nanos: number(item, CREATED),
        watermark,
        progress,
        ..AppState::default()
    })
}

/// Where clicked messages are kept: one partition, read by key only.
const CLICK_PK: &str = "slack#click";

#[async_trait]
impl KeptMessages for DynamoStateStore {
    async fn keep(
        &self,
        key: &str,
        message: &serde_json::Value,
        expires_at_secs: i64,
    ) -> Result<(), StateError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(CLICK_PK))
            .item(SORT_KEY, s(key))
            .item("message", s(message.to_string()))
            .item(TTL_ATTRIBUTE, n(expires_at_secs))
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn kept(
        &self,
        key: &str,
        now_secs: i64,
    ) -> Result<Option<serde_json::Value>, StateError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(CLICK_PK))
            .key(SORT_KEY, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?
            .item;
        let Some(item) = item else {
            return Ok(None);
        };
        // TTL removes expired items late: an expired one counts as gone.
        let expires = item
            .get(TTL_ATTRIBUTE)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if expires <= now_secs {
            return Ok(None);
        }
        let message = item
            .get("message")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StateError::Malformed("a kept message has no `message`".into()))?;
        serde_json::from_str(message)
            .map(Some)
            .map_err(|e| StateError::Malformed(format!("a kept message is not JSON ({e})")))
    }
}

#[async_trait]
impl StateStore for DynamoStateStore {
    async fn load(
        &self,
        app: &AppId,
        lookback: Lookback,
        replay_from_nanos: Option<i128>,
    ) -> Result<Snapshot, StateError> {
        let mut snapshot = Snapshot::default();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk >= :delivered")
                .expression_attribute_values(":pk", s(app_pk(app)))
                .expression_attribute_values(":delivered", s(DELIVERED_PREFIX))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(QUERY_PAGE)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items() {
                let Some(sk) = item.get(SORT_KEY).and_then(|v| v.as_s().ok()) else {
                    continue;
                };
                if sk == STATE_SK {
                    let mut parsed = parse_state(item)?;
                    parsed.replay_from_nanos = replay_from_nanos;
                    snapshot.state = Some(parsed);
                    continue;
                }
                if sk == LEASE_SK {
                    snapshot.lease = parse_lease(item);
                    continue;
                }
                if sk == REQUESTS_SK {
                    snapshot.requests = Some(RequestTally {
                        hour_start_secs: number(item, "hour")
                            .and_then(|h| i64::try_from(h).ok())
                            .unwrap_or_default(),
                        count: number(item, "count")
                            .and_then(|c| u32::try_from(c).ok())
                            .unwrap_or_default(),
                    });
                    continue;
                }
                if let Some(review_id) = sk.strip_prefix(REPLY_PREFIX) {
                    if let Some(answer) = parse_answer(item, lookback) {
                        snapshot.answers.insert(review_id.to_owned(), answer);
                    }
                    continue;
                }
                let destination = sk.strip_prefix(DESTINATION_PREFIX);
                let delivered = sk.strip_prefix(DELIVERED_PREFIX);
                if destination.is_none() && delivered.is_none() {
                    continue;
                }
                // Without a state item there is nothing to compare against; it is written first.
                let Some(state) = snapshot.state.as_mut() else {
                    return Err(StateError::Malformed(
                        "delivery records exist but the state item is missing".into(),
                    ));
                };
                if let Some(destination) = destination {
                    let since = number(item, "since_ns").ok_or_else(|| {
                        StateError::Malformed(format!("`since_ns` of `{sk}` is not a number"))
                    })?;
                    state
                        .destinations_since
                        .insert(destination.to_owned(), since);
                    if let Some(failing) = number(item, FAILING_SINCE) {
                        state.failing_since.insert(destination.to_owned(), failing);
                    }
                    continue;
                }
                let key = delivered
                    .and_then(ReviewKey::decode)
                    .ok_or_else(|| StateError::Malformed(format!("sort key `{sk}`")))?;
                if key.nanos < state.window_start(lookback) {
                    return Ok(snapshot);
                }
                // Expired: TTL removes it some time later; it no longer counts.
                if number(item, TTL_ATTRIBUTE)
                    .and_then(|secs| i64::try_from(secs).ok())
                    .is_some_and(|secs| lookback.expired(secs))
                {
                    continue;
                }
                let (to, version) = parse_delivered(item, &key);
                // Recorded before edits were noticed: no version, the review counts as unchanged.
                if let Some(version) = version {
                    state.note_version(&Watermark {
                        key: key.clone(),
                        created_date: String::new(),
                        version: Some(version),
                    });
                }
                state.delivered.insert(key.id, to);
            }
            match page.last_evaluated_key {
                Some(key) => start_key = Some(key),
                None => return Ok(snapshot),
            }
        }
    }

    async fn create(&self, app: &AppId, state: &AppState) -> Result<AppState, StateError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(app_pk(app)))
            .item(SORT_KEY, s(STATE_SK))
            .item("baseline_ns", n(state.baseline_nanos))
            .item("updated_at", s(now_text()))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(created) = state.created_nanos {
            put = put.item(CREATED, n(created));
        }
        let result = put.send().await;
        match result {
            Ok(_) => Ok(state.clone()),
            // Another run created it first: use theirs.
            Err(err) if condition_failed(&err) => {
                let everything = Lookback {
                    overlap_hours: 0,
                    retention_days: 0,
                    now_nanos: 0,
                };
                self.load(app, everything, None)
                    .await?
                    .state
                    .ok_or_else(|| {
                        StateError::Malformed("the state item vanished after a conflict".into())
                    })
            }
            Err(err) => Err(store_error(err)),
        }
    }

    async fn note_answer(
        &self,
        app: &AppId,
        review_id: &str,
        answer: Option<&NotedAnswer>,
        keep_until_secs: i64,
    ) -> Result<(), StateError> {
        let sk = format!("{REPLY_PREFIX}{review_id}");
        let Some(answer) = answer else {
            return self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, s(app_pk(app)))
                .key(SORT_KEY, s(sk))
                .send()
                .await
                .map(|_| ())
                .map_err(store_error);
        };
        let answered_at = OffsetDateTime::from_unix_timestamp_nanos(answer.answered_nanos)
            .ok()
            .and_then(|at| at.format(&Rfc3339).ok())
            .unwrap_or_default();
        // Replaces an earlier answer's note: the store keeps one answer per review.
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(app_pk(app)))
            .item(SORT_KEY, s(sk))
            .item("review_id", s(review_id))
            .item("text", s(&answer.text))
            .item("length", n(answer.text.chars().count()))
            .item(DIGEST, s(&answer.digest))
            .item("answered_at", s(answered_at))
            .item("answered_ns", n(answer.answered_nanos))
            .item(TTL_ATTRIBUTE, n(keep_until_secs))
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn record(
        &self,
        app: &AppId,
        delivered: &[Watermark],
        destination: &str,
        keep_until_secs: i64,
    ) -> Result<(), StateError> {
        let pk = app_pk(app);
        let mut items = Vec::with_capacity(delivered.len());
        for review in delivered {
            // Adds the destination to the review's item, unless it is there already (or the
            // item predates destination sets, which means every destination has it).
            let update = Update::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, s(&pk))
                .key(
                    SORT_KEY,
                    s(format!("{DELIVERED_PREFIX}{}", review.key.encode())),
                )
                .update_expression(if review.version.is_some() {
                    "SET review_id = :id, created_date = :date, delivered_at = :now, #ttl = :ttl, \
                     digest = :digest, original_id = :of, rating = :rating ADD #to :to"
                } else {
                    "SET review_id = :id, created_date = :date, delivered_at = :now, #ttl = :ttl \
                     ADD #to :to"
                })
                .condition_expression(
                    "attribute_not_exists(pk) OR (attribute_exists(#to) AND NOT contains(#to, :d))",
                )
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_names("#to", DELIVERED_TO)
                .expression_attribute_values(":id", s(&review.key.id))
                .expression_attribute_values(":date", s(&review.created_date))
                .expression_attribute_values(":now", s(now_text()))
                .expression_attribute_values(":ttl", n(keep_until_secs))
                .expression_attribute_values(
                    ":to",
                    AttributeValue::Ss(vec![destination.to_owned()]),
                )
                .expression_attribute_values(":d", s(destination));
            let update = match &review.version {
                None => update,
                // No rating is stored as 0 (ratings are 1 to 5).
                Some(version) => update
                    .expression_attribute_values(":digest", s(&version.digest))
                    .expression_attribute_values(":of", s(&version.original_id))
                    .expression_attribute_values(":rating", n(version.rating.unwrap_or(0))),
            };
            let update = update
                .build()
                .map_err(|e| StateError::Store(e.to_string()))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        if app.store().edits_move_reviews() {
            for (id, record) in latest_records(delivered) {
                let put = Put::builder()
                    .table_name(&self.table)
                    .item(PARTITION_KEY, s(&pk))
                    .item(SORT_KEY, s(format!("{BY_ID_PREFIX}{id}")))
                    .item(RECORD, s(format!("{DELIVERED_PREFIX}{}", record.encode())))
                    .item(TTL_ATTRIBUTE, n(keep_until_secs))
                    .build()
                    .map_err(|e| StateError::Store(e.to_string()))?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Err(StateError::Conflict)
            }
            Err(err) => Err(store_error(err)),
        }
    }

    async fn find_records(
        &self,
        app: &AppId,
        ids: &[String],
        lookback: Lookback,
    ) -> Result<Vec<FoundRecord>, StateError> {
        if !app.store().edits_move_reviews() || ids.is_empty() {
            return Ok(Vec::new());
        }
        let pk = app_pk(app);
        let alive = |item: &Item| {
            !number(item, TTL_ATTRIBUTE)
                .and_then(|secs| i64::try_from(secs).ok())
                .is_some_and(|secs| lookback.expired(secs))
        };
        let index = self
            .batch_get(&pk, ids.iter().map(|id| format!("{BY_ID_PREFIX}{id}")))
            .await?;
        let records: Vec<String> = index
            .iter()
            .filter(|item| alive(item))
            .filter_map(|item| item.get(RECORD)?.as_s().ok().cloned())
            .collect();
        let mut found = Vec::new();
        for item in self.batch_get(&pk, records.into_iter()).await? {
            let Some(key) = item
                .get(SORT_KEY)
                .and_then(|v| v.as_s().ok())
                .and_then(|sk| sk.strip_prefix(DELIVERED_PREFIX))
                .and_then(ReviewKey::decode)
            else {
                continue;
            };
            if !alive(&item) {
                continue;
            }
            if let (to, Some(version)) = parse_delivered(&item, &key) {
                found.push(FoundRecord { key, version, to });
            }
        }
        Ok(found)
    }

    async fn advance(&self, app: &AppId, to: &Watermark) -> Result<(), StateError> {
        let update = self.watermark_update(app, to);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(update.get_key().clone())
            .set_update_expression(update.get_update_expression().clone())
            .set_condition_expression(update.get_condition_expression().clone())
            .set_expression_attribute_values(update.get_expression_attribute_values().clone())
            .send()
            .await;
        // Refused: already at or past it.
        written(result).map(|_| ())
    }

    async fn count_requests(
        &self,
        app: &AppId,
        hour_start_secs: i64,
        count: u32,
    ) -> Result<(), StateError> {
        // Added to this hour's tally, or starting it over an earlier hour's; a run that finds
        // the tally moved in between tries again.
        for _ in 0..3 {
            let added = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, s(app_pk(app)))
                .key(SORT_KEY, s(REQUESTS_SK))
                .update_expression("ADD #count :c")
                .condition_expression("#hour = :h")
                .expression_attribute_names("#count", "count")
                .expression_attribute_names("#hour", "hour")
                .expression_attribute_values(":c", n(count))
                .expression_attribute_values(":h", n(hour_start_secs))
                .send()
                .await;
            match added {
                Ok(_) => return Ok(()),
                Err(err) if condition_failed(&err) => {}
                Err(err) => return Err(store_error(err)),
            }
            let started = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, s(app_pk(app)))
                .key(SORT_KEY, s(REQUESTS_SK))
                .update_expression("SET #hour = :h, #count = :c, #ttl = :ttl")
                .condition_expression("attribute_not_exists(#hour) OR #hour < :h")
                .expression_attribute_names("#count", "count")
                .expression_attribute_names("#hour", "hour")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":c", n(count))
                .expression_attribute_values(":h", n(hour_start_secs))
                .expression_attribute_values(":ttl", n(hour_start_secs + REQUESTS_KEPT_SECONDS))
                .send()
                .await;
            match started {
                Ok(_) => return Ok(()),
                // A later hour's tally stands: this count belongs to an hour already over.
                Err(err) if condition_failed(&err) => {}
                Err(err) => return Err(store_error(err)),
            }
        }
        Ok(())
    }

    async fn add_destination(
        &self,
        app: &AppId,
        destination: &str,
        since_nanos: i128,
    ) -> Result<(), StateError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(app_pk(app)))
            .item(SORT_KEY, s(format!("{DESTINATION_PREFIX}{destination}")))
            .item("since_ns", n(since_nanos))
            .item("added_at", s(now_text()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        // Refused: noted before, and the first note stands.
        written(result).map(|_| ())
    }

    async fn acquire_lease(
        &self,
        app: &AppId,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
        seen: &Lease,
    ) -> Result<bool, StateError> {
        // Free (never taken, given back, or lapsed), and untouched since `seen` was read.
        let unchanged = match seen.generation {
            Some(_) => "#gen = :seen",
            None => "attribute_not_exists(#gen)",
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(app_pk(app)))
            .key(SORT_KEY, s(LEASE_SK))
            .update_expression(
                "SET holder = :me, lease_until_ms = :until, #ttl = :ttl ADD #gen :one",
            )
            .condition_expression(format!(
                "(attribute_not_exists(lease_until_ms) OR lease_until_ms < :now) AND {unchanged}"
            ))
            .expression_attribute_names("#gen", LEASE_GENERATION)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":me", s(holder))
            .expression_attribute_values(":until", n(until_ms))
            .expression_attribute_values(":ttl", n(until_ms / 1_000 + LEASE_KEPT_SECONDS))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":one", n(1));
        if let Some(generation) = seen.generation {
            request = request.expression_attribute_values(":seen", n(generation));
        }
        written(request.send().await)
    }

    async fn release_lease(&self, app: &AppId, holder: &str) -> Result<(), StateError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(app_pk(app)))
            .key(SORT_KEY, s(LEASE_SK))
            .update_expression("SET lease_until_ms = :zero REMOVE holder ADD #gen :one")
            .condition_expression("holder = :me")
            .expression_attribute_names("#gen", LEASE_GENERATION)
            .expression_attribute_values(":me", s(holder))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        // Refused: expired and taken by another run, theirs now.
        written(result).map(|_| ())
    }

    async fn save_progress(&self, app: &AppId, progress: &Progress) -> Result<(), StateError> {
        let mut set = vec!["#stalls = :stalls"];
        let mut remove = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(app_pk(app)))
            .key(SORT_KEY, s(STATE_SK))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#stops", STOPS)
            .expression_attribute_names("#deepest", DEEPEST)
            .expression_attribute_names("#handled", HANDLED)
            .expression_attribute_names("#stalls", STALLS)
            .expression_attribute_values(":stalls", n(progress.stalls));
        if progress.stops.is_empty() {
            remove.push("#stops");
        } else {
            let stops = progress
                .stops
                .iter()
                .map(|stop| {
                    let mut fields =
                        HashMap::from([("reached".to_owned(), s(stop.reached.encode()))]);
                    if let Some(page) = &stop.page {
                        fields.insert("page".to_owned(), s(page));
                    }
                    AttributeValue::M(fields)
                })
                .collect();
            set.push("#stops = :stops");
            request = request.expression_attribute_values(":stops", AttributeValue::L(stops));
        }
        match &progress.deepest {
            Some(deepest) => {
                set.push("#deepest = :deepest");
                request = request.expression_attribute_values(":deepest", s(deepest.encode()));
            }
            None => remove.push("#deepest"),
        }
        match &progress.handled {
            Some(handled) => {
                set.push("#handled = :handled");
                request = request.expression_attribute_values(":handled", s(handled.encode()));
            }
            None => remove.push("#handled"),
        }
        request = request
            .expression_attribute_names("#rescan", RESCAN_FROM)
            .expression_attribute_names("#cuts", RESCAN_CUTS);
        if progress.rescan_cuts == 0 {
            remove.push("#cuts");
        } else {
            set.push("#cuts = :cuts");
            request = request.expression_attribute_values(":cuts", n(progress.rescan_cuts));
        }
        match progress.rescan_from {
            Some(from) => {
                set.push("#rescan = :rescan");
                request = request.expression_attribute_values(":rescan", n(from));
            }
            None => remove.push("#rescan"),
        }
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        request
            .update_expression(update)
            .send()
            .await
            .map_err(store_error)
            .map(|_| ())
    }

    async fn set_failing(
        &self,
        app: &AppId,
        destination: &str,
        since_nanos: Option<i128>,
    ) -> Result<(), StateError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(app_pk(app)))
            .key(SORT_KEY, s(format!("{DESTINATION_PREFIX}{destination}")))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#failing", FAILING_SINCE);
        let request = match since_nanos {
            // The first failure's time stands while the failure goes on.
            Some(since) => request
                .update_expression("SET #failing = if_not_exists(#failing, :since)")
                .expression_attribute_values(":since", n(since)),
            None => request.update_expression("REMOVE #failing"),
        };
        request.send().await.map_err(store_error).map(|_| ())
    }
}
