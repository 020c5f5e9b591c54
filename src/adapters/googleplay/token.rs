//! OAuth 2.0 for a service account: an RS256 assertion signed with the key, exchanged at
//! `token_uri` for an access token that is reused until shortly before it expires.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Header};
use secrecy::SecretString;
use serde::Serialize;

use crate::secret::ServiceAccount;

/// The API's one OAuth scope.
pub const SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google refuses assertions that live longer than an hour.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// A token with less than this left is replaced, so it cannot expire mid-run.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// What Google answers when `expires_in` is missing: about an hour.
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(3599);

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'static str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// The signed assertion for `account` at `now_secs` (Unix seconds). Sent only to `token_uri`.
pub fn assertion(
    account: &ServiceAccount,
    now_secs: u64,
) -> Result<SecretString, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(account.private_key_id.clone());
    header.typ = Some("JWT".into());
    let claims = Claims {
        iss: &account.client_email,
        scope: SCOPE,
        aud: account.token_uri.as_str(),
        iat: now_secs,
        exp: now_secs + ASSERTION_LIFETIME_SECS,
    };
    jsonwebtoken::encode(&header, &claims, &account.signing_key).map(SecretString::from)
}

/// The form body of the exchange.
pub fn exchange_form(assertion: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", GRANT_TYPE)
        .append_pair("assertion", assertion)
        .finish()
}

struct Cached {
    client_email: String,
    private_key_id: String,
    token: SecretString,
    renew_at: Instant,
}

/// The access token of the last service account used; a rotated key (another `private_key_id`)
/// or another account gets a new one.
#[derive(Default)]
pub struct TokenCache {
    cached: Mutex<Option<Cached>>,
}

impl TokenCache {
    /// The kept token for `account`, while it has more than five minutes left at `now`.
    pub fn get(&self, account: &ServiceAccount, now: Instant) -> Option<SecretString> {
        let cached = self.lock();
        cached
            .as_ref()
            .filter(|c| {
                c.client_email == account.client_email
                    && c.private_key_id == account.private_key_id
                    && now < c.renew_at
            })
            .map(|c| c.token.clone())
    }

    /// Keeps `token`, granted at `granted_at` for `expires_in` seconds (Google's answer).
    pub fn keep(
        &self,
        account: &ServiceAccount,
        token: SecretString,
        expires_in: Option<u64>,
        granted_at: Instant,
    ) {
        let lifetime = expires_in.map_or(DEFAULT_EXPIRES_IN, Duration::from_secs);
        *self.lock() = Some(Cached {
            client_email: account.client_email.clone(),
            private_key_id: account.private_key_id.clone(),
            token,
            renew_at: granted_at + lifetime.saturating_sub(RENEW_BEFORE),
        });
    }

    pub fn forget(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::Value;

    const PUBLIC_KEY: &[u8] =
        include_bytes!("../../../tests/fixtures/keys/play-service-account.pub.pem");

    fn account() -> ServiceAccount {
        let mut key: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/keys/play-service-account.json"
        ))
        .unwrap();
        key["token_uri"] = "https://oauth2.googleapis.com/token".into();
        let secret = serde_json::json!({
            "google_service_account": key,
            "webhook_url": "https://example.com/hook",
        });
        crate::secret::RelaySecret::parse(&SecretString::from(secret.to_string()), None)
            .unwrap()
            .google_service_account
            .unwrap()
    }

    #[test]
    fn the_assertion_carries_what_google_checks() {
        let account = account();
        let signed = assertion(&account, 1_000).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://oauth2.googleapis.com/token"]);
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(
            signed.expose_secret(),
            &jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(
            data.header.kid.as_deref(),
            Some(account.private_key_id.as_str())
        );
        assert_eq!(data.header.typ.as_deref(), Some("JWT"));
        let claims = data.claims;
        assert_eq!(claims["iss"], account.client_email.as_str());
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["exp"], 4_600);
        let form = exchange_form("a.b.c");
        assert_eq!(
            form,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c"
        );
    }

    #[test]
    fn kept_until_five_minutes_before_expiry_and_per_key() {
        let cache = TokenCache::default();
        let account = account();
        let at = Instant::now();
        cache.keep(&account, SecretString::from("t1"), Some(3599), at);
        let before = at + Duration::from_secs(3599 - 301);
        assert_eq!(cache.get(&account, before).unwrap().expose_secret(), "t1");
        assert!(
            cache
                .get(&account, at + Duration::from_secs(3599 - 300))
                .is_none()
        );

        let mut rotated = account.clone();
        rotated.private_key_id = "another".into();
        assert!(cache.get(&rotated, at).is_none(), "a rotated key");
        let mut other = account.clone();
        other.client_email = "other@x.iam.gserviceaccount.com".into();
        assert!(cache.get(&other, at).is_none(), "another account");

        cache.forget();
        assert!(cache.get(&account, at).is_none());
        // A token granted for less than five minutes is used once and never kept.
        cache.keep(&account, SecretString::from("short"), Some(120), at);
        assert!(cache.get(&account, at).is_none());
    }
}
