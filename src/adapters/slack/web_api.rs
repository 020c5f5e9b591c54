//! The two Slack Web API methods the Reply button needs: `views.open` (within the 3 seconds a
//! click's `trigger_id` lives) and `views.update` (filling the modal in afterwards). The bot token
//! goes to `SLACK_API_URL` (default `https://slack.com/api`) only, and never into a log or an
//! error.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::adapters::{describe_http_error, send_and_read, with_bearer};

/// A click's `trigger_id` lives 3 seconds: a slower `views.open` is of no use.
const OPEN_TIMEOUT: Duration = Duration::from_millis(2_500);
const UPDATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why Slack did not open or update the modal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackApiError {
    #[error(
        "Slack refused the bot token (`{0}`): check `slack_app.bot_token` in the secret, and that the Slack app is installed in the workspace"
    )]
    Token(String),
    #[error(
        "the click is too old to open a modal (`{0}`): Slack allows 3 seconds; click Reply again"
    )]
    Expired(String),
    #[error("Slack answered `{0}` to {1}")]
    Refused(String, &'static str),
    #[error("Slack could not be reached for {method}: {cause}")]
    Transport { method: &'static str, cause: String },
    #[error("Slack's answer to {0} is not the Web API's JSON (HTTP {1})")]
    Unreadable(&'static str, u16),
}

#[derive(Deserialize)]
struct WebApiAnswer {
    ok: bool,
    error: Option<String>,
    view: Option<ViewId>,
}

#[derive(Deserialize)]
struct ViewId {
    id: String,
}

pub struct SlackWebApi {
    http: reqwest::Client,
    base_url: String,
}

impl SlackWebApi {
    pub fn new(http: reqwest::Client, base_url: &str) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Opens `view` for the click `trigger_id`; the opened view's id (for `views.update`).
    pub async fn open(
        &self,
        token: &SecretString,
        trigger_id: &str,
        view: &Value,
    ) -> Result<String, SlackApiError> {
        let body = json!({"trigger_id": trigger_id, "view": view});
        self.call("views.open", token, &body, OPEN_TIMEOUT).await
    }

    /// Replaces the view `view_id` with `view`.
    pub async fn update(
        &self,
        token: &SecretString,
        view_id: &str,
        view: &Value,
    ) -> Result<String, SlackApiError> {
        let body = json!({"view_id": view_id, "view": view});
        self.call("views.update", token, &body, UPDATE_TIMEOUT)
            .await
    }

    /// Posts `body` to a click's `response_url` (Slack answers `ok`, or 404 once the URL has
    /// expired: 30 minutes, 5 uses). No token goes with it: the URL is its own credential, and
    /// is never logged.
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), SlackApiError> {
        const METHOD: &str = "the message's response_url";
        let request = self
            .http
            .post(response_url)
            .timeout(UPDATE_TIMEOUT)
            .json(body);
        let answer = send_and_read(request)
            .await
            .map_err(|e| SlackApiError::Transport {
                method: METHOD,
                cause: describe_http_error(e),
            })?;
        if answer.status.is_success() {
            return Ok(());
        }
        let said = crate::adapters::first_line(&String::from_utf8_lossy(&answer.body));
        Err(if answer.status.as_u16() == 404 {
            SlackApiError::Refused(
                format!(
                    "{said}: the message can no longer be updated (Slack allows 30 minutes and 5 updates after a click)"
                ),
                METHOD,
            )
        } else {
            SlackApiError::Refused(format!("HTTP {}: {said}", answer.status.as_u16()), METHOD)
        })
    }

    async fn call(
        &self,
        method: &'static str,
        token: &SecretString,
        body: &Value,
        timeout: Duration,
    ) -> Result<String, SlackApiError> {
        let url = format!("{}/{method}", self.base_url);
        let request = with_bearer(self.http.post(url), token, timeout).json(body);
        let answer = send_and_read(request)
            .await
            .map_err(|e| SlackApiError::Transport {
                method,
                cause: describe_http_error(e),
            })?;
        let status = answer.status.as_u16();
        let read: WebApiAnswer = serde_json::from_slice(&answer.body)
            .map_err(|_| SlackApiError::Unreadable(method, status))?;
        match (read.ok, read.error, read.view) {
            (true, _, Some(view)) => Ok(view.id),
            (true, _, None) => Err(SlackApiError::Unreadable(method, status)),
            (false, error, _) => {
                let error = error.unwrap_or_else(|| "an unnamed error".to_owned());
                Err(match error.as_str() {
                    "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked"
                    | "token_expired" | "missing_scope" => SlackApiError::Token(error),
                    "expired_trigger_id" | "invalid_trigger_id" | "exchanged_trigger_id" => {
                        SlackApiError::Expired(error)
                    }
                    _ => SlackApiError::Refused(error, method),
                })
            }
        }
    }
}

/// [`SlackWebApi`] with the bot token of the secret read for this invocation.
pub struct SlackCalls<'a> {
    pub api: &'a SlackWebApi,
    pub token: &'a SecretString,
    /// Where a `response_url` may point: see [`super::request::ResponseUrls`].
    pub response_urls: &'a super::request::ResponseUrls,
}

