//! A Slack double for the Reply button: the Web API's `views.open` and `views.update` (the bot
//! token checked on each call; a trigger id accepted once, within the 3 seconds Slack gives it),
//! and the `response_url`s a click carries (30 minutes, 5 uses; a message within Slack's limits).
//! Also signs interaction payloads as Slack does, and wraps them in Function URL events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::server::BackgroundServer;

pub const BOT_TOKEN: &str = "xoxb-1111-2222-T0K3NSLACKBOTXYZ";
pub const SIGNING_SECRET: &str = "5ecret-signing-8f742231b10e8888abcd99";
pub const TEAM: &str = "T0TEAM01";
pub const USER: &str = "U0ANSWER1";

/// How long Slack accepts a trigger id.
const TRIGGER_LIFETIME: Duration = Duration::from_secs(3);
/// How many times a `response_url` may be used.
const RESPONSE_USES: u32 = 5;

#[derive(Default)]
struct Inner {
    /// Trigger id → when it was issued; removed when used.
    triggers: HashMap<String, Instant>,
    /// Every `views.open` accepted: the view as sent.
    opened: Vec<Value>,
    /// Every `views.update` accepted: (view id, view).
    updated: Vec<(String, Value)>,
    /// Every Web API call refused: (method, error).
    refused: Vec<(String, String)>,
    /// Response URL id → uses so far, and whether it has expired.
    response_urls: HashMap<String, (u32, bool)>,
    /// Every post to a response URL Slack took: (id, body).
    responses: Vec<(String, Value)>,
    /// Posts to a response URL refused: (id, why).
    responses_refused: Vec<(String, String)>,
    next_view: u64,
}

#[derive(Clone)]
pub struct SlackDouble {
    inner: Arc<Mutex<Inner>>,
    server: Arc<BackgroundServer>,
}

impl SlackDouble {
    pub fn start() -> SlackDouble {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let state = Arc::clone(&inner);
        let server = BackgroundServer::spawn("slack", |_| {
            Router::new()
                .route("/api/{method}", post(web_api))
                .route("/actions/{id}", post(response_url))
                .with_state(state)
        });
        SlackDouble {
            inner,
            server: Arc::new(server),
        }
    }

