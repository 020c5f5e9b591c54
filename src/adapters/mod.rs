//! One adapter per outside service.

pub mod appstore;
pub mod aws_http;
pub mod credentials;
pub mod dry_run;
pub mod dynamodb;
pub mod googleplay;
pub mod lambda_invoke;
pub mod metrics;
pub mod retry;
pub mod sdk_error;
pub mod secrets_manager;
pub mod slack;
pub mod trust;
pub mod webhooks;

use std::error::Error as _;
use std::time::Duration;

use trust::TrustRoots;

/// The one HTTP client, for App Store Connect, webhooks and the AWS SDK (see [`aws_http`]), built
/// once per cold start; it trusts `roots` alone (see [`trust`]). Redirects are never followed: the
/// token must not travel to another origin, a webhook that redirects is misconfigured, and the
/// SDK handles a redirect answer itself.
pub fn http_client(roots: &TrustRoots) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .tls_certs_only(roots.reqwest_certificates()?)
        .user_agent(concat!("review-relay/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        // Each request sets its own overall timeout (an AWS request, the SDK's read timeout if any).
        .connect_timeout(Duration::from_secs(5))
        .build()
}

/// An answer read whole: its status, headers and body.
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: hyper::body::Bytes,
}

/// `request` as a store's API takes it: the bearer token, a timeout, `Accept: application/json`.
pub fn with_bearer(
    request: reqwest::RequestBuilder,
    token: &secrecy::SecretString,
    timeout: Duration,
) -> reqwest::RequestBuilder {
    use secrecy::ExposeSecret;
    request
        .timeout(timeout)
        .bearer_auth(token.expose_secret())
        .header(reqwest::header::ACCEPT, "application/json")
}

/// Sends `request` and reads the whole answer; a failure to send or to read the body is one
/// transport error, which the caller retries as its store allows.
pub async fn send_and_read(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// A transport error in words, without the request URL that reqwest prints by default
/// (a webhook URL is a credential).
pub fn describe_http_error(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else {
        err.to_string()
    };
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The first line of a response body, shortened, for error messages.
pub fn first_line(body: &str) -> String {
    let line = body
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(empty body)");
    let mut short: String = line.chars().take(200).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}
