//! The secret's JSON → [`RelaySecret`], checked once when it is read. Errors name the field and
//! never repeat its value: the key and the webhook URLs are credentials.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::EncodingKey;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use url::Url;

use crate::config::{WebhookFormat, require_secure};

/// What the secret holds, parsed and validated.
pub struct RelaySecret {
    pub api_key: ApiKey,
    pub destinations: Vec<Destination>,
}

/// An App Store Connect API key, ready to sign.
#[derive(Clone)]
pub struct ApiKey {
    pub key_id: String,
    /// `None` for an individual key (signed with `sub: "user"`).
    pub issuer_id: Option<String>,
    pub signing_key: Arc<EncodingKey>,
}

/// Where reviews go.
#[derive(Clone)]
pub struct Destination {
    pub url: SecretUrl,
    pub format: WebhookFormat,
    /// How logs and errors name this destination, since the URL must not appear.
    pub label: String,
}

/// A URL that is a credential: its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct SecretUrl(Url);

impl SecretUrl {
    pub fn expose(&self) -> &Url {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretUrl([redacted])")
    }
}

impl fmt::Debug for RelaySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelaySecret")
            .field("key_id", &self.api_key.key_id)
            .field("issuer_id", &self.api_key.issuer_id)
            .field("destinations", &self.destinations.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("key_id", &self.key_id)
            .field("issuer_id", &self.issuer_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretFormatError {
    #[error(
        "the secret is not a JSON object ({0}); store JSON like {{\"issuer_id\": …, \"key_id\": …, \"private_key\": …, \"webhook_url\": …}}"
    )]
    NotJson(String),
    #[error("secret field `{0}` is missing")]
    Missing(&'static str),
    #[error("secret field `{0}` must be a string")]
    NotString(&'static str),
    #[error("secret field `private_key` {0}")]
    Key(&'static str),
    #[error("secret field `webhook_url` {0}")]
    WebhookUrl(String),
}

const KEY_HINT_NOT_PEM: &str = "is not a PEM EC private key: paste the whole text of AuthKey_XXXXXXXXXX.p8, from -----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY-----";
const KEY_HINT_NOT_P256: &str = "is not an ES256 (P-256) private key: App Store Connect API keys are P-256; download the key again from App Store Connect";

impl RelaySecret {
    /// Parses the secret string. `default_format` is `WEBHOOK_FORMAT`, if set.
    pub fn parse(
        raw: &SecretString,
        default_format: Option<WebhookFormat>,
    ) -> Result<Self, SecretFormatError> {
        let value: Value = serde_json::from_str(raw.expose_secret())
            // serde_json's message carries a position, never the input.
            .map_err(|e| SecretFormatError::NotJson(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(SecretFormatError::NotJson(
                "it is valid JSON but not an object".into(),
            ));
        };

        let key_id = required(&fields, "key_id")?.trim().to_owned();
        let issuer_id = optional(&fields, "issuer_id")?.map(|s| s.trim().to_owned());
        let private_key = SecretString::from(required(&fields, "private_key")?.to_owned());
        let signing_key = Arc::new(parse_private_key(&private_key)?);
        let api_key = ApiKey {
            key_id,
            issuer_id,
            signing_key,
        };

        let webhook = required(&fields, "webhook_url")?;
        let url = Url::parse(webhook.trim())
            .map_err(|e| SecretFormatError::WebhookUrl(format!("is not a URL ({e})")))?;
        require_secure(&url).map_err(SecretFormatError::WebhookUrl)?;
        let format = default_format.unwrap_or_else(|| WebhookFormat::infer(&url));
        let destinations = vec![Destination {
            label: format!("webhook_url ({})", format.name()),
            url: SecretUrl(url),
            format,
        }];

        Ok(Self {
            api_key,
            destinations,
        })
    }
}

fn optional<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, SecretFormatError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SecretFormatError::NotString(name)),
    }
}

fn required<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, SecretFormatError> {
    optional(fields, name)?.ok_or(SecretFormatError::Missing(name))
}

/// Accepts PKCS#8 (`BEGIN PRIVATE KEY`, the .p8 file) and SEC1 (`BEGIN EC PRIVATE KEY`), with real
/// newlines, CRLF, or the literal `\n` sequences of a key pasted onto one line.
fn parse_private_key(raw: &SecretString) -> Result<EncodingKey, SecretFormatError> {
    let text = raw
        .expose_secret()
        .replace("\\r\\n", "\n")
        .replace("\\n", "\n");
    let pem = pem::parse(text.trim()).map_err(|_| SecretFormatError::Key(KEY_HINT_NOT_PEM))?;
    let pkcs8 = match pem.tag() {
        "PRIVATE KEY" => pem.contents().to_vec(),
        "EC PRIVATE KEY" => sec1_to_pkcs8_p256(pem.contents()),
        _ => return Err(SecretFormatError::Key(KEY_HINT_NOT_PEM)),
    };
    let key = EncodingKey::from_ec_der(&pkcs8);
    // The key is only checked when something is signed: sign once now, so a bad key fails here
    // with a clear message instead of on every request.
    let probe = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    jsonwebtoken::encode(&probe, &serde_json::json!({}), &key)
        .map_err(|_| SecretFormatError::Key(KEY_HINT_NOT_P256))?;
    Ok(key)
}

/// Wraps a SEC1 `ECPrivateKey` in a PKCS#8 `PrivateKeyInfo` for P-256 (RFC 5915, RFC 5208).
/// A key on another curve keeps its own parameters inside and is refused when signing.
fn sec1_to_pkcs8_p256(sec1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { id-ecPublicKey, prime256v1 } and version 0.
    const VERSION_AND_ALGORITHM: [u8; 24] = [
        0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
        0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    let mut body = VERSION_AND_ALGORITHM.to_vec();
    body.push(0x04);
    push_der_len(&mut body, sec1.len());
    body.extend_from_slice(sec1);
    let mut der = vec![0x30];
    push_der_len(&mut der, body.len());
    der.extend_from_slice(&body);
    der
}

fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P8: &str = include_str!("../tests/fixtures/keys/AuthKey_TESTKEY001.p8");
    const SEC1: &str = include_str!("../tests/fixtures/keys/AuthKey_TESTKEY001.sec1.pem");
    const PUBLIC: &str = include_str!("../tests/fixtures/keys/AuthKey_TESTKEY001.pub.pem");

    fn secret(fields: Value) -> Result<RelaySecret, SecretFormatError> {
        RelaySecret::parse(&SecretString::from(fields.to_string()), None)
    }

    fn full(private_key: &str) -> Value {
        serde_json::json!({
            "issuer_id": "57246542-96fe-1a63-e053-0824d011072a",
            "key_id": "TESTKEY001",
            "private_key": private_key,
            "webhook_url": "https://hooks.slack.com/services/T000/B000/XXXX",
        })
    }

    fn verifies_with_public_key(key: &EncodingKey) {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &serde_json::json!({"aud": "x", "exp": 4_000_000_000u64}),
            key,
        )
        .unwrap();
        let public = jsonwebtoken::DecodingKey::from_ec_pem(PUBLIC.as_bytes()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["x"]);
        jsonwebtoken::decode::<Value>(&token, &public, &validation).unwrap();
    }

    #[test]
    fn accepts_pkcs8_sec1_and_one_line_keys() {
        let one_line = P8.trim().replace('\n', "\\n");
        let crlf = P8.replace('\n', "\r\n");
        for key in [P8, SEC1, one_line.as_str(), crlf.as_str()] {
            let parsed = secret(full(key)).unwrap();
            verifies_with_public_key(&parsed.api_key.signing_key);
        }
    }

    #[test]
    fn infers_slack_and_individual_keys() {
        let mut fields = full(P8);
        fields.as_object_mut().unwrap().remove("issuer_id");
        let parsed = secret(fields).unwrap();
        assert_eq!(parsed.api_key.issuer_id, None);
        assert_eq!(parsed.destinations[0].format, WebhookFormat::Slack);
    }

    #[test]
    fn errors_name_the_cause_and_never_the_value() {
        let not_a_key = full("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----");
        let body_line = P8.lines().nth(1).unwrap();
        let cases = [
            (serde_json::json!("just a string"), "not a JSON object"),
            (
                serde_json::json!({"key_id": "K", "webhook_url": "https://x.y"}),
                "`private_key` is missing",
            ),
            (
                serde_json::json!({"key_id": 7}),
                "`key_id` must be a string",
            ),
            (full("hello"), "`private_key` is not a PEM EC private key"),
            (not_a_key, "`private_key` is not an ES256"),
            (
                full(include_str!("../tests/fixtures/keys/RsaKey.pem")),
                "`private_key` is not an ES256",
            ),
            (
                full(include_str!("../tests/fixtures/keys/P384Key.p8")),
                "`private_key` is not an ES256",
            ),
            (
                {
                    let mut f = full(P8);
                    f["webhook_url"] = "http://hooks.example.com/secret-path".into();
                    f
                },
                "`webhook_url` plain http://",
            ),
        ];
        for (fields, expected) in cases {
            let message = secret(fields).unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            assert!(!message.contains(body_line) && !message.contains("secret-path"));
        }
        let not_json = RelaySecret::parse(&SecretString::from(format!("{{{P8}")), None);
        let message = not_json.unwrap_err().to_string();
        assert!(message.contains("not a JSON object") && !message.contains(body_line));
    }

    #[test]
    fn debug_output_hides_credentials() {
        let parsed = secret(full(P8)).unwrap();
        let shown = format!("{parsed:?} {:?}", parsed.destinations[0].url);
        assert!(!shown.contains("hooks.slack.com") && !shown.contains("BEGIN"));
    }
}
