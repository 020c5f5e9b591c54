//! The relay's secret from AWS Secrets Manager, read once per cold start and kept while it works.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use tokio::sync::Mutex;

use crate::adapters::sdk_error::SdkFailure;
use crate::config::WebhookFormat;
use crate::ports::{SecretError, Secrets};
use crate::secret::RelaySecret;

pub struct SecretsManagerSecrets {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    default_format: Option<WebhookFormat>,
    /// The stores whose credentials the secret must hold: App Store, Google Play.
    needs: (bool, bool),
    cached: Mutex<Option<Arc<RelaySecret>>>,
}

impl SecretsManagerSecrets {
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
        default_format: Option<WebhookFormat>,
    ) -> Self {
        Self {
            client,
            secret_id,
            default_format,
            needs: (false, false),
            cached: Mutex::new(None),
        }
    }

    /// Refuses a secret without the App Store key (`app_store`) or the Google service account
    /// (`google_play`), naming what the configured apps need.
    pub fn requiring(mut self, app_store: bool, google_play: bool) -> Self {
        self.needs = (app_store, google_play);
        self
    }

    async fn read(&self) -> Result<RelaySecret, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| SecretError::Unreadable {
                secret_id: self.secret_id.clone(),
                cause: unreadable_cause(&SdkFailure::of(&e)),
            })?;
        let raw = output
            .secret_string
            .map(SecretString::from)
            .ok_or_else(|| SecretError::NotAString {
                secret_id: self.secret_id.clone(),
            })?;
        let format = |cause| SecretError::Format {
            secret_id: self.secret_id.clone(),
            cause,
        };
        let secret = RelaySecret::parse(&raw, self.default_format).map_err(format)?;
        secret.require(self.needs.0, self.needs.1).map_err(format)?;
        Ok(secret)
    }
}

/// The failure as its kind and request id: an answer that did not parse may hold the secret.
fn unreadable_cause(failure: &SdkFailure) -> String {
    let hint = match failure.code() {
        Some("ResourceNotFoundException") => {
            ": no such secret in this region; check `SECRET_ID` (the stack's `SecretArn`)"
        }
        Some("AccessDeniedException") => {
            ": the function's role needs secretsmanager:GetSecretValue on this secret (and kms:Decrypt on a customer-managed key, `SecretKmsKeyArn`)"
        }
        _ => "",
    };
    format!("{failure}{hint}")
}

#[async_trait]
impl Secrets for SecretsManagerSecrets {
    async fn load(&self, refresh: bool) -> Result<Arc<RelaySecret>, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some(secret) = cached.as_ref().filter(|_| !refresh) {
            return Ok(secret.clone());
        }
        // A secret that fails to read or parse is not kept: the next invocation tries again.
        *cached = None;
        let secret = Arc::new(self.read().await?);
        *cached = Some(secret.clone());
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::aws_http::sdk_http_client;
    use crate::adapters::http_client;
    use crate::adapters::trust::TrustRoots;
    use aws_config::BehaviorVersion;
    use aws_config::retry::RetryConfig;
    use aws_sdk_secretsmanager::config::{Credentials, Region};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const MARKER: &str = "SECRET-MARKER";

    /// The relay's own HTTP client, at `endpoint`.
    async fn secrets(endpoint: &str) -> SecretsManagerSecrets {
        let http = http_client(&TrustRoots::load(None).unwrap()).unwrap();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(sdk_http_client(http))
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url(endpoint)
            .retry_config(RetryConfig::disabled())
            .load()
            .await;
        SecretsManagerSecrets::new(
            aws_sdk_secretsmanager::Client::new(&config),
            "review-relay".into(),
            None,
        )
    }

    /// Answers one request with `status` and `body`, then closes.
    async fn answer_once(status: &'static str, body: String) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 64 * 1024];
            let _ = stream.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\n\
                 x-amzn-requestid: req-7\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        });
        format!("http://{address}")
    }

    async fn failure(endpoint: &str) -> String {
        match secrets(endpoint).await.load(false).await {
            Ok(_) => panic!("the read must fail"),
            Err(err) => err.to_string(),
        }
    }

    #[tokio::test]
    async fn an_answer_that_does_not_parse_keeps_the_secret_out_of_the_error() {
        // Cut off inside SecretString: the secret's JSON is in the body the parser saw.
        let body = format!(r#"{{"Name":"review-relay","SecretString":"{{\"key\":\"{MARKER}"#);
        let endpoint = answer_once("200 OK", body).await;
        let message = failure(&endpoint).await;
        assert_eq!(
            message,
            "cannot read secret `review-relay` from Secrets Manager: response could not be parsed (HTTP 200, request id req-7)"
        );
    }

    #[tokio::test]
    async fn a_refusal_shows_its_code_and_what_to_do_not_its_message() {
        let body = format!(r#"{{"__type":"AccessDeniedException","message":"{MARKER}"}}"#);
        let endpoint = answer_once("400 Bad Request", body).await;
        let message = failure(&endpoint).await;
        assert!(
            message.contains("AccessDeniedException (HTTP 400, request id req-7)")
                && message.contains("secretsmanager:GetSecretValue"),
            "{message}"
        );
        assert!(!message.contains(MARKER), "{message}");
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_says_why_without_the_url() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let message = failure(&endpoint).await;
        assert!(message.contains("dispatch failure: "), "{message}");
        assert!(!message.contains("http://"), "{message}");
    }
}