    /// The value for `SLACK_API_URL`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.server.base_url())
    }

    /// A fresh trigger id, as a click gives one.
    pub fn trigger(&self) -> String {
        let mut inner = self.inner.lock().unwrap();
        let id = format!(
            "{}.{}.{:032x}",
            398_738_663_015u64 + inner.triggers.len() as u64,
            47_445_629_121u64,
            fastrand::u128(..)
        );
        inner.triggers.insert(id.clone(), Instant::now());
        id
    }

    /// A trigger id issued `age` ago.
    pub fn old_trigger(&self, age: Duration) -> String {
        let id = self.trigger();
        let mut inner = self.inner.lock().unwrap();
        inner
            .triggers
            .insert(id.clone(), Instant::now().checked_sub(age).unwrap());
        id
    }

    /// A fresh `response_url` on this double (the endpoint accepts Slack's API origin).
    pub fn response_url(&self) -> String {
        let id = format!("{:016x}", fastrand::u64(..));
        self.inner
            .lock()
            .unwrap()
            .response_urls
            .insert(id.clone(), (0, false));
        format!("{}/actions/{id}", self.server.base_url())
    }

    /// Makes `url` expire, as Slack does 30 minutes after the click.
    pub fn expire(&self, url: &str) {
        let id = url.rsplit('/').next().unwrap_or_default().to_owned();
        if let Some(entry) = self.inner.lock().unwrap().response_urls.get_mut(&id) {
            entry.1 = true;
        }
    }

    pub fn opened(&self) -> Vec<Value> {
        self.inner.lock().unwrap().opened.clone()
    }

    pub fn updated(&self) -> Vec<(String, Value)> {
        self.inner.lock().unwrap().updated.clone()
    }

    pub fn refused(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().refused.clone()
    }

    /// Every post taken at `url`.
    pub fn responses(&self, url: &str) -> Vec<Value> {
        let id = url.rsplit('/').next().unwrap_or_default();
        self.inner
            .lock()
            .unwrap()
            .responses
            .iter()
            .filter(|(at, _)| at == id)
            .map(|(_, body)| body.clone())
            .collect()
    }

    pub fn all_responses(&self) -> Vec<Value> {
        let inner = self.inner.lock().unwrap();
        inner.responses.iter().map(|(_, b)| b.clone()).collect()
    }

    pub fn responses_refused(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().responses_refused.clone()
    }

    /// Waits until `check` holds for the double, polling; panics after `timeout`.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&SlackDouble) -> bool,
    ) {
        let until = Instant::now() + timeout;
        while !check(self) {
            assert!(
                Instant::now() < until,
                "Slack double: {what} did not happen within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn slack_error(inner: &mut Inner, method: &str, error: &str) -> Response {
    inner.refused.push((method.to_owned(), error.to_owned()));
    axum::Json(json!({"ok": false, "error": error})).into_response()
}

/// Slack's limits on a modal, as `views.open` and `views.update` check them.
fn modal_problem(view: &Value) -> Option<&'static str> {
    let blocks = view["blocks"].as_array()?;
    let title = view["title"]["text"].as_str().unwrap_or_default();
    let metadata = view["private_metadata"].as_str().unwrap_or_default();
    let bad_input = blocks.iter().any(|block| {
        block["type"] == "input"
            && (block["element"]["max_length"]
                .as_u64()
                .is_some_and(|m| m > 3_000)
                || block["element"]["initial_value"]
                    .as_str()
                    .is_some_and(|v| v.chars().count() > 3_000))
    });
    let long_section = blocks.iter().any(|block| {
        block["text"]["text"]
            .as_str()
            .is_some_and(|t| t.chars().count() > 3_000)
    });
    (view["type"] != "modal"
        || title.is_empty()
        || title.chars().count() > 24
        || blocks.is_empty()
        || blocks.len() > 100
        || metadata.chars().count() > 3_000
        || bad_input
        || long_section
        || view.get("id").is_some()
        || view.get("hash").is_some())
    .then_some("invalid_arguments")
}

async fn web_api(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = inner.lock().unwrap();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        None => return slack_error(&mut inner, &method, "not_authed"),
        Some(token) if token != BOT_TOKEN => {
            return slack_error(&mut inner, &method, "invalid_auth");
        }
        Some(_) => {}
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return slack_error(&mut inner, &method, "invalid_json");
    };
    let view = request["view"].clone();
    if let Some(problem) = modal_problem(&view) {
        return slack_error(&mut inner, &method, problem);
    }
    match method.as_str() {
        "views.open" => {
            let trigger = request["trigger_id"].as_str().unwrap_or_default();
            match inner.triggers.remove(trigger) {
                None => return slack_error(&mut inner, &method, "invalid_trigger_id"),
                Some(issued) if issued.elapsed() > TRIGGER_LIFETIME => {
                    return slack_error(&mut inner, &method, "expired_trigger_id");
                }
                Some(_) => {}
            }
            inner.next_view += 1;
            let id = format!("V{:08}", inner.next_view);
            inner.opened.push(view.clone());
            let mut answered = view;
            answered["id"] = id.into();
            answered["hash"] = "1.abc".into();
            axum::Json(json!({"ok": true, "view": answered})).into_response()
        }
        "views.update" => {
            let id = request["view_id"].as_str().unwrap_or_default().to_owned();
            let known = id.starts_with('V')
                && id[1..]
                    .parse::<u64>()
                    .is_ok_and(|n| n >= 1 && n <= inner.next_view);
            if !known {
                return slack_error(&mut inner, &method, "not_found");
            }
            inner.updated.push((id.clone(), view.clone()));
            let mut answered = view;
            answered["id"] = id.into();
            axum::Json(json!({"ok": true, "view": answered})).into_response()
        }
        _ => slack_error(&mut inner, &method, "unknown_method"),
    }
}

