//! App Store Connect API key fixtures (throwaway keys made for these tests only).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// PKCS#8 `PRIVATE KEY`, the format Apple hands out as `AuthKey_<KEYID>.p8`.
pub const PRIVATE_KEY_P8: &str = include_str!("../fixtures/keys/AuthKey_TESTKEY001.p8");
/// The same key as SEC1 `EC PRIVATE KEY`. Note: jsonwebtoken's `EncodingKey::from_ec_pem`
/// refuses this form (`InvalidKeyFormat`); it only takes PKCS#8.
pub const PRIVATE_KEY_SEC1: &str = include_str!("../fixtures/keys/AuthKey_TESTKEY001.sec1.pem");
/// Public half of [`PRIVATE_KEY_P8`]; the ASC double verifies tokens with it.
pub const PUBLIC_KEY_PEM: &str = include_str!("../fixtures/keys/AuthKey_TESTKEY001.pub.pem");
/// An unrelated P-256 key: tokens signed with it must be rejected.
pub const OTHER_KEY_P8: &str = include_str!("../fixtures/keys/OtherKey.p8");

pub const KEY_ID: &str = "TESTKEY001";
pub const ISSUER_ID: &str = "57246542-96fe-1a63-e053-0824d011072a";

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Signs `claims` with ES256 (`private_key_pem` must be PKCS#8) and a header `{alg: ES256, kid, typ: JWT}`.
/// For tests that need hand-made (including deliberately bad) tokens.
pub fn sign_es256(private_key_pem: &str, kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(private_key_pem.as_bytes())
        .unwrap_or_else(|e| panic!("fixture key is not a usable EC PEM: {e}"));
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_string());
    header.typ = Some("JWT".to_string());
    jsonwebtoken::encode(&header, claims, &key).unwrap_or_else(|e| panic!("signing failed: {e}"))
}

/// A valid team-key token for [`KEY_ID`]/[`ISSUER_ID`], signed with [`PRIVATE_KEY_P8`], valid for 10 minutes.
pub fn team_token() -> String {
    let now = now_secs();
    sign_es256(
        PRIVATE_KEY_P8,
        KEY_ID,
        &serde_json::json!({
            "iss": ISSUER_ID,
            "iat": now,
            "exp": now + 600,
            "aud": "appstoreconnect-v1",
        }),
    )
}
