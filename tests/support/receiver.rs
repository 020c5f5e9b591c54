//! Webhook receiver: accepts POST on any path, records each request and answers with
//! scripted statuses.

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

#[derive(Default)]
struct Data {
    received: Vec<Received>,
    script: VecDeque<u16>,
    fail_from: Option<(usize, u16)>,
    delay: Duration,
    retry_after: Option<String>,
    error_body: Option<String>,
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
        let status = match data.script.pop_front() {
            Some(status) => status,
            None => match data.fail_from {
                Some((from, status)) if number >= from => status,
                _ => 200,
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
        (status, data.delay, retry_after, data.error_body.clone())
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
