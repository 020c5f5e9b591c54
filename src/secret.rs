//! The secret's JSON → [`RelaySecret`], checked once when it is read. Errors name the field and
//! never repeat its value: the key and the webhook URLs are credentials.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::EncodingKey;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use url::Url;

use crate::config::{WebhookFormat, require_secure};
use crate::domain::{Addressee, AppId, Route};

/// What the secret holds, parsed and validated.
pub struct RelaySecret {
    /// The App Store Connect key, when the secret has one (needed for `APP_IDS`).
    pub api_key: Option<ApiKey>,
    /// The Google Cloud service account, when the secret has one (needed for `PLAY_PACKAGES`).
    pub google_service_account: Option<ServiceAccount>,
    pub destinations: Vec<Destination>,
    /// The Slack app behind the Reply button, when the secret has one (needed by the
    /// `slack-interactions` function).
    pub slack_app: Option<SlackApp>,
    /// Why `slack_app` was not taken, when the secret has one with a mistake: the Reply
    /// button's function names it; the relay goes on without it.
    pub slack_app_error: Option<SecretFormatError>,
}

/// The secret's `slack_app`: what the Reply button's endpoint checks requests with and opens
/// modals with, and who may answer from Slack.
#[derive(Clone)]
pub struct SlackApp {
    /// Basic Information → App Credentials → Signing Secret: Slack signs every request with it.
    pub signing_secret: SecretString,
    /// OAuth & Permissions → Bot User OAuth Token (`xoxb-…`), for `views.open`/`views.update`.
    pub bot_token: SecretString,
    /// The workspaces whose people may answer (`T…`; `E…` for an Enterprise Grid org).
    pub allowed_team_ids: Vec<String>,
    /// When set, only these people may answer (`U…` or `W…`).
    pub allowed_user_ids: Option<Vec<String>>,
}

impl fmt::Debug for SlackApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackApp")
            .field("allowed_team_ids", &self.allowed_team_ids)
            .field("allowed_user_ids", &self.allowed_user_ids)
            .finish_non_exhaustive()
    }
}

/// A Google Cloud service account key, as Google Cloud downloads it: the fields used to sign the
/// OAuth assertion and where to exchange it.
#[derive(Clone)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key_id: String,
    pub signing_key: Arc<EncodingKey>,
    /// Where the assertion is exchanged for an access token: https (loopback http for tests).
    pub token_uri: Url,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
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
    /// Signs each message (`json` destinations only): the destination's own, else the secret's
    /// top-level `signing_secret`.
    pub signing_secret: Option<SecretString>,
    /// Names the destination in the table's delivery records: `webhook_url`, the `name` given,
    /// or a digest of the URL (never the URL itself).
    pub key: String,
    /// Which reviews it wants.
    pub route: Route,
    /// Whether each review carries a Reply button (`"interactive": true`; Slack destinations
    /// only, and never `webhook_url`): a button works only on messages the Slack app's own
    /// webhook posted, so it is opted into per destination.
    pub interactive: bool,
}

impl Addressee for Destination {
    fn key(&self) -> &str {
        &self.key
    }

    fn route(&self) -> &Route {
        &self.route
    }
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
            .field("api_key", &self.api_key)
            .field("google_service_account", &self.google_service_account)
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
    /// `field` is a path such as `destinations[1].url`.
    #[error("secret field `{field}` {reason}")]
    Field { field: String, reason: String },
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

        // The App Store key is there when either of its fields is; a half key is an error.
        let api_key = if optional(&fields, "key_id")?.is_some()
            || optional(&fields, "private_key")?.is_some()
        {
            let key_id = required(&fields, "key_id")?.trim().to_owned();
            let issuer_id = optional(&fields, "issuer_id")?.map(|s| s.trim().to_owned());
            let private_key = SecretString::from(required(&fields, "private_key")?.to_owned());
            let signing_key = Arc::new(parse_private_key(&private_key)?);
            Some(ApiKey {
                key_id,
                issuer_id,
                signing_key,
            })
        } else {
            None
        };
        let google_service_account = match fields.get(GOOGLE_SERVICE_ACCOUNT) {
            None | Some(Value::Null) => None,
            Some(account) => Some(parse_service_account(account)?),
        };

