//! Per-app state in the DynamoDB table (`pk`, `sk` strings; TTL on `expires_at`).
//!
//! Item kinds:
//! - app state: `pk = "app#<app id>"`, `sk = "state"`; `baseline_ns` (N, ns since the epoch),
//!   `wm` (S, the watermark as an order-preserving string: 21-digit ns, `#`, review id),
//!   `wm_created_date`, `wm_review_id`, `updated_at` (for people reading the table).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{AppId, AppState, ReviewKey, Watermark};
use crate::ports::{StateError, StateStore};

pub struct DynamoStateStore {
    client: Client,
    table: String,
}

impl DynamoStateStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

pub fn app_pk(app: &AppId) -> String {
    format!("app#{app}")
}

const STATE_SK: &str = "state";

fn store_error<E, R>(err: SdkError<E, R>) -> StateError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StateError::Store(DisplayErrorContext(err).to_string())
}

fn is_condition_failure<E, R>(err: &SdkError<E, R>, check: impl Fn(&E) -> bool) -> bool {
    err.as_service_error().is_some_and(check)
}

fn now_text() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
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
            Some(Watermark { key, created_date })
        }
    };
    Ok(AppState {
        baseline_nanos,
        watermark,
    })
}

#[async_trait]
impl StateStore for DynamoStateStore {
    async fn load(&self, app: &AppId) -> Result<Option<AppState>, StateError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(app_pk(app)))
            .key("sk", AttributeValue::S(STATE_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        output.item.as_ref().map(parse_state).transpose()
    }

    async fn create(&self, app: &AppId, state: &AppState) -> Result<AppState, StateError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(app_pk(app)))
            .item("sk", AttributeValue::S(STATE_SK.into()))
            .item(
                "baseline_ns",
                AttributeValue::N(state.baseline_nanos.to_string()),
            )
            .item("updated_at", AttributeValue::S(now_text()))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(mark) = &state.watermark {
            request = request
                .item("wm", AttributeValue::S(mark.key.encode()))
                .item(
                    "wm_created_date",
                    AttributeValue::S(mark.created_date.clone()),
                )
                .item("wm_review_id", AttributeValue::S(mark.key.id.clone()));
        }
        match request.send().await {
            Ok(_) => Ok(state.clone()),
            // Another run created it first: use theirs.
            Err(err)
                if is_condition_failure(&err, |e| e.is_conditional_check_failed_exception()) =>
            {
                self.load(app).await?.ok_or_else(|| {
                    StateError::Malformed("the state item vanished after a conflict".into())
                })
            }
            Err(err) => Err(store_error(err)),
        }
    }

    async fn advance(&self, app: &AppId, to: &Watermark) -> Result<(), StateError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(app_pk(app)))
            .key("sk", AttributeValue::S(STATE_SK.into()))
            .update_expression(
                "SET wm = :wm, wm_created_date = :date, wm_review_id = :id, updated_at = :now",
            )
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(wm) OR wm < :wm)")
            .expression_attribute_values(":wm", AttributeValue::S(to.key.encode()))
            .expression_attribute_values(":date", AttributeValue::S(to.created_date.clone()))
            .expression_attribute_values(":id", AttributeValue::S(to.key.id.clone()))
            .expression_attribute_values(":now", AttributeValue::S(now_text()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if is_condition_failure(&err, |e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StateError::Conflict)
            }
            Err(err) => Err(store_error(err)),
        }
    }
}
