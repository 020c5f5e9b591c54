//! The smallest Lambda function on lambda_runtime: it answers every event with the event itself.
//! `make bench` compares review-relay's cold start with this one's (same crate versions, same
//! release profile, same logging set-up).

use lambda_runtime::{Error, LambdaEvent, service_fn, tracing};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
