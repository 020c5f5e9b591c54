//! The secret as a store adapter sees it: the one in use, read again when the store refuses a
//! token made from it (the key may have been rotated since this process read it).

use std::sync::Arc;

use crate::ports::{SecretError, Secrets};
use crate::secret::RelaySecret;

#[derive(Clone)]
pub struct SecretHandle {
    secrets: Arc<dyn Secrets>,
}

impl SecretHandle {
    pub fn new(secrets: Arc<dyn Secrets>) -> Self {
        Self { secrets }
    }

    /// A secret that never changes: reading it again gives the same one.
    pub fn fixed(secret: RelaySecret) -> Self {
        Self::new(Arc::new(Fixed(Arc::new(secret))))
    }

    /// The secret as last read.
    pub async fn current(&self) -> Result<Arc<RelaySecret>, SecretError> {
        self.secrets.load(false).await
    }

    /// After the store refused a token made from `refused`: the secret to try once more with.
    /// Read again from the store of secrets, unless another request already did so since.
    pub async fn after_refusal(
        &self,
        refused: &Arc<RelaySecret>,
    ) -> Result<Arc<RelaySecret>, SecretError> {
        let current = self.secrets.load(false).await?;
        if Arc::ptr_eq(&current, refused) {
            self.secrets.load(true).await
        } else {
            Ok(current)
        }
    }
}

/// For tests that make no request: reading it is an error.
#[cfg(test)]
impl SecretHandle {
    pub fn unused() -> Self {
        Self::new(Arc::new(Unused))
    }
}

#[cfg(test)]
struct Unused;

#[cfg(test)]
#[async_trait::async_trait]
impl Secrets for Unused {
    async fn load(&self, _refresh: bool) -> Result<Arc<RelaySecret>, SecretError> {
        Err(SecretError::NotAString {
            secret_id: "unused".into(),
        })
    }
}

struct Fixed(Arc<RelaySecret>);

#[async_trait::async_trait]
impl Secrets for Fixed {
    async fn load(&self, _refresh: bool) -> Result<Arc<RelaySecret>, SecretError> {
        Ok(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use secrecy::SecretString;
    use tokio::sync::Mutex;

    use super::*;

    /// Each fresh read gives a new secret, as a rotation would.
    #[derive(Default)]
    struct Rotating {
        reads: AtomicUsize,
        cached: Mutex<Option<Arc<RelaySecret>>>,
    }

    #[async_trait]
    impl Secrets for Rotating {
        async fn load(&self, refresh: bool) -> Result<Arc<RelaySecret>, SecretError> {
            let mut cached = self.cached.lock().await;
            if let Some(secret) = cached.as_ref().filter(|_| !refresh) {
                return Ok(secret.clone());
            }
            self.reads.fetch_add(1, Ordering::SeqCst);
            let raw = serde_json::json!({
                "key_id": "K1",
                "private_key": include_str!("../../tests/fixtures/keys/AuthKey_TESTKEY001.p8"),
                "webhook_url": "https://hooks.slack.com/services/T/B/x",
            });
            let secret = Arc::new(
                RelaySecret::parse(&SecretString::from(raw.to_string()), None).map_err(|e| {
                    SecretError::Format {
                        secret_id: "s".into(),
                        cause: e,
                    }
                })?,
            );
            *cached = Some(secret.clone());
            Ok(secret)
        }
    }

    #[tokio::test]
    async fn a_refused_secret_is_read_again_once_however_many_requests_were_refused() {
        let secrets = Arc::new(Rotating::default());
        let handle = SecretHandle::new(secrets.clone());
        let first = handle.current().await.unwrap();
        assert_eq!(secrets.reads.load(Ordering::SeqCst), 1);

        // Two requests made with the first secret are refused: one read, the same answer.
        let fresh = handle.after_refusal(&first).await.unwrap();
        let again = handle.after_refusal(&first).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &fresh));
        assert!(Arc::ptr_eq(&fresh, &again));
        assert_eq!(secrets.reads.load(Ordering::SeqCst), 2);
        assert!(Arc::ptr_eq(&handle.current().await.unwrap(), &fresh));

        // The fresh one refused in turn (a later run): read again.
        let third = handle.after_refusal(&fresh).await.unwrap();
        assert!(!Arc::ptr_eq(&third, &fresh));
        assert_eq!(secrets.reads.load(Ordering::SeqCst), 3);
    }
}