        let default_signing = signing_secret(&fields, "signing_secret".into())?;
        let mut destinations = Vec::new();
        if let Some(webhook) = optional(&fields, "webhook_url")? {
            let url = Url::parse(webhook.trim())
                .map_err(|e| SecretFormatError::WebhookUrl(format!("is not a URL ({e})")))?;
            require_secure(&url).map_err(SecretFormatError::WebhookUrl)?;
            let format = default_format.unwrap_or_else(|| WebhookFormat::infer(&url));
            destinations.push(Destination {
                label: format!("webhook_url ({})", format.name()),
                signing_secret: signing_for(format, None, &default_signing),
                url: SecretUrl(url),
                format,
                key: "webhook_url".into(),
                route: Route::default(),
                interactive: false,
            });
        }
        destinations.extend(parse_destinations(&fields, &default_signing)?);
        // A secret with nowhere to deliver would mark reviews delivered that no one saw.
        if destinations.is_empty() {
            return Err(SecretFormatError::Missing("webhook_url"));
        }
        // A mistake in `slack_app` stops the Reply button only, never the relay.
        let (slack_app, slack_app_error) = match fields.get(SLACK_APP).map(parse_slack_app) {
            None => (None, None),
            Some(Ok(app)) => (app, None),
            Some(Err(e)) => (None, Some(e)),
        };
        Ok(Self {
            api_key,
            google_service_account,
            destinations,
            slack_app,
            slack_app_error,
        })
    }

    /// Refuses a secret that lacks what a configured store needs: the App Store key when
    /// `APP_IDS` names apps, the service account when `PLAY_PACKAGES` does.
    pub fn require(&self, app_store: bool, google_play: bool) -> Result<(), SecretFormatError> {
        if app_store && self.api_key.is_none() {
            return Err(SecretFormatError::Field {
                field: "key_id".into(),
                reason: "is missing: the App Store apps in APP_IDS need `key_id` and `private_key` (an App Store Connect API key)".into(),
            });
        }
        if google_play && self.google_service_account.is_none() {
            return Err(SecretFormatError::Field {
                field: GOOGLE_SERVICE_ACCOUNT.into(),
                reason: "is missing: the Google Play apps in PLAY_PACKAGES need the service account's JSON key, as Google Cloud downloads it".into(),
            });
        }
        Ok(())
    }
}

const GOOGLE_SERVICE_ACCOUNT: &str = "google_service_account";
const SLACK_APP: &str = "slack_app";

/// `slack_app`: `{"signing_secret", "bot_token", "allowed_team_ids", "allowed_user_ids"?}`.
/// Errors name the field, never its value.
fn parse_slack_app(value: &Value) -> Result<Option<SlackApp>, SecretFormatError> {
    if value.is_null() {
        return Ok(None);
    }
    parse_slack_app_object(value).map(Some)
}