async fn response_url(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut inner = inner.lock().unwrap();
    let refuse = |inner: &mut Inner, status: StatusCode, why: &str| {
        inner.responses_refused.push((id.clone(), why.to_owned()));
        (status, why.to_owned()).into_response()
    };
    let Some(&(uses, expired)) = inner.response_urls.get(&id) else {
        return refuse(&mut inner, StatusCode::NOT_FOUND, "no_such_url");
    };
    if expired {
        return refuse(&mut inner, StatusCode::NOT_FOUND, "expired_url");
    }
    if uses >= RESPONSE_USES {
        return refuse(&mut inner, StatusCode::NOT_FOUND, "used_url");
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return refuse(&mut inner, StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let blocks = message["blocks"].as_array().map_or(0, Vec::len);
    let text_ok = message["text"].is_string() || blocks > 0;
    if blocks > 50 || !text_ok {
        return refuse(&mut inner, StatusCode::BAD_REQUEST, "invalid_blocks");
    }
    inner.response_urls.insert(id.clone(), (uses + 1, false));
    inner.responses.push((id, message));
    (StatusCode::OK, "ok").into_response()
}

/// Slack's signature of `body` sent at `timestamp`: `v0=` and the hex HMAC-SHA256 of
/// `v0:{timestamp}:{body}` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("v0:{timestamp}:").into_bytes();
    signed.extend_from_slice(body);
    let tag = hmac::sign(&key, &signed);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

/// The form body Slack posts: `payload=<the interaction's JSON>`.
pub fn form(payload: &Value) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
        .into_bytes()
}

/// A Function URL event (payload format 2.0) for a POST of `body` with `headers`, base64-encoded
/// as Function URLs deliver form bodies.
pub fn function_url_event(body: &[u8], headers: &[(&str, String)]) -> Value {
    let mut all = serde_json::Map::new();
    all.insert(
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    );
    all.insert(
        "user-agent".into(),
        "Slackbot 1.0 (+https://api.slack.com/robots)".into(),
    );
    for (name, value) in headers {
        all.insert(name.to_ascii_lowercase(), value.clone().into());
    }
    let now = time::OffsetDateTime::now_utc();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": all,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz012345",
            "domainName": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "3.91.0.1", "userAgent": "Slackbot 1.0 (+https://api.slack.com/robots)"},
            "requestId": format!("{:032x}", fastrand::u128(..)),
            "routeKey": "$default",
            "stage": "$default",
            "time": "04/Dec/2026:18:00:00 +0000",
            "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
        },
        "body": aws_smithy_types::base64::encode(body),
        "isBase64Encoded": true,
    })
}

/// A signed Function URL event carrying `payload`, sent at `timestamp` (Unix seconds).
pub fn signed_event(payload: &Value, timestamp: i64) -> Value {
    signed_event_with(SIGNING_SECRET, payload, timestamp)
}

/// [`signed_event`] under another signing secret (one regenerated in the Slack app, say).
pub fn signed_event_with(secret: &str, payload: &Value, timestamp: i64) -> Value {
    let body = form(payload);
    function_url_event(
        &body,
        &[
            ("X-Slack-Request-Timestamp", timestamp.to_string()),
            ("X-Slack-Signature", sign(secret, timestamp, &body)),
        ],
    )
}

/// The secret's `slack_app` for this double.
pub fn slack_app(allowed_users: Option<&[&str]>) -> Value {
    let mut app = json!({
        "signing_secret": SIGNING_SECRET,
        "bot_token": BOT_TOKEN,
        "allowed_team_ids": [TEAM],
    });
    if let Some(users) = allowed_users {
        app["allowed_user_ids"] = json!(users);
    }
    app
}

/// A click on the Reply button whose value is `value`, in `message`.
pub fn click(value: &str, trigger_id: &str, response_url: &str, message: &Value) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": USER, "username": "ana", "name": "ana", "team_id": TEAM},
        "api_app_id": "A0REPLYAPP",
        "token": "verification-token-unused",
        "container": {"type": "message", "message_ts": "1764864000.000100", "channel_id": "C0REVIEWS", "is_ephemeral": false},
        "trigger_id": trigger_id,
        "team": {"id": TEAM, "domain": "example"},
        "channel": {"id": "C0REVIEWS", "name": "reviews"},
        "message": message,
        "response_url": response_url,
        "actions": [{"action_id": "reply", "block_id": "b1", "text": {"type": "plain_text", "text": "Reply"}, "value": value, "type": "button", "action_ts": "1764864001.000200"}],
    })
}

/// The modal `opened` submitted with `text`.
pub fn submission(opened: &Value, text: &str) -> Value {
    let block = opened["blocks"]
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "input"))
        .map(|b| b["block_id"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    json!({
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "example"},
        "user": {"id": USER, "username": "ana", "name": "ana", "team_id": TEAM},
        "api_app_id": "A0REPLYAPP",
        "token": "verification-token-unused",
        "trigger_id": "398738663099.47445629121.0000",
        "view": {
            "id": "V00000001",
            "type": "modal",
            "callback_id": opened["callback_id"],
            "private_metadata": opened["private_metadata"],
            "state": {"values": {block: {"text": {"type": "plain_text_input", "value": text}}}},
        },
    })
}
