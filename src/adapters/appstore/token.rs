//! ES256 tokens for the App Store Connect API, signed once and reused until shortly before expiry.

use std::sync::Mutex;

use jsonwebtoken::{Algorithm, Header};
use secrecy::SecretString;
use serde::Serialize;

use crate::secret::ApiKey;

/// Apple refuses tokens that live longer than 20 minutes.
const LIFETIME_SECS: u64 = 19 * 60;
/// A token with less than this left is replaced, so it cannot expire mid-run.
const RENEW_BEFORE_SECS: u64 = 5 * 60;
const AUDIENCE: &str = "appstoreconnect-v1";

#[derive(Serialize)]
struct Claims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    /// Individual keys sign as `sub: "user"` instead of naming an issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'static str>,
    iat: u64,
    exp: u64,
    aud: &'static str,
}

struct Cached {
    key_id: String,
    issuer_id: Option<String>,
    token: SecretString,
    expires_at: u64,
}

#[derive(Default)]
pub struct TokenCache {
    cached: Mutex<Option<Cached>>,
}

impl TokenCache {
    /// A token for `key`, reusing the cached one while it has time left.
    pub fn bearer(
        &self,
        key: &ApiKey,
        now_secs: u64,
    ) -> Result<SecretString, jsonwebtoken::errors::Error> {
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(c) = cached.as_ref()
            && c.key_id == key.key_id
            && c.issuer_id == key.issuer_id
            && c.expires_at > now_secs + RENEW_BEFORE_SECS
        {
            return Ok(c.token.clone());
        }
        let token = sign(key, now_secs)?;
        *cached = Some(Cached {
            key_id: key.key_id.clone(),
            issuer_id: key.issuer_id.clone(),
            token: token.clone(),
            expires_at: now_secs + LIFETIME_SECS,
        });
        Ok(token)
    }

    pub fn forget(&self) {
        *self
            .cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }
}

fn sign(key: &ApiKey, now_secs: u64) -> Result<SecretString, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.key_id.clone());
    header.typ = Some("JWT".into());
    let claims = Claims {
        iss: key.issuer_id.as_deref(),
        sub: key.issuer_id.is_none().then_some("user"),
        iat: now_secs,
        exp: now_secs + LIFETIME_SECS,
        aud: AUDIENCE,
    };
    jsonwebtoken::encode(&header, &claims, &key.signing_key).map(SecretString::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::Value;

    fn key(issuer: Option<&str>) -> ApiKey {
        let secret = serde_json::json!({
            "issuer_id": issuer,
            "key_id": "TESTKEY001",
            "private_key": include_str!("../../../tests/fixtures/keys/AuthKey_TESTKEY001.p8"),
            "webhook_url": "https://example.com/hook",
        });
        crate::secret::RelaySecret::parse(&SecretString::from(secret.to_string()), None)
            .unwrap()
            .api_key
            .unwrap()
    }

    fn decode(token: &SecretString) -> (Value, Value) {
        let public = jsonwebtoken::DecodingKey::from_ec_pem(include_bytes!(
            "../../../tests/fixtures/keys/AuthKey_TESTKEY001.pub.pem"
        ))
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_audience(&[AUDIENCE]);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<Value>(token.expose_secret(), &public, &validation).unwrap();
        (serde_json::to_value(&data.header).unwrap(), data.claims)
    }

    #[test]
    fn team_key_claims() {
        let (header, claims) = decode(
            &TokenCache::default()
                .bearer(&key(Some("ISS")), 1_000)
                .unwrap(),
        );
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "TESTKEY001");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(claims["iss"], "ISS");
        assert_eq!(claims["aud"], "appstoreconnect-v1");
        assert_eq!(claims["iat"], 1_000);
        assert!(claims.get("sub").is_none());
        let lifetime = claims["exp"].as_u64().unwrap() - 1_000;
        assert!(lifetime <= 1_200 && lifetime > RENEW_BEFORE_SECS);
    }

    #[test]
    fn individual_key_signs_as_user() {
        let (_, claims) = decode(&TokenCache::default().bearer(&key(None), 1_000).unwrap());
        assert_eq!(claims["sub"], "user");
        assert!(claims.get("iss").is_none());
    }

    #[test]
    fn reused_until_near_expiry_then_renewed() {
        let cache = TokenCache::default();
        let k = key(Some("ISS"));
        let first = cache.bearer(&k, 1_000).unwrap();
        let later = cache
            .bearer(&k, 1_000 + LIFETIME_SECS - RENEW_BEFORE_SECS - 1)
            .unwrap();
        assert_eq!(first.expose_secret(), later.expose_secret());
        let renewed = cache
            .bearer(&k, 1_000 + LIFETIME_SECS - RENEW_BEFORE_SECS)
            .unwrap();
        assert_ne!(first.expose_secret(), renewed.expose_secret());
        cache.forget();
        let after_forget = cache
            .bearer(&k, 1_000 + LIFETIME_SECS - RENEW_BEFORE_SECS)
            .unwrap();
        assert_ne!(renewed.expose_secret(), after_forget.expose_secret());
    }
}
