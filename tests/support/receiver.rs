//! Webhook receiver: accepts POST on any path, records each request and answers with
//! scripted statuses; under [`Receiver::enforce`] it refuses, as the platform would, a body that
//! breaks a chat platform's documented limits.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use super::server::BackgroundServer;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path including the leading `/` (the marker given to [`Receiver::url`]).
    pub path: String,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body parsed as JSON, if it is JSON.
    pub json: Option<Value>,
    /// Status the receiver answered with.
    pub status: u16,
    /// Whether that status was 2xx (the request was "delivered").
    pub accepted: bool,
    /// When the request arrived (before any [`Receiver::set_delay`] wait).
    pub at: Instant,
}

impl Received {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A chat platform whose documented message limits [`Receiver::enforce`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Slack,
    Discord,
    Teams,
    GoogleChat,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Slack,
        Platform::Discord,
        Platform::Teams,
        Platform::GoogleChat,
    ];
}

#[derive(Default)]
struct Data {
    received: Vec<Received>,
    script: VecDeque<u16>,
    fail_from: Option<(usize, u16)>,
    delay: Duration,
    retry_after: Option<String>,
    error_body: Option<String>,
    enforce: Option<Platform>,
}

/// A running receiver; dropping it stops the server.
pub struct Receiver {
    data: Arc<Mutex<Data>>,
    server: BackgroundServer,
}

impl Receiver {
    pub fn start() -> Receiver {
        let data = Arc::new(Mutex::new(Data::default()));
        let state = Arc::clone(&data);
        let server = BackgroundServer::spawn("receiver", |_| {
            Router::new().fallback(handle).with_state(state)
        });
        Receiver { data, server }
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap()
    }

    /// `http://127.0.0.1:<port>/<marker_path>`: give each webhook its own marker to tell them apart.
    pub fn url(&self, marker_path: &str) -> String {
        format!(
            "{}/{}",
            self.server.base_url(),
            marker_path.trim_start_matches('/')
        )
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Everything received so far (accepted or not), in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.data().received.clone()
    }

    /// Only the requests answered with 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.accepted).collect()
    }

    /// Waits until at least `n` requests have arrived and returns them all;
    /// panics (listing what did arrive) after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            if Instant::now() >= deadline {
                panic!(
                    "receiver: expected {n} requests within {timeout:?}, got {}: {:#?}",
                    received.len(),
                    received
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Statuses for the next requests, in order; after the script runs out, 200 again.
    /// `[200, 200, 500]` makes the third request fail.
    pub fn respond_with(&self, statuses: Vec<u16>) {
        self.data().script = statuses.into();
    }

    /// Every request from the `n`-th (1-based, counting all requests received so far) on
    /// answers `status`. A pending [`respond_with`](Self::respond_with) script goes first.
    pub fn fail_from(&self, n: usize, status: u16) {
        self.data().fail_from = Some((n, status));
    }

    /// Delays every answer by `delay` (the request is recorded on arrival).
    pub fn set_delay(&self, delay: Duration) {
        self.data().delay = delay;
    }

    /// Sends `Retry-After: <value>` with every 429 answer (`None` stops it).
    pub fn set_retry_after(&self, value: Option<&str>) {
        self.data().retry_after = value.map(str::to_string);
    }

    /// The body of every non-2xx answer (`None`: the default `error`).
    pub fn set_error_body(&self, body: Option<&str>) {
        self.data().error_body = body.map(str::to_string);
    }

    /// From now on, a POST whose body breaks `platform`'s documented limits is answered 400 with
    /// a one-line reason (see [`refusal`]), whatever the script says; any other is answered as
    /// before.
    pub fn enforce(&self, platform: Platform) {
        self.data().enforce = Some(platform);
    }

    /// Forgets received requests and resets every switch.
    pub fn reset(&self) {
        *self.data() = Data::default();
    }
}

