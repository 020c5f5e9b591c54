//! What Slack sends to the interaction endpoint (a Lambda Function URL, payload format 2.0),
//! checked before anything in it is trusted: Slack's signature over the raw body, a timestamp
//! within five minutes, a body within 1 MB; then the interaction, its team and user, and the
//! review the button names.
//!
//! A replay inside the five minutes is accepted, as Slack's model allows: the store's answer
//! replaces itself, so the same answer sent twice changes nothing.

use std::collections::HashMap;

use aws_lc_rs::hmac;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::{AppId, Store};

/// Slack's interaction payloads echo the whole message: reviews in non-Latin scripts make
/// payloads of 100 KB. Anything over 1 MB is not Slack's.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Slack's advice: refuse a request whose timestamp is more than five minutes off.
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;

/// The longest review id either store gives, with room to spare.
const MAX_REVIEW_ID_LEN: usize = 200;

/// A Function URL request, the parts the endpoint reads.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionUrlRequest {
    /// Lower-case names, as Function URLs deliver them.
    #[serde(default)]
    pub headers: HashMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(rename = "isBase64Encoded", default)]
    pub is_base64_encoded: bool,
}

/// Why a request is refused. Nothing in it was acted on. The messages never repeat the body, the
/// signature or the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not signed: the `X-Slack-Signature` or `X-Slack-Request-Timestamp` header is missing")]
    NotSigned,
    #[error("the timestamp `X-Slack-Request-Timestamp` is not a Unix time in seconds")]
    BadTimestamp,
    #[error(
        "the request is {skew_seconds} s away from this function's clock, more than the {MAX_SKEW_SECONDS} s Slack allows: an old request replayed, or a clock that is off"
    )]
    Stale { skew_seconds: i64 },
    #[error("the signature does not match the body under the Slack app's signing secret")]
    BadSignature,
    #[error("the body is {bytes} bytes, more than the {MAX_BODY_BYTES} an interaction may be")]
    TooLarge { bytes: usize },
    #[error("the body is not valid base64")]
    BadEncoding,
    #[error("the interaction is malformed: {0}")]
    Malformed(String),
    #[error("the Slack workspace is not allowed to answer reviews (`allowed_team_ids`)")]
    TeamNotAllowed,
    #[error("this Slack user is not allowed to answer reviews (`allowed_user_ids`)")]
    UserNotAllowed,
}

impl Refused {
    /// The HTTP status to answer Slack with: 401 for what fails the signature checks, 413 for a
    /// body too large, 400 for the rest (a user or team not allowed gets an ephemeral message
    /// instead, with 200, so the person who clicked sees why).
    pub fn status(&self) -> u16 {
        match self {
            Refused::NotSigned
            | Refused::BadTimestamp
            | Refused::Stale { .. }
            | Refused::BadSignature => 401,
            Refused::TooLarge { .. } => 413,
            Refused::BadEncoding | Refused::Malformed(_) => 400,
            Refused::TeamNotAllowed | Refused::UserNotAllowed => 200,
        }
    }
}

/// The raw bytes Slack signed: the body as sent, base64-decoded when the Function URL says so.
/// Refuses a body over [`MAX_BODY_BYTES`] before and after decoding.
pub fn raw_body(request: &FunctionUrlRequest) -> Result<Vec<u8>, Refused> {
    let body = request.body.as_deref().unwrap_or_default();
    // Base64 is a third longer than what it encodes.
    let limit = if request.is_base64_encoded {
        MAX_BODY_BYTES / 3 * 4 + 4
    } else {
        MAX_BODY_BYTES
    };
    if body.len() > limit {
        return Err(Refused::TooLarge { bytes: body.len() });
    }
    let bytes = if request.is_base64_encoded {
        aws_smithy_types::base64::decode(body).map_err(|_| Refused::BadEncoding)?
    } else {
        body.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Refused::TooLarge { bytes: bytes.len() });
    }
    Ok(bytes)
}

