//! An asynchronous invocation of a Lambda function (`X-Amz-Invocation-Type: Event`): Lambda's
//! Invoke API, signed with SigV4 by the signer and credentials the AWS SDK already builds. The
//! Reply button's function hands itself the slow store calls this way, so Slack is answered
//! within its 3 seconds.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::Value;
use url::Url;

use crate::adapters::{describe_http_error, first_line, send_and_read};
use crate::ports::Jobs;

/// Lambda answers an asynchronous invoke as soon as the event is queued.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct LambdaInvoke {
    http: reqwest::Client,
    /// `…/2015-03-31/functions/{name}/invocations`.
    url: Url,
    region: String,
    credentials: Option<SharedCredentialsProvider>,
}

impl LambdaInvoke {
    /// Invokes `function` in `region` through `endpoint` (`AWS_ENDPOINT_URL_LAMBDA` or
    /// `AWS_ENDPOINT_URL` when set, else `https://lambda.{region}.amazonaws.com`).
    pub fn new(
        http: reqwest::Client,
        endpoint: Option<&str>,
        region: &str,
        function: &str,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<Self, String> {
        let endpoint = match endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!("https://lambda.{region}.amazonaws.com"),
        };
        let mut url =
            Url::parse(&endpoint).map_err(|e| format!("the Lambda endpoint is not a URL ({e})"))?;
        url.path_segments_mut()
            .map_err(|()| "the Lambda endpoint cannot take a path".to_owned())?
            .pop_if_empty()
            .extend(["2015-03-31", "functions", function, "invocations"]);
        Ok(Self {
            http,
            url,
            region: region.to_owned(),
            credentials,
        })
    }

    async fn signed_headers(&self, body: &[u8]) -> Result<Vec<(String, String)>, String> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or("no AWS credentials to sign the invocation with")?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("no AWS credentials to sign the invocation with ({e})"))?;
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("lambda")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign the invocation ({e})"))?
            .into();
        let headers = [
            ("content-type", "application/json"),
            ("x-amz-invocation-type", "Event"),
        ];
        let signable = SignableRequest::new(
            "POST",
            self.url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign the invocation ({e})"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("cannot sign the invocation ({e})"))?
            .into_parts();
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.extend(
            instructions
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        Ok(all)
    }
}

#[async_trait]
impl Jobs for LambdaInvoke {
    async fn start(&self, job: &Value) -> Result<(), String> {
        let body = serde_json::to_vec(job).map_err(|e| e.to_string())?;
        let mut request = self
            .http
            .post(self.url.clone())
            .timeout(INVOKE_TIMEOUT)
            .body(body.clone());
        for (name, value) in self.signed_headers(&body).await? {
            request = request.header(name, value);
        }
        let answer = send_and_read(request)
            .await
            .map_err(|e| format!("Lambda could not be reached ({})", describe_http_error(e)))?;
        if answer.status.as_u16() == 202 {
            Ok(())
        } else {
            Err(format!(
                "Lambda refused the invocation (HTTP {}: {})",
                answer.status.as_u16(),
                first_line(&String::from_utf8_lossy(&answer.body))
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[tokio::test]
    async fn the_invocation_is_signed_for_lambda_in_its_region() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret-key-value", None, None, "test");
        let invoke = LambdaInvoke::new(
            reqwest::Client::new(),
            Some("http://127.0.0.1:9/"),
            "eu-west-1",
            "relay-SlackInteractions-1",
            Some(SharedCredentialsProvider::new(credentials)),
        )
        .unwrap();
        assert_eq!(
            invoke.url.as_str(),
            "http://127.0.0.1:9/2015-03-31/functions/relay-SlackInteractions-1/invocations"
        );
        let headers = invoke.signed_headers(b"{}").await.unwrap();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-amz-invocation-type"), Some("Event"));
        let authorization = get("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && authorization.contains("/eu-west-1/lambda/aws4_request")
                && authorization.contains("x-amz-invocation-type"),
            "{authorization}"
        );
        assert!(!authorization.contains("secret-key-value"));
        let default =
            LambdaInvoke::new(reqwest::Client::new(), None, "us-east-1", "f", None).unwrap();
        assert_eq!(
            default.url.as_str(),
            "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/f/invocations"
        );
        assert!(default.signed_headers(b"{}").await.is_err());
    }
}