#[async_trait::async_trait]
impl crate::ports::SlackViews for SlackCalls<'_> {
    async fn open(&self, trigger_id: &str, view: &Value) -> Result<String, String> {
        self.api
            .open(self.token, trigger_id, view)
            .await
            .map_err(|e| e.to_string())
    }

    async fn update(&self, view_id: &str, view: &Value) -> Result<(), String> {
        self.api
            .update(self.token, view_id, view)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn respond(&self, response_url: &str, body: &Value) -> Result<(), String> {
        if !self.response_urls.allows(response_url) {
            return Err("the response_url is not Slack's".into());
        }
        self.api
            .respond(response_url, body)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-request Web API: answers `reply` and hands back what it received.
    async fn slack(reply: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api", listener.local_addr().unwrap());
        let received = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0; 8192];
            loop {
                let n = socket.read(&mut buffer).await.unwrap();
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|l| l.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= head_end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                reply.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        (url, received)
    }

    #[tokio::test]
    async fn views_open_sends_the_trigger_and_the_view_with_the_bot_token() {
        let (url, received) = slack(r#"{"ok": true, "view": {"id": "V123"}}"#).await;
        let api = SlackWebApi::new(reqwest::Client::new(), &url);
        let token = SecretString::from("xoxb-test-token");
        let view = json!({"type": "modal"});
        assert_eq!(api.open(&token, "trig.1", &view).await, Ok("V123".into()));
        let request = received.await.unwrap();
        assert!(request.starts_with("POST /api/views.open "), "{request}");
        assert!(request.contains("authorization: Bearer xoxb-test-token"));
        assert!(request.contains(r#""trigger_id":"trig.1""#), "{request}");
        assert!(request.contains(r#""view":{"type":"modal"}"#), "{request}");
    }

    #[tokio::test]
    async fn slacks_refusals_say_what_to_do_and_never_show_the_token() {
        let token = SecretString::from("xoxb-secret-marker");
        for (reply, expect) in [
            (
                r#"{"ok": false, "error": "invalid_auth"}"#,
                SlackApiError::Token("invalid_auth".into()),
            ),
            (
                r#"{"ok": false, "error": "expired_trigger_id"}"#,
                SlackApiError::Expired("expired_trigger_id".into()),
            ),
            (
                r#"{"ok": false, "error": "view_too_large"}"#,
                SlackApiError::Refused("view_too_large".into(), "views.open"),
            ),
            ("<html>", SlackApiError::Unreadable("views.open", 200)),
        ] {
            let (url, _) = slack(reply).await;
            let api = SlackWebApi::new(reqwest::Client::new(), &url);
            let error = api.open(&token, "t", &json!({})).await.unwrap_err();
            assert_eq!(error, expect);
            assert!(!error.to_string().contains("xoxb-secret-marker"));
        }
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api", closed.local_addr().unwrap());
        drop(closed);
        let api = SlackWebApi::new(reqwest::Client::new(), &url);
        let error = api.update(&token, "V1", &json!({})).await.unwrap_err();
        assert!(
            matches!(
                error,
                SlackApiError::Transport {
                    method: "views.update",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(!error.to_string().contains("xoxb-secret-marker"));
    }
}