/// Checks Slack's signature: `X-Slack-Signature` is `v0=` and the lowercase hex HMAC-SHA256 of
/// `v0:{X-Slack-Request-Timestamp}:{body}` under `signing_secret`, compared in constant time,
/// and the timestamp is within [`MAX_SKEW_SECONDS`] of `now_secs`.
pub fn verify(
    signing_secret: &SecretString,
    headers: &HashMap<String, String>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), Refused> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    };
    let (Some(timestamp), Some(signature)) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    ) else {
        return Err(Refused::NotSigned);
    };
    let sent: i64 = timestamp.parse().map_err(|_| Refused::BadTimestamp)?;
    let skew_seconds = now_secs.saturating_sub(sent).saturating_abs();
    if skew_seconds > MAX_SKEW_SECONDS {
        return Err(Refused::Stale { skew_seconds });
    }
    let tag = signature
        .strip_prefix("v0=")
        .and_then(hex_bytes)
        .ok_or(Refused::BadSignature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, signing_secret.expose_secret().as_bytes());
    let mut signed = Vec::with_capacity(body.len() + timestamp.len() + 4);
    signed.extend_from_slice(b"v0:");
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b':');
    signed.extend_from_slice(body);
    hmac::verify(&key, &signed, &tag).map_err(|_| Refused::BadSignature)
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// The review a Reply button names, as its value carries it: `{store code}:{app id}:{review id}`
/// (`app_store:1234567890:5f2b…`, `google_play:com.example.app:gp:AOqp…`). Trusted only after
/// [`verify`], and only for an app the deployment relays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonValue {
    pub app: AppId,
    pub review_id: String,
}

impl ButtonValue {
    pub fn encode(app: &AppId, review_id: &str) -> String {
        format!("{}:{app}:{review_id}", app.store().code())
    }

    /// Reads a button's value; the app id must be of the store it names, and the review id of
    /// the shape stores give (letters, digits, `-`, `_`, `.`, `:`; not `.` or `..`).
    pub fn parse(value: &str) -> Result<Self, Refused> {
        let malformed = |what: &str| Refused::Malformed(format!("the button's value: {what}"));
        let mut parts = value.splitn(3, ':');
        let (Some(store), Some(app), Some(review_id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not `store:app:review`"));
        };
        let app = match store {
            "app_store" => AppId::parse(app),
            "google_play" => AppId::play(app),
            _ => return Err(malformed("an unknown store")),
        }
        .map_err(|_| malformed("not an app id of its store"))?;
        let shaped = !review_id.is_empty()
            && review_id.len() <= MAX_REVIEW_ID_LEN
            && review_id != "."
            && review_id != ".."
            && review_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !shaped {
            return Err(malformed("not a review id"));
        }
        Ok(Self {
            app,
            review_id: review_id.to_owned(),
        })
    }

    pub fn store(&self) -> Store {
        self.app.store()
    }
}

/// The action id of the Reply button in review messages.
pub const REPLY_ACTION: &str = "reply";
/// Where in `blocks` (a message's) the Reply button carrying `value` is: its actions block.
pub fn reply_button_at(blocks: &[serde_json::Value], value: &str) -> Option<usize> {
    blocks.iter().position(|block| {
        block["type"] == "actions"
            && block["elements"].as_array().is_some_and(|elements| {
                elements
                    .iter()
                    .any(|e| e["action_id"] == REPLY_ACTION && e["value"] == value)
            })
    })
}

/// The callback id of the modal that takes the answer.
pub const REPLY_VIEW: &str = "reply";
/// The block and action ids of the modal's text input.
pub const ANSWER_BLOCK: &str = "answer";
pub const ANSWER_INPUT: &str = "text";

/// What someone did in Slack, checked for shape (not yet for who they are: see [`Allowed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub team_id: String,
    /// The user's own workspace, when Slack says (it differs in a shared channel).
    pub user_team_id: Option<String>,
    pub user_id: String,
    pub kind: InteractionKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractionKind {
    /// The Reply button under a review: open the modal with `trigger_id` (it lives 3 seconds).
    Reply {
        trigger_id: String,
        /// Where the message can be updated: `https://hooks.slack.com/…` only.
        response_url: Option<String>,
        button: ButtonValue,
        /// The message clicked, as Slack echoes it (absent for an ephemeral message).
        message: Option<serde_json::Value>,
    },
    /// The modal submitted: `private_metadata` as the modal was opened with, and the answer.
    Submitted {
        private_metadata: String,
        text: String,
        /// The block holding the answer's input, to name in an error shown under it.
        block_id: String,
    },
    /// Anything else Slack sends this app (another button, a closed modal): acknowledged, and
    /// nothing done.
    Other,
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: String,
    team: Option<RawId>,
    user: Option<RawUser>,
    trigger_id: Option<String>,
    response_url: Option<String>,
    #[serde(default)]
    actions: Vec<RawAction>,
    view: Option<RawView>,
    message: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawId {
    id: String,
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct RawAction {
    action_id: String,
    value: Option<String>,
}

#[derive(Deserialize)]
struct RawView {
    callback_id: Option<String>,
    private_metadata: Option<String>,
    state: Option<RawState>,
}

#[derive(Deserialize)]
struct RawState {
    values: HashMap<String, HashMap<String, RawInput>>,
}

#[derive(Deserialize)]
struct RawInput {
    value: Option<String>,
}

/// Whether `url` is one Slack gives for updating a message: `https://hooks.slack.com/…`.
pub fn is_slack_response_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        u.scheme() == "https" && u.host_str() == Some("hooks.slack.com") && u.port().is_none()
    })
}

