//! The relay's secret from AWS Secrets Manager, read once per cold start and kept while it works.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use secrecy::SecretString;
use tokio::sync::Mutex;

use crate::config::WebhookFormat;
use crate::ports::{SecretError, Secrets};
use crate::secret::RelaySecret;

pub struct SecretsManagerSecrets {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    default_format: Option<WebhookFormat>,
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
            cached: Mutex::new(None),
        }
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
                cause: DisplayErrorContext(e).to_string(),
            })?;
        let raw = output
            .secret_string
            .map(SecretString::from)
            .ok_or_else(|| SecretError::NotAString {
                secret_id: self.secret_id.clone(),
            })?;
        RelaySecret::parse(&raw, self.default_format).map_err(|cause| SecretError::Format {
            secret_id: self.secret_id.clone(),
            cause,
        })
    }
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