fn parse_slack_app_object(value: &Value) -> Result<SlackApp, SecretFormatError> {
    let bad = |name: &str, reason: &str| SecretFormatError::Field {
        field: format!("{SLACK_APP}.{name}"),
        reason: reason.to_owned(),
    };
    let Value::Object(app) = value else {
        return Err(SecretFormatError::Field {
            field: SLACK_APP.into(),
            reason: "must be an object like {\"signing_secret\": …, \"bot_token\": …, \"allowed_team_ids\": [\"T…\"]}".into(),
        });
    };
    if let Some(unknown) = app.keys().find(|k| !SLACK_APP_FIELDS.contains(&k.as_str())) {
        return Err(bad(
            unknown,
            &format!(
                "is not a `slack_app` field; use {}",
                SLACK_APP_FIELDS.join(", ")
            ),
        ));
    }
    let text = |name: &str| match app.get(name) {
        Some(Value::String(v)) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        None | Some(Value::Null) => Err(bad(name, "is missing")),
        Some(Value::String(_)) => Err(bad(name, "is empty")),
        Some(_) => Err(bad(name, "must be a string")),
    };
    let signing_secret = SecretString::from(text("signing_secret")?);
    let bot_token = text("bot_token")?;
    if !bot_token.starts_with("xoxb-") {
        return Err(bad(
            "bot_token",
            "is not a bot token: copy the Bot User OAuth Token (it starts with `xoxb-`) from the Slack app's OAuth & Permissions page",
        ));
    }
    // Slack's ids are upper-case letters and digits, starting with their kind's letter.
    let or = |kinds: &str| {
        kinds
            .chars()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let ids = |name: &str,
               kinds: &str,
               required: bool|
     -> Result<Option<Vec<String>>, SecretFormatError> {
        let list = match app.get(name) {
            None | Some(Value::Null) if !required => return Ok(None),
            Some(Value::Array(list)) if !list.is_empty() => list,
            _ => {
                return Err(bad(
                    name,
                    &format!(
                        "must be a non-empty list of Slack ids starting with {}",
                        or(kinds)
                    ),
                ));
            }
        };
        list.iter()
            .map(|id| match id.as_str().map(str::trim) {
                Some(id)
                    if id.len() > 1
                        && id.len() <= 32
                        && id.starts_with(|c: char| kinds.contains(c))
                        && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) =>
                {
                    Ok(id.to_owned())
                }
                _ => Err(bad(
                    name,
                    &format!(
                        "holds something that is not a Slack id: upper-case letters and digits, starting with {}",
                        or(kinds)
                    ),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    Ok(SlackApp {
        signing_secret,
        bot_token: SecretString::from(bot_token),
        allowed_team_ids: ids("allowed_team_ids", "TE", true)?.unwrap_or_default(),
        allowed_user_ids: ids("allowed_user_ids", "UW", false)?,
    })
}

const SLACK_APP_FIELDS: [&str; 4] = [
    "signing_secret",
    "bot_token",
    "allowed_team_ids",
    "allowed_user_ids",
];

/// The service account key file's JSON, given as an object or as a string holding it.
fn parse_service_account(value: &Value) -> Result<ServiceAccount, SecretFormatError> {
    let field = |name: &str| format!("{GOOGLE_SERVICE_ACCOUNT}.{name}");
    let bad = |name: &str, reason: &str| SecretFormatError::Field {
        field: field(name),
        reason: reason.to_owned(),
    };
    let parsed;
    let account = match value {
        Value::Object(account) => account,
        Value::String(text) => {
            // serde_json's message carries a position, never the input.
            parsed = serde_json::from_str::<Value>(text).map_err(|e| SecretFormatError::Field {
                field: GOOGLE_SERVICE_ACCOUNT.into(),
                reason: format!("is a string that is not the key file's JSON ({e})"),
            })?;
            parsed.as_object().ok_or_else(|| SecretFormatError::Field {
                field: GOOGLE_SERVICE_ACCOUNT.into(),
                reason: "is a string whose JSON is not an object".into(),
            })?
        }
        _ => {
            return Err(SecretFormatError::Field {
                field: GOOGLE_SERVICE_ACCOUNT.into(),
                reason: "must be the service account's JSON key: an object, or a string holding it"
                    .into(),
            });
        }
    };
    let text = |name: &'static str| -> Result<String, SecretFormatError> {
        match account.get(name) {
            Some(Value::String(v)) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
            None | Some(Value::Null) => Err(bad(
                name,
                "is missing: paste the whole JSON key file Google Cloud downloaded",
            )),
            Some(Value::String(_)) => Err(bad(name, "is empty")),
            Some(_) => Err(bad(name, "must be a string")),
        }
    };
    if let Some(kind) = account.get("type").and_then(Value::as_str)
        && kind != "service_account"
    {
        return Err(bad(
            "type",
            "is not `service_account`: create a key for a service account, not an OAuth client",
        ));
    }
    let client_email = text("client_email")?;
    let private_key_id = text("private_key_id")?;
    let token_uri = Url::parse(&text("token_uri")?)
        .map_err(|e| bad("token_uri", &format!("is not a URL ({e})")))?;
    require_secure(&token_uri).map_err(|reason| bad("token_uri", &reason))?;
    let pem = text("private_key")?.replace("\\n", "\n");
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
        bad(
            "private_key",
            "is not a PEM RSA private key: paste the key file's `private_key` as Google Cloud wrote it, from -----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY-----",
        )
    })?;
    // Checked by signing once, as the App Store key is: a bad key fails here, not mid-run.
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, &serde_json::json!({"check": true}), &key).map_err(|_| {
        bad(
            "private_key",
            "cannot sign with RS256: download a new JSON key",
        )
    })?;
    Ok(ServiceAccount {
        client_email,
        private_key_id,
        signing_key: Arc::new(key),
        token_uri,
    })
}

/// `destinations`: `[{"url": …, "format": …, "name": …, "signing_secret": …, "interactive": …},
/// …]`, each format inferred from its URL when not given.
fn parse_destinations(
    fields: &Map<String, Value>,
    default_signing: &Option<SecretString>,
) -> Result<Vec<Destination>, SecretFormatError> {
    let entries = match fields.get("destinations") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) if !entries.is_empty() => entries,
        Some(_) => {
            return Err(SecretFormatError::Field {
                field: "destinations".into(),
                reason: "must be a non-empty list of objects like {\"url\": …, \"format\": …}"
                    .into(),
            });
        }
    };
    let mut destinations = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let path = |name: &str| format!("destinations[{i}].{name}");
        let invalid = |field: String, reason: &str| SecretFormatError::Field {
            field,
            reason: reason.to_owned(),
        };
        let Value::Object(entry) = entry else {
            return Err(invalid(
                format!("destinations[{i}]"),
                "must be an object like {\"url\": …, \"format\": …}",
            ));
        };
        let text = |name: &str| match entry.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim())),
            Some(_) => Err(invalid(path(name), "must be a string")),
        };
        let raw_url = text("url")?.ok_or_else(|| invalid(path("url"), "is missing"))?;
        let url = Url::parse(raw_url).map_err(|e| SecretFormatError::Field {
            field: path("url"),
            reason: format!("is not a URL ({e})"),
        })?;
        require_secure(&url).map_err(|reason| SecretFormatError::Field {
            field: path("url"),
            reason,
        })?;
        let format = match text("format")? {
            None => WebhookFormat::infer(&url),
            Some(raw) => WebhookFormat::parse(raw).ok_or_else(|| SecretFormatError::Field {
                field: path("format"),
                reason: format!("`{raw}` is not a format; use {}", WebhookFormat::CHOICES),
            })?,
        };
        let own_signing = signing_secret(entry, path("signing_secret"))?;
        if let Some(unknown) = entry
            .keys()
            .find(|k| !DESTINATION_FIELDS.contains(&k.as_str()))
        {
            return Err(invalid(
                path(unknown),
                &format!(
                    "is not a destination field; use {}",
                    DESTINATION_FIELDS.join(", ")
                ),
            ));
        }
        let interactive = match entry.get("interactive") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(interactive)) => *interactive,
            Some(_) => {
                return Err(invalid(
                    path("interactive"),
                    "must be true or false (a JSON boolean, not a string)",
                ));
            }
        };
        if interactive && format != WebhookFormat::Slack {
            return Err(invalid(
                path("interactive"),
                &format!(
                    "is true for a `{}` destination; only Slack destinations can carry a Reply button",
                    format.name()
                ),
            ));
        }
        let name = match entry.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(raw)) => {
                Some(destination_name(raw).map_err(|reason| invalid(path("name"), &reason))?)
            }
            Some(_) => return Err(invalid(path("name"), "must be a string")),
        };
        let (label, key) = match name {
            Some(name) => (format!("{name} ({})", format.name()), name.to_owned()),
            None => (
                format!("destinations[{i}] ({})", format.name()),
                url_key(&url),
            ),
        };
        if key == "webhook_url" || destinations.iter().any(|d: &Destination| d.key == key) {
            return Err(invalid(
                path("name"),
                "repeats another destination's name or URL; each destination needs its own",
            ));
        }
        destinations.push(Destination {
            label,
            signing_secret: signing_for(format, own_signing, default_signing),
            url: SecretUrl(url),
            format,
            key,
            route: parse_route(entry, &path)?,
            interactive,
        });
    }
    Ok(destinations)
}