/// Where a `response_url` may point: `https://hooks.slack.com/…`, or the origin of Slack's Web
/// API as `SLACK_API_URL` names it (`https://slack.com` unless a test points it elsewhere).
/// Anything else in a payload is dropped, so nothing is ever posted to a host Slack did not give.
#[derive(Debug, Clone)]
pub struct ResponseUrls {
    api: url::Origin,
}

impl ResponseUrls {
    pub fn new(slack_api_url: &url::Url) -> Self {
        Self {
            api: slack_api_url.origin(),
        }
    }

    pub fn allows(&self, url: &str) -> bool {
        is_slack_response_url(url)
            || url::Url::parse(url).is_ok_and(|u| u.origin() == self.api && self.api.is_tuple())
    }
}

/// Reads an interaction from a verified body: the form field `payload`, holding Slack's JSON.
pub fn parse_interaction(body: &[u8], urls: &ResponseUrls) -> Result<Interaction, Refused> {
    let malformed = |what: &str| Refused::Malformed(what.to_owned());
    let payload = url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| malformed("no `payload` field"))?;
    let raw: RawInteraction = serde_json::from_str(&payload)
        .map_err(|e| Refused::Malformed(format!("`payload` is not an interaction ({e})")))?;
    let team_id = raw.team.ok_or_else(|| malformed("no `team.id`"))?.id;
    let user = raw.user.ok_or_else(|| malformed("no `user.id`"))?;
    let kind = match raw.kind.as_str() {
        "block_actions" => match raw.actions.iter().find(|a| a.action_id == REPLY_ACTION) {
            None => InteractionKind::Other,
            Some(action) => InteractionKind::Reply {
                trigger_id: raw
                    .trigger_id
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| malformed("no `trigger_id`"))?,
                response_url: raw.response_url.filter(|u| urls.allows(u)),
                button: ButtonValue::parse(action.value.as_deref().unwrap_or_default())?,
                message: raw.message.filter(serde_json::Value::is_object),
            },
        },
        "view_submission" => {
            let view = raw.view.ok_or_else(|| malformed("no `view`"))?;
            if view.callback_id.as_deref() != Some(REPLY_VIEW) {
                InteractionKind::Other
            } else {
                // The input's block is `answer`, or another id once the modal was filled in
                // with the store's answer (so Slack shows the new initial value).
                let (block_id, text) = view
                    .state
                    .and_then(|state| {
                        state.values.into_iter().find_map(|(block, inputs)| {
                            let input = inputs.get(ANSWER_INPUT)?;
                            Some((block, input.value.clone().unwrap_or_default()))
                        })
                    })
                    .unwrap_or_else(|| (ANSWER_BLOCK.to_owned(), String::new()));
                InteractionKind::Submitted {
                    private_metadata: view.private_metadata.unwrap_or_default(),
                    text,
                    block_id,
                }
            }
        }
        _ => InteractionKind::Other,
    };
    Ok(Interaction {
        team_id,
        user_team_id: user.team_id,
        user_id: user.id,
        kind,
    })
}

/// Who may answer reviews from Slack: the secret's `slack_app.allowed_team_ids` and, when set,
/// `allowed_user_ids`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    pub team_ids: Vec<String>,
    pub user_ids: Option<Vec<String>>,
}

