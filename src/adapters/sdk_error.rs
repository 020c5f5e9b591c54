//! An AWS SDK error as the relay shows it: its kind, HTTP status and request id, never a body.
//!
//! The SDK's own `Display`/`DisplayErrorContext` walk the error's sources, and a response that
//! failed to parse carries the parser's complaint about the body: for GetSecretValue that is the
//! secret itself. So nothing here reads a body, an error message or a parser error.

use std::error::Error;
use std::fmt;

// aws-types' trait, which every SDK crate re-exports: the request id from the response headers.
use aws_sdk_secretsmanager::operation::RequestId;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What failed, in words that carry nothing the service or the network sent but codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkFailure {
    kind: Kind,
    status: Option<u16>,
    request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The service answered with an error code (`ResourceNotFoundException`).
    Service(String),
    /// The service answered with an error but no code the relay can show.
    ServiceUncoded,
    Timeout,
    /// The HTTP client's own failure (no answer), already without the URL.
    Transport(String),
    /// Not sent: credentials, the endpoint or signing failed before the request left.
    NotSent,
    NotBuilt,
    Unparsed,
    Unknown,
}

impl SdkFailure {
    pub fn of<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Self {
        let kind = match err {
            SdkError::ServiceError(service) => match service.err().code() {
                Some(code) if is_identifier(code, 100) => Kind::Service(code.to_owned()),
                // A success the SDK could not read is reported as an unhandled service error.
                _ if service.raw().status().is_success() => Kind::Unparsed,
                _ => Kind::ServiceUncoded,
            },
            SdkError::TimeoutError(_) => Kind::Timeout,
            SdkError::DispatchFailure(dispatch) if dispatch.is_timeout() => Kind::Timeout,
            SdkError::DispatchFailure(dispatch) => dispatch
                .as_connector_error()
                .and_then(Error::source)
                .and_then(|source| source.downcast_ref::<reqwest::Error>())
                .map_or(Kind::NotSent, |transport| Kind::Transport(chain(transport))),
            SdkError::ConstructionFailure(_) => Kind::NotBuilt,
            SdkError::ResponseError(_) => Kind::Unparsed,
            _ => Kind::Unknown,
        };
        Self {
            kind,
            status: err.raw_response().map(|raw| raw.status().as_u16()),
            request_id: err
                .request_id()
                .filter(|id| is_identifier(id, 200))
                .map(str::to_owned),
        }
    }

    /// The service's error code, when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            Kind::Service(code) => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for SdkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Service(code) => f.write_str(code)?,
            Kind::ServiceUncoded => f.write_str("service error")?,
            Kind::Timeout => f.write_str("timeout")?,
            Kind::Transport(cause) => write!(f, "dispatch failure: {cause}")?,
            Kind::NotSent => f.write_str(
                "dispatch failure: not sent (AWS credentials, the endpoint or signing failed)",
            )?,
            Kind::NotBuilt => f.write_str("the request could not be built")?,
            Kind::Unparsed => f.write_str("response could not be parsed")?,
            Kind::Unknown => f.write_str("unknown SDK error")?,
        }
        match (self.status, &self.request_id) {
            (Some(status), Some(id)) => write!(f, " (HTTP {status}, request id {id})"),
            (Some(status), None) => write!(f, " (HTTP {status})"),
            (None, Some(id)) => write!(f, " (request id {id})"),
            (None, None) => Ok(()),
        }
    }
}

/// A code or id as services write them; anything else (a body where a header should be) is dropped.
fn is_identifier(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:#/".contains(c))
}

/// The transport error and its causes. Our HTTP client removed the URL (see `aws_http`); no
/// response was received, so there is no body to show.
fn chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    const MARKER: &str = "SECRET-MARKER";

    fn response(status: u16, body: &str) -> HttpResponse {
        let mut response = HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(body.to_owned()),
        );
        response
            .headers_mut()
            .insert("x-amzn-requestid", "4f1c-req-42");
        response
    }

    fn shown(err: &SdkError<GetSecretValueError, HttpResponse>) -> String {
        SdkFailure::of(err).to_string()
    }

    #[test]
    fn a_service_error_shows_its_code_status_and_request_id_not_its_message_or_body() {
        let body = format!(r#"{{"__type":"ResourceNotFoundException","message":"{MARKER}"}}"#);
        let source = GetSecretValueError::generic(
            ErrorMetadata::builder()
                .code("ResourceNotFoundException")
                .message(MARKER)
                .build(),
        );
        let err = SdkError::service_error(source, response(400, &body));
        let failure = SdkFailure::of(&err);
        assert_eq!(failure.code(), Some("ResourceNotFoundException"));
        assert_eq!(
            failure.to_string(),
            "ResourceNotFoundException (HTTP 400, request id 4f1c-req-42)"
        );
    }

    #[test]
    fn a_response_that_did_not_parse_shows_neither_the_body_nor_the_parser_error() {
        let body = format!(r#"{{"SecretString":"{{\"key\":\"{MARKER}"#);
        let parser = format!("expected `}}` at {body}");
        let err = SdkError::response_error(parser, response(200, &body));
        let text = shown(&err);
        assert_eq!(
            text,
            "response could not be parsed (HTTP 200, request id 4f1c-req-42)"
        );
        assert!(!text.contains(MARKER));
    }

    #[test]
    fn a_success_that_did_not_parse_is_not_called_a_service_error() {
        // What the SDK makes of a GetSecretValue answer cut off inside `SecretString`.
        let body = format!(r#"{{"SecretString":"{{\"key\":\"{MARKER}"#);
        let source = GetSecretValueError::unhandled(format!("unexpected end of {body}"));
        let err = SdkError::service_error(source, response(200, &body));
        assert_eq!(
            shown(&err),
            "response could not be parsed (HTTP 200, request id 4f1c-req-42)"
        );
    }

    #[test]
    fn a_code_that_is_not_a_code_is_not_shown() {
        let source = GetSecretValueError::generic(
            ErrorMetadata::builder()
                .code(format!("{{\"key\": \"{MARKER}\"}}"))
                .build(),
        );
        let err = SdkError::service_error(source, response(500, MARKER));
        let text = shown(&err);
        assert_eq!(text, "service error (HTTP 500, request id 4f1c-req-42)");
    }

    #[test]
    fn failures_before_an_answer_show_their_kind_only() {
        let built: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::construction_failure(MARKER);
        assert_eq!(shown(&built), "the request could not be built");
        let timeout: SdkError<GetSecretValueError, HttpResponse> = SdkError::timeout_error(MARKER);
        assert_eq!(shown(&timeout), "timeout");
        // Not our HTTP client's error (a credentials provider's, say): its text is not shown.
        let not_sent: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other(MARKER.into(), None));
        assert!(shown(&not_sent).starts_with("dispatch failure: not sent"));
        assert!(!shown(&not_sent).contains(MARKER));
    }
}