const DESTINATION_FIELDS: [&str; 11] = [
    "url",
    "format",
    "name",
    "signing_secret",
    "interactive",
    "apps",
    "ratings",
    "territories",
    "languages",
    "include_keywords",
    "exclude_keywords",
];

/// The most characters in a destination's `name`. The name is part of DynamoDB sort keys (at most
/// 1,024 bytes; 100 characters are at most 400) and of every log line about the destination.
pub const MAX_DESTINATION_NAME_CHARS: usize = 100;

/// A destination's `name`, trimmed; the reason it is refused names the rule, never the value.
fn destination_name(raw: &str) -> Result<&str, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("is empty; give the destination a name or leave `name` out".into());
    }
    if name.chars().count() > MAX_DESTINATION_NAME_CHARS {
        return Err(format!(
            "is longer than {MAX_DESTINATION_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("holds a control character (a line break or tab, say)".into());
    }
    Ok(name)
}

/// A destination without a name is known by a digest of its URL: stable, and not the credential.
fn url_key(url: &Url) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, url.as_str().as_bytes());
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("url-{hex}")
}

/// The routing rules of one `destinations` entry; each is optional and an empty list allows all.
fn parse_route(
    entry: &Map<String, Value>,
    path: &dyn Fn(&str) -> String,
) -> Result<Route, SecretFormatError> {
    let list = |name: &str| -> Result<Vec<&Value>, SecretFormatError> {
        match entry.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.iter().collect()),
            Some(_) => Err(SecretFormatError::Field {
                field: path(name),
                reason: "must be a list".into(),
            }),
        }
    };
    let bad = |name: &str, reason: String| SecretFormatError::Field {
        field: path(name),
        reason,
    };
    let mut route = Route::default();
    for value in list("apps")? {
        let raw = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(bad("apps", format!("holds `{other}`, not an app id"))),
        };
        route
            .apps
            .push(AppId::parse_any(&raw).map_err(|e| bad("apps", e.to_string()))?);
    }
    for value in list("ratings")? {
        match value.as_u64() {
            Some(r @ 1..=5) => route.ratings.push(r as u8),
            _ => {
                return Err(bad(
                    "ratings",
                    format!("holds `{value}`; ratings are 1 to 5"),
                ));
            }
        }
    }
    for value in list("territories")? {
        match value.as_str().map(str::trim) {
            Some(t) if t.len() == 3 && t.chars().all(|c| c.is_ascii_alphabetic()) => {
                route.territories.push(t.to_ascii_uppercase())
            }
            _ => {
                return Err(bad(
                    "territories",
                    format!("holds `{value}`; use ISO 3166-1 alpha-3 codes such as \"USA\""),
                ));
            }
        }
    }
    for value in list("languages")? {
        // A language subtag: 2 or 3 letters (ISO 639), as the part of a tag before any `-`.
        match value.as_str().map(str::trim) {
            Some(l) if (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()) => {
                route.languages.push(l.to_ascii_lowercase())
            }
            _ => {
                return Err(bad(
                    "languages",
                    format!(
                        "holds `{value}`; use language codes such as \"en\" (it takes en-GB, en-US, …)"
                    ),
                ));
            }
        }
    }
    for (name, keywords) in [
        ("include_keywords", &mut route.include_keywords),
        ("exclude_keywords", &mut route.exclude_keywords),
    ] {
        for value in list(name)? {
            match value.as_str().map(str::trim) {
                Some(k) if !k.is_empty() => keywords.push(k.to_lowercase()),
                _ => return Err(bad(name, format!("holds `{value}`, not a keyword"))),
            }
        }
    }
    Ok(route)
}

