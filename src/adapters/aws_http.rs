//! The AWS SDK's HTTP client: the project's one reqwest client (see [`super::http_client`]).
//!
//! Why not the SDK's own: cold start. The SDK's rustls client takes trusted roots only as PEM and
//! decodes every one of them when it builds its connector, at the first AWS request. The reqwest
//! client is built at start from the roots as DER, so AWS requests share its TLS configuration,
//! connection pool and proxy settings (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, read
//! from the environment when it is built, as the SDK's client reads them).
//!
//! Each request is sent as the SDK made it: method, URI, headers (the SDK's User-Agent included;
//! reqwest adds its own only to a request without one) and body. Redirects are never followed:
//! a 3xx answer reaches the SDK as it does from its own client. The answer's body is read whole
//! before the SDK sees it (DynamoDB answers are at most about 1 MB).
//!
//! Timeouts: the SDK's read timeout, when it sets one, bounds the whole request (connection,
//! answer and body) with reqwest's per-request timeout; the SDK's own client bounds the time to
//! the answer's head. reqwest has no per-request connection timeout, so connections get the
//! shared client's, whatever the SDK asks for.
//!
//! Errors are classified as the SDK's own client classifies them, so its retries are the same:
//! timeouts, I/O (refused, reset or closed connections, name resolution, TLS) and others. No
//! error carries the request's URL.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::time::Duration;

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;

/// The SDK's HTTP client, sending every request through `client`.
pub fn sdk_http_client(client: reqwest::Client) -> SharedHttpClient {
    SharedHttpClient::new(ReqwestHttpClient { client })
}

/// The SDK asks it for a connector per request, with that request's timeouts.
#[derive(Clone)]
struct ReqwestHttpClient {
    client: reqwest::Client,
}

impl fmt::Debug for ReqwestHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReqwestHttpClient")
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ReqwestConnector::new(self.client.clone(), settings))
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new(
            "reqwest",
            Some(Cow::Borrowed("0.13")),
        ))
    }
}

/// Sends requests through the shared client, each bounded by `read_timeout` if there is one.
struct ReqwestConnector {
    client: reqwest::Client,
    read_timeout: Option<Duration>,
}

impl fmt::Debug for ReqwestConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestConnector")
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match self.to_reqwest(request) {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(err)),
        };
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let mut response = client.execute(request).await.map_err(connector_error)?;
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            let body = response.bytes().await.map_err(connector_error)?;
            let mut answer = http::Response::new(SdkBody::from(body));
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            HttpResponse::try_from(answer).map_err(|err| ConnectorError::other(err.into(), None))
        })
    }
}

impl ReqwestConnector {
    fn new(client: reqwest::Client, settings: &HttpConnectorSettings) -> Self {
        Self {
            client,
            read_timeout: settings.read_timeout(),
        }
    }

    /// The SDK's request as reqwest's. Only an in-memory body can be sent: every request of the
    /// SDK operations this project calls has one.
    fn to_reqwest(&self, request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
        let request = request
            .try_into_http1x()
            .map_err(|err| ConnectorError::user(err.into()))?;
        let (parts, body) = request.into_parts();
        let Some(bytes) = body.bytes() else {
            return Err(ConnectorError::user(
                "the request's body is a stream, which this HTTP client cannot send".into(),
            ));
        };
        let mut request =
            reqwest::Request::try_from(http::Request::from_parts(parts, bytes.to_vec()))
                .map_err(|err| ConnectorError::user(err.without_url().into()))?;
        *request.timeout_mut() = self.read_timeout;
        Ok(request)
    }
}

/// A reqwest error as the SDK's own client would classify the same failure (see
/// `aws-smithy-http-client`'s `downcast_error`): timeouts, then connection failures as I/O, then
/// hyper's own kinds, then any I/O error in the chain. Without the URL.
fn connector_error(err: reqwest::Error) -> ConnectorError {
    let err = err.without_url();
    if err.is_timeout() {
        return ConnectorError::timeout(err.into());
    }
    if err.is_builder() {
        return ConnectorError::user(err.into());
    }
    if err.is_connect() {
        return ConnectorError::io(err.into());
    }
    if let Some(hyper_err) = find_source::<hyper::Error>(&err) {
        if hyper_err.is_timeout() {
            return ConnectorError::timeout(err.into());
        }
        if hyper_err.is_user() {
            return ConnectorError::user(err.into());
        }
        if hyper_err.is_closed()
            || hyper_err.is_canceled()
            || find_source::<std::io::Error>(hyper_err).is_some()
        {
            return ConnectorError::io(err.into());
        }
        if hyper_err.is_incomplete_message() {
            return ConnectorError::other(err.into(), Some(ErrorKind::TransientError));
        }
        return ConnectorError::other(err.into(), None);
    }
    if find_source::<std::io::Error>(&err).is_some() {
        return ConnectorError::io(err.into());
    }
    ConnectorError::other(err.into(), None)
}