impl Allowed {
    /// Both the payload's team and the user's own team must be allowed (a user of another
    /// workspace can act in a shared channel), and the user, when users are listed.
    pub fn check(
        &self,
        team_id: &str,
        user_team_id: Option<&str>,
        user_id: &str,
    ) -> Result<(), Refused> {
        let team_allowed = |id: &str| self.team_ids.iter().any(|allowed| allowed == id);
        if !team_allowed(team_id) || !user_team_id.is_none_or(team_allowed) {
            return Err(Refused::TeamNotAllowed);
        }
        match &self.user_ids {
            Some(users) if !users.iter().any(|allowed| allowed == user_id) => {
                Err(Refused::UserNotAllowed)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

    fn sign(timestamp: &str, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
        let mut signed = format!("v0:{timestamp}:").into_bytes();
        signed.extend_from_slice(body);
        let tag = hmac::sign(&key, &signed);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("v0={hex}")
    }

    fn headers(timestamp: &str, signature: &str) -> HashMap<String, String> {
        HashMap::from([
            ("x-slack-request-timestamp".to_owned(), timestamp.to_owned()),
            ("x-slack-signature".to_owned(), signature.to_owned()),
        ])
    }

    #[test]
    fn matches_slacks_documented_example() {
        // The example in Slack's "Verifying requests from Slack".
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        let secret = SecretString::from(SECRET);
        assert_eq!(
            verify(
                &secret,
                &headers("1531420618", signature),
                body,
                1_531_420_618
            ),
            Ok(())
        );
        assert_eq!(sign("1531420618", body), signature);
    }

    #[test]
    fn a_changed_body_a_stale_or_future_time_or_no_signature_is_refused() {
        let secret = SecretString::from(SECRET);
        let now = 1_764_000_000;
        let body = b"payload=%7B%7D";
        let good = sign(&now.to_string(), body);
        assert_eq!(
            verify(&secret, &headers(&now.to_string(), &good), body, now),
            Ok(())
        );
        assert_eq!(
            verify(
                &secret,
                &headers(&now.to_string(), &good),
                b"payload=%7B1%7D",
                now
            ),
            Err(Refused::BadSignature)
        );
        let other = SecretString::from("another secret");
        assert_eq!(
            verify(&other, &headers(&now.to_string(), &good), body, now),
            Err(Refused::BadSignature)
        );
        for (sent, skew) in [(now - 3_600, 3_600), (now + 301, 301)] {
            let signed = sign(&sent.to_string(), body);
            assert_eq!(
                verify(&secret, &headers(&sent.to_string(), &signed), body, now),
                Err(Refused::Stale { skew_seconds: skew })
            );
        }
        let edge = now - 300;
        let signed = sign(&edge.to_string(), body);
        assert_eq!(
            verify(&secret, &headers(&edge.to_string(), &signed), body, now),
            Ok(())
        );
        assert_eq!(
            verify(&secret, &HashMap::new(), body, now),
            Err(Refused::NotSigned)
        );
        assert_eq!(
            verify(&secret, &headers("soon", &good), body, now),
            Err(Refused::BadTimestamp)
        );
        for bad in [
            "",
            "v0=",
            "v1=00",
            &good[..good.len() - 2],
            &good.replace("v0=", ""),
        ] {
            assert_eq!(
                verify(&secret, &headers(&now.to_string(), bad), body, now),
                Err(Refused::BadSignature),
                "{bad}"
            );
        }
        // Header names in any case, as a proxy may send them.
        let mixed = HashMap::from([
            ("X-Slack-Request-Timestamp".to_owned(), now.to_string()),
            ("X-Slack-Signature".to_owned(), good.clone()),
        ]);
        assert_eq!(verify(&secret, &mixed, body, now), Ok(()));
    }

    #[test]
    fn the_raw_body_is_base64_decoded_and_limited_to_a_megabyte() {
        let plain = FunctionUrlRequest {
            headers: HashMap::new(),
            body: Some("payload=%7B%7D".into()),
            is_base64_encoded: false,
        };
        assert_eq!(raw_body(&plain).unwrap(), b"payload=%7B%7D");
        let encoded = FunctionUrlRequest {
            body: Some(aws_smithy_types::base64::encode("payload=%7B%7D")),
            is_base64_encoded: true,
            ..plain.clone()
        };
        assert_eq!(raw_body(&encoded).unwrap(), b"payload=%7B%7D");
        let garbled = FunctionUrlRequest {
            body: Some("*not base64*".into()),
            ..encoded.clone()
        };
        assert_eq!(raw_body(&garbled), Err(Refused::BadEncoding));
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        let too_large = FunctionUrlRequest {
            body: Some(big.clone()),
            ..plain.clone()
        };
        assert_eq!(
            raw_body(&too_large),
            Err(Refused::TooLarge {
                bytes: MAX_BODY_BYTES + 1
            })
        );
        let too_large_encoded = FunctionUrlRequest {
            body: Some(aws_smithy_types::base64::encode(&big)),
            ..encoded
        };
        assert!(matches!(
            raw_body(&too_large_encoded),
            Err(Refused::TooLarge { .. })
        ));
        let at_limit = FunctionUrlRequest {
            body: Some("x".repeat(MAX_BODY_BYTES)),
            ..plain
        };
        assert_eq!(raw_body(&at_limit).unwrap().len(), MAX_BODY_BYTES);
        let event: FunctionUrlRequest = serde_json::from_str(
            r#"{"version": "2.0", "headers": {"x-slack-signature": "v0=00"},
                "body": "cGF5bG9hZD0lN0IlN0Q=", "isBase64Encoded": true}"#,
        )
        .unwrap();
        assert_eq!(raw_body(&event).unwrap(), b"payload=%7B%7D");
    }

    #[test]
    fn a_button_names_an_app_of_its_store_and_a_review_id_of_a_stores_shape() {
        let app = AppId::parse("1234567890").unwrap();
        let value = ButtonValue::encode(&app, "5f2b6c1e-0a1b-4c2d-9e3f-1234567890ab");
        assert_eq!(
            ButtonValue::parse(&value).unwrap(),
            ButtonValue {
                app: app.clone(),
                review_id: "5f2b6c1e-0a1b-4c2d-9e3f-1234567890ab".into(),
            }
        );
        let play = AppId::play("com.example.app").unwrap();
        let parsed = ButtonValue::parse(&ButtonValue::encode(&play, "gp:AOqpTOF1")).unwrap();
        assert_eq!(parsed.store(), Store::GooglePlay);
        assert_eq!(parsed.review_id, "gp:AOqpTOF1");
        for bad in [
            "",
            "app_store:1234567890",
            "itunes:1234567890:r1",
            "app_store:com.example.app:r1",
            "google_play:1234567890:r1",
            "app_store:1234567890:",
            "app_store:1234567890:..",
            "app_store:1234567890:../apps",
            "app_store:1234567890:r1?x=1",
            "app_store:1234567890:r 1",
        ] {
            assert!(
                matches!(ButtonValue::parse(bad), Err(Refused::Malformed(_))),
                "{bad}"
            );
        }
        let long = format!("app_store:1234567890:{}", "a".repeat(201));
        assert!(ButtonValue::parse(&long).is_err());
    }

    fn urls() -> ResponseUrls {
        ResponseUrls::new(&url::Url::parse("https://slack.com/api").unwrap())
    }

    fn parse_interaction(body: &[u8]) -> Result<Interaction, Refused> {
        super::parse_interaction(body, &urls())
    }

    #[test]
    fn a_response_url_is_slacks_or_on_the_web_apis_origin() {
        let local = ResponseUrls::new(&url::Url::parse("http://127.0.0.1:9/api").unwrap());
        assert!(local.allows("https://hooks.slack.com/actions/T1/1/x"));
        assert!(local.allows("http://127.0.0.1:9/actions/T1/1/x"));
        assert!(!local.allows("http://127.0.0.1:10/actions/T1/1/x"));
        assert!(!urls().allows("https://hooks.slack.com:8443/actions"));
        assert!(!urls().allows("http://hooks.slack.com/actions"));
        assert!(!urls().allows("https://example.com/actions"));
    }

    fn form(payload: &serde_json::Value) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
            .into_bytes()
    }

    #[test]
    fn a_click_on_reply_and_a_submitted_answer_are_read_from_the_payload() {
        let click = serde_json::json!({
            "type": "block_actions",
            "team": {"id": "T1"},
            "user": {"id": "U1", "team_id": "T1"},
            "trigger_id": "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
            "response_url": "https://hooks.slack.com/actions/T1/123/abc",
            "actions": [{"action_id": "reply", "value": "google_play:com.example.app:gp:AOqp", "type": "button"}],
            "message": {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "漢字".repeat(1000)}}]},
        });
        let read = parse_interaction(&form(&click)).unwrap();
        assert_eq!(read.team_id, "T1");
        assert_eq!(read.user_team_id.as_deref(), Some("T1"));
        let InteractionKind::Reply {
            trigger_id,
            response_url,
            button,
            message,
        } = read.kind
        else {
            panic!("a click on Reply: {read:?}");
        };
        assert!(trigger_id.starts_with("398738663015."));
        assert_eq!(
            response_url.as_deref(),
            Some("https://hooks.slack.com/actions/T1/123/abc")
        );
        assert_eq!(button.review_id, "gp:AOqp");
        assert_eq!(message, Some(click["message"].clone()));

        let mut elsewhere = click.clone();
        elsewhere["response_url"] = "https://hooks.slack.com.evil.example/actions".into();
        let read = parse_interaction(&form(&elsewhere)).unwrap();
        assert!(matches!(
            read.kind,
            InteractionKind::Reply {
                response_url: None,
                ..
            }
        ));

        let submitted = serde_json::json!({
            "type": "view_submission",
            "team": {"id": "T1"},
            "user": {"id": "U1", "team_id": "T1"},
            "view": {
                "callback_id": "reply",
                "private_metadata": "{\"k\":1}",
                "state": {"values": {"answer": {"text": {"type": "plain_text_input", "value": "Thanks!"}}}},
            },
        });
        assert_eq!(
            parse_interaction(&form(&submitted)).unwrap().kind,
            InteractionKind::Submitted {
                private_metadata: "{\"k\":1}".into(),
                text: "Thanks!".into(),
                block_id: "answer".into(),
            }
        );
        let closed =
            serde_json::json!({"type": "view_closed", "team": {"id": "T1"}, "user": {"id": "U1"}});
        assert_eq!(
            parse_interaction(&form(&closed)).unwrap().kind,
            InteractionKind::Other
        );
    }

    #[test]
    fn a_payload_that_is_not_an_interaction_is_refused_as_malformed() {
        let cases: Vec<Vec<u8>> = vec![
            b"text=hello".to_vec(),
            b"payload=not%20json".to_vec(),
            form(&serde_json::json!({"type": "block_actions", "user": {"id": "U1"}})),
            form(&serde_json::json!({"type": "block_actions", "team": {"id": "T1"}})),
            form(
                &serde_json::json!({"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
                "actions": [{"action_id": "reply", "value": "app_store:1:r1"}]}),
            ),
            form(
                &serde_json::json!({"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
                "trigger_id": "t", "actions": [{"action_id": "reply", "value": "app_store:1:../x"}]}),
            ),
            form(
                &serde_json::json!({"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1"}}),
            ),
        ];
        for body in cases {
            assert!(
                matches!(parse_interaction(&body), Err(Refused::Malformed(_))),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn the_team_the_users_own_team_and_a_listed_user_must_all_be_allowed() {
        let teams = Allowed {
            team_ids: vec!["T1".into()],
            user_ids: None,
        };
        assert_eq!(teams.check("T1", Some("T1"), "U1"), Ok(()));
        assert_eq!(teams.check("T1", None, "U1"), Ok(()));
        assert_eq!(
            teams.check("T2", Some("T1"), "U1"),
            Err(Refused::TeamNotAllowed)
        );
        assert_eq!(
            teams.check("T1", Some("T9"), "U1"),
            Err(Refused::TeamNotAllowed)
        );
        let users = Allowed {
            user_ids: Some(vec!["U1".into()]),
            ..teams
        };
        assert_eq!(users.check("T1", Some("T1"), "U1"), Ok(()));
        assert_eq!(
            users.check("T1", Some("T1"), "U2"),
            Err(Refused::UserNotAllowed)
        );
        assert_eq!(
            Allowed::default().check("T1", None, "U1"),
            Err(Refused::TeamNotAllowed)
        );
        for refused in [Refused::TeamNotAllowed, Refused::UserNotAllowed] {
            assert_eq!(refused.status(), 200, "an ephemeral message says why");
        }
        assert_eq!(Refused::BadSignature.status(), 401);
        assert_eq!(Refused::TooLarge { bytes: 1 }.status(), 413);
    }
}