/// `signing_secret` in `fields`: absent, or a non-empty string (an empty one is a mistake that
/// would silently turn signing off).
fn signing_secret(
    fields: &Map<String, Value>,
    path: String,
) -> Result<Option<SecretString>, SecretFormatError> {
    match fields.get("signing_secret") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(SecretString::from(s.clone()))),
        Some(Value::String(_)) => Err(SecretFormatError::Field {
            field: path,
            reason: "is empty; set it or leave it out".into(),
        }),
        Some(_) => Err(SecretFormatError::Field {
            field: path,
            reason: "must be a string".into(),
        }),
    }
}

/// Only `json` receivers check signatures; chat platforms would ignore them.
fn signing_for(
    format: WebhookFormat,
    own: Option<SecretString>,
    default: &Option<SecretString>,
) -> Option<SecretString> {
    (format == WebhookFormat::Json)
        .then(|| own.or_else(|| default.clone()))
        .flatten()
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
            verifies_with_public_key(&parsed.api_key.unwrap().signing_key);
        }
    }

    #[test]
    fn infers_slack_and_individual_keys() {
        let mut fields = full(P8);
        fields.as_object_mut().unwrap().remove("issuer_id");
        let parsed = secret(fields).unwrap();
        assert_eq!(parsed.api_key.unwrap().issuer_id, None);
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
        let mut fields = full(P8);
        fields["webhook_url"] = "https://example.com/hook".into();
        fields["signing_secret"] = "whsec_hidden".into();
        let parsed = secret(fields).unwrap();
        let destination = &parsed.destinations[0];
        let shown = format!(
            "{parsed:?} {:?} {:?}",
            destination.url, destination.signing_secret
        );
        assert!(!shown.contains("example.com") && !shown.contains("BEGIN"));
        assert!(!shown.contains("whsec_hidden"));
    }

    fn with_destinations(destinations: Value) -> Value {
        let mut fields = full(P8);
        fields.as_object_mut().unwrap().remove("webhook_url");
        fields["destinations"] = destinations;
        fields
    }

    #[test]
    fn destinations_each_have_a_format_named_or_inferred() {
        let parsed = secret(with_destinations(serde_json::json!([
            {"url": "https://discord.com/api/webhooks/1/x"},
            {"url": "https://example.com/a", "format": "teams", "name": "ops"},
            {"url": "https://chat.googleapis.com/v1/spaces/A/messages?key=k&token=t"},
            {"url": "https://example.com/b"},
        ])))
        .unwrap();
        let got: Vec<_> = parsed
            .destinations
            .iter()
            .map(|d| (d.format, d.label.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (WebhookFormat::Discord, "destinations[0] (discord)"),
                (WebhookFormat::Teams, "ops (teams)"),
                (WebhookFormat::GoogleChat, "destinations[2] (googlechat)"),
                (WebhookFormat::Json, "destinations[3] (json)"),
            ]
        );
    }

    #[test]
    fn destination_rules_are_parsed_and_keys_never_hold_the_url() {
        let parsed = secret(with_destinations(serde_json::json!([
            {"url": "https://example.com/secret-token-1", "apps": ["1", 2], "ratings": [1, 2],
             "territories": ["usa", "JPN"], "include_keywords": ["Crash"],
             "exclude_keywords": ["REFUND"]},
            {"url": "https://example.com/secret-token-2", "name": "support"},
        ])))
        .unwrap();
        let route = &parsed.destinations[0].route;
        assert_eq!(
            route.apps,
            [AppId::parse("1").unwrap(), AppId::parse("2").unwrap()]
        );
        assert_eq!(route.ratings, [1, 2]);
        assert_eq!(route.territories, ["USA", "JPN"]);
        assert_eq!(route.include_keywords, ["crash"]);
        assert_eq!(route.exclude_keywords, ["refund"]);
        let key = &parsed.destinations[0].key;
        assert!(
            key.starts_with("url-") && !key.contains("secret-token"),
            "{key}"
        );
        assert_eq!(parsed.destinations[1].key, "support");
        assert_eq!(parsed.destinations[1].route, Route::default());
    }

    #[test]
    fn bad_destination_rules_name_the_field() {
        let cases = [
            (
                serde_json::json!({"ratings": [6]}),
                "destinations[0].ratings",
            ),
            (serde_json::json!({"ratings": 1}), "must be a list"),
            (serde_json::json!({"territories": ["US"]}), "alpha-3"),
            (serde_json::json!({"apps": ["x"]}), "destinations[0].apps"),
            (
                serde_json::json!({"include_keywords": [""]}),
                "not a keyword",
            ),
            (
                serde_json::json!({"rating": [1]}),
                "`destinations[0].rating` is not a destination field",
            ),
        ];
        for (rules, expected) in cases {
            let mut entry = rules.clone();
            entry["url"] = "https://example.com/secret-token".into();
            let err = secret(with_destinations(serde_json::json!([entry])))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{rules}: {err}");
            assert!(!err.contains("secret-token"), "{err}");
        }
        let twice = secret(with_destinations(serde_json::json!([
            {"url": "https://example.com/a", "name": "x"},
            {"url": "https://example.com/b", "name": "x"},
        ])))
        .unwrap_err()
        .to_string();
        assert!(twice.contains("destinations[1].name"), "{twice}");
    }

    #[test]
    fn destination_names_are_bounded_and_errors_never_show_them() {
        let name = |name: Value| {
            secret(with_destinations(serde_json::json!([
                {"url": "https://example.com/a", "name": "first"},
                {"url": "https://example.com/b"},
                {"url": "https://example.com/c", "name": name},
            ])))
        };
        let longest = "é".repeat(MAX_DESTINATION_NAME_CHARS);
        let parsed = name(format!("  {longest} ").into()).unwrap();
        assert_eq!(parsed.destinations[2].key, longest);
        let long = format!("NAME-MARKER{}", "x".repeat(MAX_DESTINATION_NAME_CHARS));
        let cases = [
            (long, "`destinations[2].name` is longer than 100 characters"),
            (String::new(), "`destinations[2].name` is empty"),
            (" \t ".to_owned(), "`destinations[2].name` is empty"),
            (
                "NAME-MARKER\nsecond line".to_owned(),
                "`destinations[2].name` holds a control character",
            ),
            (
                "NAME-MARKER\u{7}".to_owned(),
                "`destinations[2].name` holds a control character",
            ),
        ];
        for (value, expected) in cases {
            let message = name(value.clone().into()).unwrap_err().to_string();
            assert!(message.contains(expected), "{value:?}: {message}");
            assert!(!message.contains("NAME-MARKER"), "{message}");
        }
        let message = name(7.into()).unwrap_err().to_string();
        assert!(
            message.contains("`destinations[2].name` must be a string"),
            "{message}"
        );
    }

    #[test]
    fn webhook_url_and_destinations_add_up() {
        let mut fields = full(P8);
        fields["destinations"] = serde_json::json!([{"url": "https://example.com/b"}]);
        let parsed = RelaySecret::parse(
            &SecretString::from(fields.to_string()),
            Some(WebhookFormat::Json),
        )
        .unwrap();
        let formats: Vec<_> = parsed.destinations.iter().map(|d| d.format).collect();
        // WEBHOOK_FORMAT applies to `webhook_url` alone.
        assert_eq!(formats, [WebhookFormat::Json, WebhookFormat::Json]);
        assert_eq!(parsed.destinations[0].label, "webhook_url (json)");
    }

    #[test]
    fn signing_secrets_apply_to_json_destinations_own_first() {
        let mut fields = with_destinations(serde_json::json!([
            {"url": "https://example.com/a"},
            {"url": "https://example.com/b", "signing_secret": "own"},
            {"url": "https://hooks.slack.com/services/T/B/x", "signing_secret": "ignored"},
        ]));
        fields["signing_secret"] = "shared".into();
        let parsed = secret(fields).unwrap();
        let signing: Vec<_> = parsed
            .destinations
            .iter()
            .map(|d| {
                d.signing_secret
                    .as_ref()
                    .map(|s| s.expose_secret().to_owned())
            })
            .collect();
        assert_eq!(
            signing,
            [Some("shared".to_owned()), Some("own".to_owned()), None]
        );
        let unsigned = secret(with_destinations(
            serde_json::json!([{"url": "https://example.com/a"}]),
        ))
        .unwrap();
        assert!(unsigned.destinations[0].signing_secret.is_none());
    }

    #[test]
    fn only_slack_destinations_may_be_interactive_and_none_is_by_default() {
        let mut fields = with_destinations(serde_json::json!([
            {"url": "https://hooks.slack.com/services/T/B/a", "interactive": true},
            {"url": "https://hooks.slack.com/services/T/B/b", "interactive": false},
            {"url": "https://hooks.slack.com/services/T/B/c"},
            {"url": "https://hooks.slack.com/services/T/B/d", "interactive": null},
            {"url": "https://example.com/e", "format": "slack", "interactive": true},
            {"url": "https://discord.com/api/webhooks/1/x", "interactive": false},
        ]));
        fields["webhook_url"] = "https://hooks.slack.com/services/T/B/top".into();
        let parsed = secret(fields).unwrap();
        let interactive: Vec<(&str, bool)> = parsed
            .destinations
            .iter()
            .map(|d| (d.label.as_str(), d.interactive))
            .collect();
        assert_eq!(
            interactive,
            [
                ("webhook_url (slack)", false),
                ("destinations[0] (slack)", true),
                ("destinations[1] (slack)", false),
                ("destinations[2] (slack)", false),
                ("destinations[3] (slack)", false),
                ("destinations[4] (slack)", true),
                ("destinations[5] (discord)", false),
            ]
        );

        let refused = |entry: Value| {
            secret(with_destinations(serde_json::json!([
                {"url": "https://hooks.slack.com/services/T/B/ok"},
                entry,
            ])))
            .unwrap_err()
            .to_string()
        };
        for value in [
            serde_json::json!("true"),
            serde_json::json!(1),
            serde_json::json!([true]),
        ] {
            let message = refused(
                serde_json::json!({"url": "https://hooks.slack.com/services/T/B/secret-path", "interactive": value}),
            );
            assert!(
                message.contains("`destinations[1].interactive` must be true or false"),
                "{value}: {message}"
            );
            assert!(!message.contains("secret-path"), "{message}");
        }
        for (entry, format) in [
            (
                serde_json::json!({"url": "https://discord.com/api/webhooks/1/secret-path", "interactive": true}),
                "discord",
            ),
            (
                serde_json::json!({"url": "https://example.com/secret-path", "format": "teams", "interactive": true}),
                "teams",
            ),
            (
                serde_json::json!({"url": "https://chat.googleapis.com/v1/spaces/A/messages?key=secret-path", "interactive": true}),
                "googlechat",
            ),
            (
                serde_json::json!({"url": "https://example.com/secret-path", "interactive": true}),
                "json",
            ),
        ] {
            let message = refused(entry);
            assert!(
                message.contains(&format!(
                    "`destinations[1].interactive` is true for a `{format}` destination; only Slack destinations can carry a Reply button"
                )),
                "{message}"
            );
            assert!(!message.contains("secret-path"), "{message}");
        }
        let typo = refused(
            serde_json::json!({"url": "https://hooks.slack.com/services/T/B/x", "interactve": true}),
        );
        assert!(
            typo.contains("`destinations[1].interactve` is not a destination field")
                && typo.contains("interactive"),
            "{typo}"
        );
    }

    #[test]
    fn destination_errors_name_the_field_and_never_the_value() {
        let cases = [
            (
                serde_json::json!([]),
                "`destinations` must be a non-empty list",
            ),
            (serde_json::json!("https://x.y"), "`destinations` must be"),
            (
                serde_json::json!([7]),
                "`destinations[0]` must be an object",
            ),
            (
                serde_json::json!([{"format": "json"}]),
                "`destinations[0].url` is missing",
            ),
            (
                serde_json::json!([{"url": "http://example.com/secret-path"}]),
                "`destinations[0].url` plain http://",
            ),
            (
                serde_json::json!([{"url": "https://example.com/secret-path", "format": "irc"}]),
                "`destinations[0].format` `irc` is not a format; use `slack`, `discord`, `teams`, `googlechat` or `json`",
            ),
            (
                serde_json::json!([{"url": "https://example.com/secret-path", "signing_secret": " "}]),
                "`destinations[0].signing_secret` is empty",
            ),
            (
                serde_json::json!([{"url": "https://example.com/secret-path", "signing_secret": 5}]),
                "`destinations[0].signing_secret` must be a string",
            ),
        ];
        for (destinations, expected) in cases {
            let message = secret(with_destinations(destinations))
                .unwrap_err()
                .to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            assert!(!message.contains("secret-path"), "{message}");
        }
        let mut fields = full(P8);
        fields["signing_secret"] = "".into();
        let message = secret(fields).unwrap_err().to_string();
        assert!(message.contains("`signing_secret` is empty"), "{message}");
        // Nowhere to deliver: no `webhook_url`, and no `destinations` or a null one.
        for destinations in [None, Some(Value::Null)] {
            let mut fields = full(P8);
            fields.as_object_mut().unwrap().remove("webhook_url");
            if let Some(destinations) = destinations {
                fields["destinations"] = destinations;
            }
            assert_eq!(
                secret(fields).unwrap_err(),
                SecretFormatError::Missing("webhook_url")
            );
        }
    }

    #[test]
    fn a_slack_app_is_read_and_each_mistake_named_without_its_value() {
        let with = |app: Value| {
            let secret = serde_json::json!({
                "webhook_url": "https://hooks.slack.com/services/T/B/x",
                "slack_app": app,
            });
            RelaySecret::parse(&SecretString::from(secret.to_string()), None)
        };
        let app = with(serde_json::json!({
            "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5",
            "bot_token": " xoxb-1-2-secret ",
            "allowed_team_ids": ["T0123ABC", "E99"],
            "allowed_user_ids": ["U42"],
        }))
        .unwrap()
        .slack_app
        .unwrap();
        assert_eq!(app.bot_token.expose_secret(), "xoxb-1-2-secret");
        assert_eq!(app.allowed_team_ids, ["T0123ABC", "E99"]);
        assert_eq!(app.allowed_user_ids, Some(vec!["U42".to_owned()]));
        let shown = format!("{app:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("8f74"),
            "{shown}"
        );
        let without = serde_json::json!({"webhook_url": "https://hooks.slack.com/services/T/B/x"});
        assert!(
            RelaySecret::parse(&SecretString::from(without.to_string()), None)
                .unwrap()
                .slack_app
                .is_none()
        );
        let good = serde_json::json!({
            "signing_secret": "s3cr3t-value",
            "bot_token": "xoxb-token-value",
            "allowed_team_ids": ["T1"],
        });
        let changed = |field: &str, value: Value| {
            let mut app = good.clone();
            if value.is_null() {
                app.as_object_mut().unwrap().remove(field);
            } else {
                app[field] = value;
            }
            let secret = with(app).expect("a slack_app mistake never fails the secret");
            assert!(secret.slack_app.is_none(), "{field} accepted");
            secret
                .slack_app_error
                .expect("the mistake is kept")
                .to_string()
        };
        for (field, value, expected) in [
            (
                "signing_secret",
                Value::Null,
                "`slack_app.signing_secret` is missing",
            ),
            (
                "bot_token",
                "xoxp-user-token-value".into(),
                "starts with `xoxb-`",
            ),
            (
                "allowed_team_ids",
                Value::Null,
                "must be a non-empty list of Slack ids starting with `T` or `E`",
            ),
            ("allowed_team_ids", serde_json::json!([]), "non-empty list"),
            (
                "allowed_team_ids",
                serde_json::json!(["t1"]),
                "not a Slack id",
            ),
            (
                "allowed_team_ids",
                serde_json::json!(["éT1"]),
                "not a Slack id",
            ),
            (
                "allowed_user_ids",
                serde_json::json!(["T1"]),
                "starting with `U` or `W`",
            ),
            (
                "channel",
                "C1".into(),
                "`slack_app.channel` is not a `slack_app` field",
            ),
        ] {
            let err = changed(field, value);
            assert!(err.contains(expected), "{field}: {err}");
            assert!(
                !err.contains("xoxp-user") && !err.contains("s3cr3t"),
                "{err}"
            );
        }
        assert!(
            with("text".into())
                .unwrap()
                .slack_app_error
                .unwrap()
                .to_string()
                .contains("`slack_app` must be an object")
        );
    }
}