async fn handle(
    State(data): State<Arc<Mutex<Data>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        let mut response = Response::new(Body::from("only POST"));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        return response;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let arrived = Instant::now();
    let (status, delay, retry_after, error_body) = {
        let mut data = data.lock().unwrap();
        let number = data.received.len() + 1;
        let refused = data
            .enforce
            .and_then(|platform| refusal(platform, body.as_bytes()));
        // A refused body leaves the script for the next request.
        let status = match refused {
            Some(_) => 400,
            None => match data.script.pop_front() {
                Some(status) => status,
                None => match data.fail_from {
                    Some((from, status)) if number >= from => status,
                    _ => 200,
                },
            },
        };
        data.received.push(Received {
            method: method.to_string(),
            path: uri.path().to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            json: serde_json::from_str(&body).ok(),
            body,
            status,
            accepted: (200..300).contains(&status),
            at: arrived,
        });
        let retry_after = if status == 429 {
            data.retry_after.clone()
        } else {
            None
        };
        (
            status,
            data.delay,
            retry_after,
            refused.or_else(|| data.error_body.clone()),
        )
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if let Some(value) = retry_after {
        builder = builder.header("retry-after", value);
    }
    let text = if (200..300).contains(&status) {
        "ok".to_string()
    } else {
        error_body.unwrap_or_else(|| "error".to_string())
    };
    builder
        .body(Body::from(text))
        .expect("valid response parts")
}

// ---- Each platform's documented limits, as its webhook refuses a message. ----

/// Why `platform` would refuse a message with `body`, in one line; `None` when it takes it.
pub fn refusal(platform: Platform, body: &[u8]) -> Option<String> {
    let message: Value = match serde_json::from_slice(body) {
        Ok(message) => message,
        Err(e) => return Some(format!("invalid_payload: the body is not JSON ({e})")),
    };
    let checked = match platform {
        Platform::Slack => slack_limits(&message),
        Platform::Discord => discord_limits(&message),
        Platform::Teams => teams_limits(&message, body.len()),
        Platform::GoogleChat => google_chat_limits(&message, body.len()),
    };
    checked.err()
}

fn length(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn limit(what: &str, got: usize, max: usize) -> Result<(), String> {
    if got > max {
        Err(format!("{what} is {got}, more than {max}"))
    } else {
        Ok(())
    }
}

/// Slack incoming webhooks (Block Kit): `text` or `blocks`; at most 50 blocks; section text
/// 3,000 characters and at most 10 fields of 2,000; header text 150; context at most 10
/// elements of 3,000; actions at most 25 buttons, each labelled in at most 75 characters, with a
/// value of at most 2,000 and an action_id of at most 255; block ids unique; and about 12,000 characters of text over all blocks (`msg_blocks_too_long`).
fn slack_limits(message: &Value) -> Result<(), String> {
    let blocks = items(&message["blocks"]);
    if blocks.is_empty() && length(&message["text"]) == 0 {
        return Err("no_text: neither text nor blocks".into());
    }
    let invalid = |e: String| format!("invalid_blocks: {e}");
    limit("blocks", blocks.len(), 50).map_err(invalid)?;
    let mut total = 0;
    for (i, block) in blocks.iter().enumerate() {
        let mut text = |what: &str, value: &Value, max: usize| {
            total += length(value);
            limit(&format!("blocks[{i}] {what}"), length(value), max).map_err(invalid)
        };
        match block["type"].as_str() {
            Some("section") => {
                text("text", &block["text"]["text"], 3_000)?;
                let fields = items(&block["fields"]);
                limit(&format!("blocks[{i}] fields"), fields.len(), 10).map_err(invalid)?;
                for field in fields {
                    text("field text", &field["text"], 2_000)?;
                }
                if length(&block["text"]["text"]) == 0 && fields.is_empty() {
                    return Err(invalid(format!("blocks[{i}] section has no text")));
                }
            }
            Some("header") => text("header text", &block["text"]["text"], 150)?,
            Some("context") => {
                let elements = items(&block["elements"]);
                limit(&format!("blocks[{i}] elements"), elements.len(), 10).map_err(invalid)?;
                for element in elements {
                    text("context text", &element["text"], 3_000)?;
                }
            }
            Some("divider") => {}
            Some("actions") => {
                let elements = items(&block["elements"]);
                limit(&format!("blocks[{i}] elements"), elements.len(), 25).map_err(invalid)?;
                if elements.is_empty() {
                    return Err(invalid(format!("blocks[{i}] actions has no elements")));
                }
                for element in elements {
                    if element["type"] != "button" || element["text"]["type"] != "plain_text" {
                        return Err(invalid(format!("blocks[{i}] holds an unknown element")));
                    }
                    text("button text", &element["text"]["text"], 75)?;
                    limit(
                        &format!("blocks[{i}] button value"),
                        length(&element["value"]),
                        2_000,
                    )
                    .map_err(invalid)?;
                    limit(
                        &format!("blocks[{i}] button action_id"),
                        length(&element["action_id"]),
                        255,
                    )
                    .map_err(invalid)?;
                }
            }
            other => return Err(invalid(format!("blocks[{i}] has unknown type {other:?}"))),
        }
        if let Some(id) = block["block_id"].as_str()
            && blocks[..i].iter().any(|b| b["block_id"] == id)
        {
            return Err(invalid(format!("blocks[{i}] repeats block_id")));
        }
    }
    limit("text over all blocks", total, 12_000).map_err(|e| format!("msg_blocks_too_long: {e}"))
}

/// Discord execute webhook: `content` 2,000 characters; at most 10 embeds; title 256,
/// description 4,096, at most 25 fields with name 256 and value 1,024, footer text 2,048,
/// author name 256; 6,000 characters over all embeds; not empty.
fn discord_limits(message: &Value) -> Result<(), String> {
    let embeds = items(&message["embeds"]);
    if embeds.is_empty() && length(&message["content"]) == 0 {
        return Err("Cannot send an empty message (code 50006)".into());
    }
    let invalid = |e: String| format!("Invalid Form Body (code 50035): {e}");
    limit("content", length(&message["content"]), 2_000).map_err(invalid)?;
    limit("embeds", embeds.len(), 10).map_err(invalid)?;
    let mut total = 0;
    for (i, embed) in embeds.iter().enumerate() {
        let mut part = |what: &str, value: &Value, max: usize| {
            total += length(value);
            limit(&format!("embeds[{i}].{what}"), length(value), max).map_err(invalid)
        };
        part("title", &embed["title"], 256)?;
        part("description", &embed["description"], 4_096)?;
        part("footer.text", &embed["footer"]["text"], 2_048)?;
        part("author.name", &embed["author"]["name"], 256)?;
        let fields = items(&embed["fields"]);
        for field in fields {
            part("fields.name", &field["name"], 256)?;
            part("fields.value", &field["value"], 1_024)?;
        }
        limit(&format!("embeds[{i}].fields"), fields.len(), 25).map_err(invalid)?;
    }
    limit("characters over all embeds", total, 6_000).map_err(invalid)
}

/// Microsoft Teams Workflows: a body of at most 28 KB (28,000 bytes) whose first attachment is
/// an Adaptive Card.
fn teams_limits(message: &Value, bytes: usize) -> Result<(), String> {
    limit("the request body in bytes", bytes, 28_000)
        .map_err(|e| format!("RequestEntityTooLarge: {e}"))?;
    let attachment = &message["attachments"][0];
    if attachment["contentType"] != "application/vnd.microsoft.card.adaptive" {
        return Err(
            "InvalidRequest: attachments[0].contentType is not application/vnd.microsoft.card.adaptive"
                .into(),
        );
    }
    if attachment["content"]["type"] != "AdaptiveCard" {
        return Err("InvalidRequest: attachments[0].content is not an AdaptiveCard".into());
    }
    Ok(())
}

/// Google Chat incoming webhook: at most 32,000 bytes; `text` or `cardsV2`; every card of
/// several with its own `cardId`.
fn google_chat_limits(message: &Value, bytes: usize) -> Result<(), String> {
    limit("the message in bytes", bytes, 32_000).map_err(|e| format!("INVALID_ARGUMENT: {e}"))?;
    let cards = items(&message["cardsV2"]);
    if cards.is_empty() && length(&message["text"]) == 0 {
        return Err("INVALID_ARGUMENT: the message has neither text nor cardsV2".into());
    }
    let mut ids = std::collections::HashSet::new();
    for (i, card) in cards.iter().enumerate() {
        if card["card"].is_null() {
            return Err(format!("INVALID_ARGUMENT: cardsV2[{i}] has no card"));
        }
        if cards.len() > 1 && !ids.insert(card["cardId"].as_str().unwrap_or_default()) {
            return Err(format!(
                "INVALID_ARGUMENT: cardsV2[{i}] needs a cardId of its own"
            ));
        }
    }
    Ok(())
}