/// The first error of type `E` in `err`'s chain, `err` included.
fn find_source<'a, E: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        next = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::http_client;
    use crate::adapters::trust::TrustRoots;
    use aws_smithy_types::error::display::DisplayErrorContext;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::mpsc;

    /// What [`ReqwestHttpClient::http_connector`] gives the SDK.
    fn connector(settings: HttpConnectorSettings) -> SharedHttpConnector {
        let client = http_client(&TrustRoots::default()).unwrap();
        SharedHttpConnector::new(ReqwestConnector::new(client, &settings))
    }

    fn sdk_request(method: &str, url: &str, body: SdkBody) -> HttpRequest {
        let request = http::Request::builder()
            .method(method)
            .uri(url)
            .header("user-agent", "aws-sdk-rust/test os/linux")
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .header("content-type", "application/x-amz-json-1.0")
            .body(body)
            .unwrap();
        HttpRequest::try_from(request).unwrap()
    }

    /// A server on 127.0.0.1 that reads one request (head and `Content-Length` body), sends it
    /// back over `seen`, then answers `answer` and closes.
    fn one_shot_server(answer: &'static str) -> (SocketAddr, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (seen, received) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if data.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            seen.send(String::from_utf8(data).unwrap()).unwrap();
            stream.write_all(answer.as_bytes()).unwrap();
        });
        (address, received)
    }

    #[tokio::test]
    async fn the_request_and_the_answer_pass_through_unchanged() {
        let (address, seen) = one_shot_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
             x-amzn-requestid: R1\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"Item\":{}}",
        );
        let body = r#"{"TableName":"t","Key":{"pk":{"S":"a"}}}"#;
        let response = connector(HttpConnectorSettings::default())
            .call(sdk_request(
                "POST",
                &format!("http://{address}/"),
                SdkBody::from(body),
            ))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers().get("x-amzn-requestid"), Some("R1"));
        assert_eq!(
            response.headers().get("content-type"),
            Some("application/x-amz-json-1.0")
        );
        assert_eq!(response.body().bytes(), Some(&b"{\"Item\":{}}"[..]));

        let request = seen.recv().unwrap();
        let lower = request.to_ascii_lowercase();
        assert!(request.starts_with("POST / HTTP/1.1\r\n"), "{request}");
        // The SDK's User-Agent, not the client's default.
        assert!(
            lower.contains("\r\nuser-agent: aws-sdk-rust/test os/linux\r\n"),
            "{request}"
        );
        assert!(!lower.contains("review-relay/"), "{request}");
        assert!(
            lower.contains("\r\nx-amz-target: dynamodb_20120810.getitem\r\n"),
            "{request}"
        );
        assert!(
            lower.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{request}"
        );
        assert!(request.ends_with(&format!("\r\n\r\n{body}")), "{request}");
    }

    #[tokio::test]
    async fn an_error_status_is_an_answer_and_a_redirect_is_not_followed() {
        for (status, answer) in [
            (
                400,
                "HTTP/1.1 400 Bad Request\r\ncontent-length: 26\r\nconnection: close\r\n\r\n\
                 {\"__type\":\"ValidationErr\"}",
            ),
            (
                500,
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\
                 connection: close\r\n\r\n",
            ),
            (
                307,
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:1/elsewhere\r\n\
                 content-length: 0\r\nconnection: close\r\n\r\n",
            ),
        ] {
            let (address, seen) = one_shot_server(answer);
            let response = connector(HttpConnectorSettings::default())
                .call(sdk_request(
                    "GET",
                    &format!("http://{address}/x"),
                    SdkBody::empty(),
                ))
                .await
                .unwrap_or_else(|e| panic!("{status}: {}", DisplayErrorContext(&e)));
            assert_eq!(response.status().as_u16(), status);
            assert!(seen.recv().unwrap().starts_with("GET /x HTTP/1.1\r\n"));
            if status == 400 {
                assert_eq!(
                    response.body().bytes(),
                    Some(&b"{\"__type\":\"ValidationErr\"}"[..])
                );
            }
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_without_the_url() {
        // A port nobody listens on: bound, then closed.
        let address = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let url = format!("http://{address}/secret-path?token=abc");
        let err = connector(HttpConnectorSettings::default())
            .call(sdk_request("POST", &url, SdkBody::from("{}")))
            .await
            .unwrap_err();
        assert!(err.is_io(), "{err:?}");
        let text = DisplayErrorContext(&err).to_string();
        assert!(text.contains("Connection refused"), "{text}");
        // Neither in the words nor in the debug form the SDK's error context appends.
        assert!(!text.contains("secret-path"), "{text}");
        assert!(!text.contains("token=abc"), "{text}");
    }

    #[tokio::test]
    async fn a_server_silent_past_the_read_timeout_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (done, wait) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            // Accepts, reads, never answers; holds the connection until the test ends.
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = wait.recv();
        });
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_millis(200))
            .build();
        let started = std::time::Instant::now();
        let err = connector(settings)
            .call(sdk_request(
                "POST",
                &format!("http://{address}/secret-path"),
                SdkBody::from("{}"),
            ))
            .await
            .unwrap_err();
        drop(done);
        assert!(err.is_timeout(), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        let text = DisplayErrorContext(&err).to_string();
        assert!(!text.contains("secret-path"), "{text}");
    }

    #[tokio::test]
    async fn a_streaming_body_is_refused_with_a_clear_error() {
        // An SDK body made from another body has no bytes in memory.
        let stream = SdkBody::from_body_1_x(SdkBody::from("{}"));
        assert!(stream.bytes().is_none());
        let err = connector(HttpConnectorSettings::default())
            .call(sdk_request("POST", "http://127.0.0.1:1/", stream))
            .await
            .unwrap_err();
        assert!(err.is_user(), "{err:?}");
        let text = DisplayErrorContext(&err).to_string();
        assert!(text.contains("body is a stream"), "{text}");
    }
}
