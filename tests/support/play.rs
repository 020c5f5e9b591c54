//! Google Play Developer API double: `GET /androidpublisher/v3/applications/{package}/reviews`
//! (`reviews.list`), `GET .../reviews/{reviewId}` (`reviews.get`), `POST .../reviews/{reviewId}:reply`
//! (`reviews.reply`: at most 350 characters, HTML stripped) and Google's OAuth token endpoint `POST /token` for service accounts, with
//! Google's assertion checks, query checks, error bodies, token paging, the one-week window and
//! the per-app hourly quota (shapes from tests/fixtures/google-play/reviews.discovery.json; what
//! Google documents beyond the schema is in tests/fixtures/google-play/SOURCE.md).
//!
//! The error bodies follow ones Google sent, as quoted in public reports:
//! - 401, token refused (`authError`): https://github.com/enupal/backup/issues/44; token missing
//!   (`required`, `CREDENTIALS_MISSING`): https://github.com/reactmore/morelab/issues/17.
//! - 403, service account without Play Console permissions: `PERMISSION_DENIED`, "The caller does
//!   not have permission", `errors[0]` `{domain: global, reason: forbidden}`:
//!   https://github.com/Triple-T/gradle-play-publisher/issues/805 (androidpublisher v3, 2020),
//!   https://github.com/googleapis/google-api-php-client/issues/2567 (2024). Before v3 the API
//!   answered 401 with `{domain: androidpublisher, reason: permissionDenied}` and "The current user
//!   has insufficient permissions to perform the requested operation."
//!   (https://github.com/sugoi-wada/appversionchecker/issues/2): the status is what to act on.
//! - 403, API not enabled in the Cloud project: "<title> has not been used in project <n> before or
//!   it is disabled. Enable it by visiting <activationUrl> then retry. ...", `errors[0].reason`
//!   `accessNotConfigured` (https://github.com/microsoft/google-play-vsts-extension/issues/185 for
//!   androidpublisher, https://github.com/taylorwilsdon/google_workspace_mcp/issues/126 for the
//!   reason), `details` with a `google.rpc.ErrorInfo` `SERVICE_DISABLED` whose metadata names
//!   `consumer`, `service`, `serviceTitle`, `containerInfo`, `activationUrl`, then a
//!   `LocalizedMessage` (https://github.com/lbjlaq/Antigravity-Manager/issues/3058,
//!   https://github.com/google-gemini/gemini-cli/issues/1343; the `ErrorInfo` reason is defined in
//!   google.api.ErrorReason: https://cloud.google.com/java/docs/reference/proto-google-common-protos/2.37.1/com.google.api.ErrorReason).
//! - 404, unknown package: "No application was found for the given package name.", `errors[0]`
//!   `{reason: applicationNotFound, location: packageName, locationType: parameter}`:
//!   https://github.com/googlesamples/android-play-publisher-api/issues/2.
//! - 429: `RESOURCE_EXHAUSTED`, "Resource has been exhausted (e.g. check quota).", `errors[0].reason`
//!   `rateLimitExceeded` (https://github.com/google-gemini/gemini-cli/issues/14831; the mapping
//!   429 ↔ RESOURCE_EXHAUSTED: https://cloud.google.com/apis/design/errors). Note: the
//!   androidpublisher *project* quota (queries per day) has been reported as **403**
//!   `PERMISSION_DENIED` with `{domain: usageLimits, reason: rateLimitExceeded}`
//!   (https://github.com/aporat/store-receipt-validator/issues/136,
//!   https://github.com/Triple-T/gradle-play-publisher/issues/1036), so a client should not take
//!   every 403 for a missing permission.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use super::server::BackgroundServer;

/// The service account key file, as Google Cloud hands it out (throwaway key for these tests).
pub const SERVICE_ACCOUNT_JSON: &str = include_str!("../fixtures/keys/play-service-account.json");
/// Public half of the service account's `private_key`; the double verifies assertions with it.
pub const PUBLIC_KEY_PEM: &str = include_str!("../fixtures/keys/play-service-account.pub.pem");
/// An unrelated RSA key (PKCS#8): assertions signed with it must be refused.
pub const OTHER_KEY_PEM: &str = include_str!("../fixtures/keys/play-other.pem");
/// The part of Google's discovery document the double serves.
pub const DISCOVERY_JSON: &str = include_str!("../fixtures/google-play/reviews.discovery.json");

pub const CLIENT_EMAIL: &str = "review-relay@test-project.iam.gserviceaccount.com";
/// The one OAuth scope of the API.
pub const SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google's limit on an assertion's lifetime (exp − iat), in seconds.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
/// How far in the future `iat` may be (clock skew Google tolerates).
pub const IAT_SKEW_SECS: i64 = 60;
/// What Google answers as `expires_in`.
pub const DEFAULT_TOKEN_EXPIRES_IN: i64 = 3599;
/// Per app: 200 GET requests an hour (SOURCE.md, *quota*).
pub const DEFAULT_HOURLY_QUOTA: u32 = 200;
pub const DEFAULT_MAX_RESULTS: usize = 10;
pub const MAX_MAX_RESULTS: usize = 100;
/// Only reviews created or modified in the last week are listed.
pub const WINDOW_SECS: i64 = 7 * 24 * 3600;
/// The Cloud project number named in the "API not enabled" body.
pub const PROJECT_NUMBER: &str = "123456789012";

const REVIEWS_PREFIX: &str = "/androidpublisher/v3/applications/";
/// Google rejects a reply longer than about this many characters.
pub const MAX_REPLY_CHARS: usize = 350;

/// The fixture service account key file as JSON.
pub fn service_account() -> Value {
    serde_json::from_str(SERVICE_ACCOUNT_JSON)
        .unwrap_or_else(|e| panic!("play-service-account.json is not JSON: {e}"))
}

/// The fixture's `private_key` (PKCS#8 PEM).
pub fn private_key_pem() -> String {
    service_account()["private_key"]
        .as_str()
        .expect("fixture has private_key")
        .to_string()
}

/// The fixture's `private_key_id` (what Google's libraries send as `kid`).
pub fn private_key_id() -> String {
    service_account()["private_key_id"]
        .as_str()
        .expect("fixture has private_key_id")
        .to_string()
}

/// Signs `claims` with `alg` (an RSA one) and the PKCS#8 `private_key_pem`, header `{alg, kid, typ: JWT}`.
/// For tests that need hand-made (including deliberately bad) assertions.
pub fn sign_rsa(
    alg: Algorithm,
    private_key_pem: &str,
    kid: Option<&str>,
    claims: &Value,
) -> String {
    let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
        .unwrap_or_else(|e| panic!("key is not a usable RSA PEM: {e}"));
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    header.typ = Some("JWT".to_string());
    jsonwebtoken::encode(&header, claims, &key).unwrap_or_else(|e| panic!("signing failed: {e}"))
}

/// The claims Google's libraries put in an assertion for `token_url`, issued at `now`, valid an hour.
pub fn assertion_claims(token_url: &str, now: i64) -> Value {
    json!({
        "iss": CLIENT_EMAIL,
        "scope": SCOPE,
        "aud": token_url,
        "iat": now,
        "exp": now + MAX_ASSERTION_LIFETIME_SECS,
    })
}

/// A valid assertion for the fixture account, signed RS256 with `kid` = [`private_key_id`].
pub fn assertion(token_url: &str, now: i64) -> String {
    sign_rsa(
        Algorithm::RS256,
        &private_key_pem(),
        Some(&private_key_id()),
        &assertion_claims(token_url, now),
    )
}

/// Seconds since the Unix epoch, by the machine's clock.
pub fn real_now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Who may get tokens, and the double's limits.
#[derive(Clone, Debug)]
pub struct PlayConfig {
    pub public_key_pem: String,
    /// Assertions must carry it as `kid`.
    pub private_key_id: String,
    /// Assertions must carry it as `iss`.
    pub client_email: String,
    /// `expires_in` of issued access tokens, in seconds.
    pub token_expires_in: i64,
    /// GET requests per package per clock hour before 429.
    pub hourly_quota: u32,
    /// Reviews per page at most, whatever `maxResults` asks (Google may answer fewer): a small
    /// cap makes a backlog of a few hundred reviews take more pages than an hour's quota.
    pub page_cap: Option<usize>,
}

impl PlayConfig {
    /// The fixture service account, Google's defaults.
    pub fn fixture() -> PlayConfig {
        PlayConfig {
            public_key_pem: PUBLIC_KEY_PEM.to_string(),
            private_key_id: private_key_id(),
            client_email: CLIENT_EMAIL.to_string(),
            token_expires_in: DEFAULT_TOKEN_EXPIRES_IN,
            hourly_quota: DEFAULT_HOURLY_QUOTA,
            page_cap: None,
        }
    }
}

/// Why the service account may not read a package's reviews.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// Not given the app (or "Reply to reviews") in Play Console's Users and permissions.
    NoPermission,
    /// The Google Play Android Developer API is not enabled in the account's Cloud project.
    ApiDisabled,
}

/// Which check of `POST /token` refused an exchange (in the order the double checks them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantCheck {
    GrantType,
    AssertionMissing,
    Malformed,
    Alg,
    Kid,
    Signature,
    Iss,
    Aud,
    Scope,
    IssuedInFuture,
    Expired,
    Lifetime,
}

impl GrantCheck {
    /// How the check is named at the start of `error_description` (`"kid: ..."`).
    pub fn name(self) -> &'static str {
        match self {
            GrantCheck::GrantType => "grant_type",
            GrantCheck::AssertionMissing => "assertion",
            GrantCheck::Malformed => "malformed",
            GrantCheck::Alg => "alg",
            GrantCheck::Kid => "kid",
            GrantCheck::Signature => "signature",
            GrantCheck::Iss => "iss",
            GrantCheck::Aud => "aud",
            GrantCheck::Scope => "scope",
            GrantCheck::IssuedInFuture => "iat",
            GrantCheck::Expired => "exp",
            GrantCheck::Lifetime => "lifetime",
        }
    }
}

/// One request the double received, whatever it answered. Never holds a token's value.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Raw query string without `?`; `access_token`/`oauth_token` values are replaced by `REDACTED`.
    pub query: Option<String>,
    pub authorization_present: bool,
    /// Status the double answered with.
    pub status: u16,
}

#[derive(Clone)]
struct CannedFailure {
    remaining: usize,
    status: u16,
    body: Value,
}

#[derive(Default)]
struct Data {
    /// Registered packages and their reviews (stored order does not matter: lists are sorted).
    reviews: HashMap<String, Vec<Value>>,
    denials: HashMap<String, Denial>,
    /// Access token → expiry (double's clock, seconds).
    tokens: HashMap<String, i64>,
    /// Page token → (package, offset).
    page_tokens: HashMap<String, (String, usize)>,
    token_requests: usize,
    grant_refusals: Vec<GrantCheck>,
    requests: Vec<RecordedRequest>,
    gets: HashMap<String, usize>,
    /// (package, hour since epoch) → GETs counted against the quota.
    hourly: HashMap<(String, i64), u32>,
    failure: Option<CannedFailure>,
    /// `reviews.reply` bodies as received (JSON; `Null` when not JSON), in arrival order.
    reply_bodies: Vec<Value>,
    pinned_now: Option<i64>,
    /// Pins only what the listing and the quota go by (see [`PlayDouble::set_listing_now`]).
    listing_now: Option<i64>,
}

impl Data {
    fn now(&self) -> i64 {
        self.pinned_now.unwrap_or_else(real_now_secs)
    }

    fn listing_now(&self) -> i64 {
        self.listing_now.unwrap_or_else(|| self.now())
    }
}

struct Shared {
    config: PlayConfig,
    key: DecodingKey,
    base_url: String,
    /// Query parameters `reviews.list` accepts: its own and the standard ones of the document.
    list_parameters: HashSet<String>,
    data: Mutex<Data>,
}

/// A running Google Play double; dropping it stops the server.
pub struct PlayDouble {
    shared: Arc<Shared>,
    server: BackgroundServer,
}

impl PlayDouble {
    /// Starts the double on 127.0.0.1 with a free port. Panics if the key is unusable.
    pub fn start(config: PlayConfig) -> PlayDouble {
        let key = DecodingKey::from_rsa_pem(config.public_key_pem.as_bytes())
            .unwrap_or_else(|e| panic!("PlayDouble: public_key_pem is not an RSA public key: {e}"));
        let list_parameters = list_parameters();
        let mut shared = None;
        let server = BackgroundServer::spawn("play", |addr| {
            let state = Arc::new(Shared {
                config,
                key,
                base_url: format!("http://{addr}"),
                list_parameters,
                data: Mutex::new(Data::default()),
            });
            shared = Some(Arc::clone(&state));
            Router::new().fallback(handle).with_state(state)
        });
        let shared = shared.expect("router built during spawn");
        PlayDouble { shared, server }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash): what `PLAY_BASE_URL` points at.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// `{base}/token`: the `token_uri` assertions must name as `aud`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// `{base}/androidpublisher/v3/applications/{package}/reviews`.
    pub fn reviews_url(&self, package: &str) -> String {
        format!("{}{REVIEWS_PREFIX}{package}/reviews", self.base_url())
    }

    /// The fixture key file with `token_uri` pointing at this double (what a test puts in the secret).
    pub fn service_account_json(&self) -> Value {
        let mut account = service_account();
        account["token_uri"] = json!(self.token_url());
        account
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.shared.data.lock().unwrap()
    }

    /// Pins the double's clock at `unix_secs` (window, token expiry, hourly quota).
    pub fn set_now(&self, unix_secs: i64) {
        self.data().pinned_now = Some(unix_secs);
    }

    /// Pins the clock of the listing (the 7-day window, what is not yet written) and of the
    /// hourly quota at `unix_secs`, leaving tokens on the double's clock: a test can play weeks
    /// while the relay signs its assertions with the machine's clock, as it always does.
    pub fn set_listing_now(&self, unix_secs: i64) {
        self.data().listing_now = Some(unix_secs);
    }

    /// Back to the machine's clock.
    pub fn use_real_clock(&self) {
        self.data().pinned_now = None;
    }

    /// The double's clock, in seconds since the epoch.
    pub fn now(&self) -> i64 {
        self.data().now()
    }

    /// Registers `package` with no reviews (listing it answers 200 `{}`).
    pub fn add_app(&self, package: &str) {
        self.data().reviews.entry(package.to_string()).or_default();
    }

    /// Replaces the reviews of `package` (registering it). Reviews are [`play_review`] values.
    pub fn set_reviews(&self, package: &str, reviews: Vec<Value>) {
        self.data().reviews.insert(package.to_string(), reviews);
    }

    /// Adds one review to `package` (registering it).
    pub fn push_review(&self, package: &str, review: Value) {
        self.data()
            .reviews
            .entry(package.to_string())
            .or_default()
            .push(review);
    }

    /// The reviewer edits review `review_id`: new text and stars, `lastModified` = `at_secs`, so it
    /// is listed first again. Panics if there is no such review.
    pub fn edit_review(&self, package: &str, review_id: &str, text: &str, stars: u8, at_secs: i64) {
        self.with_review(package, review_id, |review| {
            let user = user_comment_mut(review);
            user["text"] = json!(text);
            user["starRating"] = json!(stars);
            user["lastModified"] = timestamp(at_secs);
        });
    }

    /// Sets (or replaces) the developer's reply to review `review_id`. Panics if there is no such review.
    pub fn set_developer_comment(&self, package: &str, review_id: &str, text: &str, at_secs: i64) {
        self.with_review(package, review_id, |review| {
            set_developer_comment_in(review, text, at_secs);
        });
    }

    fn with_review(&self, package: &str, review_id: &str, change: impl FnOnce(&mut Value)) {
        let mut data = self.data();
        let review = data
            .reviews
            .get_mut(package)
            .and_then(|reviews| {
                reviews
                    .iter_mut()
                    .find(|r| r["reviewId"].as_str() == Some(review_id))
            })
            .unwrap_or_else(|| panic!("PlayDouble: no review {review_id:?} in {package:?}"));
        change(review);
    }

    /// From now on `package` answers 403 for this reason.
    pub fn deny(&self, package: &str, denial: Denial) {
        self.data().denials.insert(package.to_string(), denial);
    }

    /// Lifts a [`PlayDouble::deny`].
    pub fn allow(&self, package: &str) {
        self.data().denials.remove(package);
    }

    /// The next `n` review GETs (any package, after the token check) answer `status` with `body`
    /// (JSON; `Value::Null` sends an empty body). See [`error_body`] and its siblings.
    pub fn fail_next(&self, n: usize, status: u16, body: Value) {
        self.data().failure = Some(CannedFailure {
            remaining: n,
            status,
            body,
        });
    }

    /// Every access token issued so far stops working (the next GET with one answers 401).
    pub fn expire_tokens(&self) {
        for expiry in self.data().tokens.values_mut() {
            *expiry = i64::MIN;
        }
    }

    /// How many `POST /token` exchanges arrived (granted or refused).
    pub fn token_requests(&self) -> usize {
        self.data().token_requests
    }

    /// Which check refused each refused exchange, in arrival order.
    pub fn grant_refusals(&self) -> Vec<GrantCheck> {
        self.data().grant_refusals.clone()
    }

    /// How many review GETs `package` received in all (any outcome, 401s included).
    pub fn gets(&self, package: &str) -> usize {
        self.data().gets.get(package).copied().unwrap_or(0)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.data().requests.clone()
    }

    /// Every `reviews.reply` body received, in arrival order.
    pub fn reply_bodies(&self) -> Vec<Value> {
        self.data().reply_bodies.clone()
    }

    /// The developer's reply to review `review_id` as the double keeps it: its text.
    pub fn reply_text(&self, package: &str, review_id: &str) -> Option<String> {
        let data = self.data();
        let review = data
            .reviews
            .get(package)?
            .iter()
            .find(|r| r["reviewId"].as_str() == Some(review_id))?;
        developer_comment(review)["text"]
            .as_str()
            .map(str::to_owned)
    }

    /// Drops recorded requests, counters and refusals (data, tokens and switches stay).
    pub fn clear_requests(&self) {
        let mut data = self.data();
        data.requests.clear();
        data.gets.clear();
        data.token_requests = 0;
        data.grant_refusals.clear();
    }
}

/// `reviews.list`'s query parameters and the standard ones, read from the discovery document.
fn list_parameters() -> HashSet<String> {
    let doc: Value = serde_json::from_str(DISCOVERY_JSON)
        .unwrap_or_else(|e| panic!("reviews.discovery.json is not JSON: {e}"));
    let standard = doc["parameters"].as_object().into_iter().flatten();
    let own = doc["resources"]["reviews"]["methods"]["list"]["parameters"]
        .as_object()
        .into_iter()
        .flatten();
    standard
        .chain(own)
        .filter(|(_, p)| p["location"] == "query")
        .map(|(name, _)| name.clone())
        .collect()
}

/// A `Review` as `reviews.list` returns it: one user comment, device and app version defaults
/// (a Pixel 6 on Android 14, app 1.2.0 / 120), no thumbs, no `deviceMetadata`, no reply. Change
/// optional fields with [`with_user_field`], [`with_device_metadata`], [`with_developer_comment`].
pub fn play_review(
    id: &str,
    author: &str,
    text: &str,
    stars: u8,
    last_modified_secs: i64,
    language: &str,
) -> Value {
    json!({
        "reviewId": id,
        "authorName": author,
        "comments": [{
            "userComment": {
                "text": text,
                "lastModified": timestamp(last_modified_secs),
                "starRating": stars,
                "reviewerLanguage": language,
                "device": "oriole",
                "androidOsVersion": 34,
                "appVersionCode": 120,
                "appVersionName": "1.2.0",
                "thumbsUpCount": 0,
                "thumbsDownCount": 0,
            }
        }]
    })
}

/// Sets a `UserComment` field of `review` (`Value::Null` removes it: Google leaves out absent fields).
pub fn with_user_field(mut review: Value, key: &str, value: Value) -> Value {
    let user = user_comment_mut(&mut review);
    match (value, user.as_object_mut()) {
        (Value::Null, Some(object)) => {
            object.remove(key);
        }
        (value, _) => user[key] = value,
    }
    review
}

/// Gives `review` a `deviceMetadata` (typical values, as the `DeviceMetadata` schema lists them).
pub fn with_device_metadata(review: Value) -> Value {
    with_user_field(
        review,
        "deviceMetadata",
        json!({
            "productName": "Pixel 6",
            "manufacturer": "Google",
            "deviceClass": "phone",
            "screenWidthPx": 1080,
            "screenHeightPx": 2400,
            "nativePlatform": "arm64-v8a,armeabi-v7a,armeabi",
            "screenDensityDpi": 420,
            "glEsVersion": 196610,
            "cpuModel": "Tensor",
            "cpuMake": "Google",
            "ramMb": 7695,
        }),
    )
}

/// Gives `review` a developer reply written at `at_secs`.
pub fn with_developer_comment(mut review: Value, text: &str, at_secs: i64) -> Value {
    set_developer_comment_in(&mut review, text, at_secs);
    review
}

/// The `userComment` of a served or stored review (`Value::Null` if it has none).
pub fn user_comment(review: &Value) -> &Value {
    comment(review, "userComment")
}

/// The `developerComment` of a served or stored review (`Value::Null` if it has none).
pub fn developer_comment(review: &Value) -> &Value {
    comment(review, "developerComment")
}

fn comment<'a>(review: &'a Value, kind: &str) -> &'a Value {
    review["comments"]
        .as_array()
        .and_then(|comments| comments.iter().find_map(|c| c.get(kind)))
        .unwrap_or(&Value::Null)
}

fn user_comment_mut(review: &mut Value) -> &mut Value {
    review["comments"]
        .as_array_mut()
        .and_then(|comments| comments.iter_mut().find_map(|c| c.get_mut("userComment")))
        .expect("review has a userComment")
}

fn set_developer_comment_in(review: &mut Value, text: &str, at_secs: i64) {
    let reply = json!({ "text": text, "lastModified": timestamp(at_secs) });
    if !review["comments"].is_array() {
        review["comments"] = json!([]);
    }
    let comments = review["comments"]
        .as_array_mut()
        .expect("comments is an array");
    match comments
        .iter_mut()
        .find_map(|c| c.get_mut("developerComment"))
    {
        Some(existing) => *existing = reply,
        None => comments.push(json!({ "developerComment": reply })),
    }
}

/// A `Timestamp`: `seconds` as a string (int64 in JSON), `nanos` as a number.
pub fn timestamp(secs: i64) -> Value {
    json!({ "seconds": secs.to_string(), "nanos": 0 })
}

/// `(seconds, nanos)` of a review's user comment, for ordering; `None` sorts last.
fn last_modified(review: &Value) -> Option<(i64, i64)> {
    let stamp = &user_comment(review)["lastModified"];
    let seconds = stamp["seconds"].as_str()?.parse().ok()?;
    Some((seconds, stamp["nanos"].as_i64().unwrap_or(0)))
}

/// Google's error body: `{"error": {code, message, errors: [{message, domain, reason}], status}}`.
pub fn error_body(code: u16, status: &str, message: &str, domain: &str, reason: &str) -> Value {
    json!({
        "error": {
            "code": code,
            "message": message,
            "errors": [{ "message": message, "domain": domain, "reason": reason }],
            "status": status,
        }
    })
}

/// 401 for a refused (unknown, expired) access token.
pub fn invalid_credentials_body() -> Value {
    let mut body = error_body(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie \
         or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        "global",
        "authError",
    );
    body["error"]["errors"][0]["message"] = json!("Invalid Credentials");
    body["error"]["errors"][0]["location"] = json!("Authorization");
    body["error"]["errors"][0]["locationType"] = json!("header");
    body
}

/// 401 for a request without `Authorization`.
pub fn credentials_missing_body() -> Value {
    let mut body = error_body(
        401,
        "UNAUTHENTICATED",
        "Request is missing required authentication credential. Expected OAuth 2 access token, login \
         cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        "global",
        "required",
    );
    body["error"]["errors"][0]["message"] = json!("Login Required.");
    body["error"]["errors"][0]["location"] = json!("Authorization");
    body["error"]["errors"][0]["locationType"] = json!("header");
    body["error"]["details"] = json!([{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "CREDENTIALS_MISSING",
        "domain": "googleapis.com",
        "metadata": {
            "method": "google.play.publishing.v3.ReviewsService.List",
            "service": "androidpublisher.googleapis.com",
        },
    }]);
    body
}

/// 403: the service account has no Play Console permissions for the app.
pub fn permission_denied_body() -> Value {
    error_body(
        403,
        "PERMISSION_DENIED",
        "The caller does not have permission",
        "global",
        "forbidden",
    )
}

/// 403: the Google Play Android Developer API is not enabled in project [`PROJECT_NUMBER`].
pub fn api_disabled_body() -> Value {
    let title = "Google Play Android Developer API";
    let service = "androidpublisher.googleapis.com";
    let activation = format!(
        "https://console.developers.google.com/apis/api/{service}/overview?project={PROJECT_NUMBER}"
    );
    let message = format!(
        "{title} has not been used in project {PROJECT_NUMBER} before or it is disabled. Enable it by \
         visiting {activation} then retry. If you enabled this API recently, wait a few minutes for the \
         action to propagate to our systems and retry."
    );
    let mut body = error_body(
        403,
        "PERMISSION_DENIED",
        &message,
        "usageLimits",
        "accessNotConfigured",
    );
    body["error"]["errors"][0]["extendedHelp"] = json!("https://console.developers.google.com");
    body["error"]["details"] = json!([
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "SERVICE_DISABLED",
            "domain": "googleapis.com",
            "metadata": {
                "consumer": format!("projects/{PROJECT_NUMBER}"),
                "service": service,
                "serviceTitle": title,
                "containerInfo": PROJECT_NUMBER,
                "activationUrl": activation,
            },
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": message,
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{ "description": "Google developers console API activation", "url": activation }],
        },
    ]);
    body
}

/// 404: no app with this package name in the developer account.
pub fn application_not_found_body() -> Value {
    let mut body = error_body(
        404,
        "NOT_FOUND",
        "No application was found for the given package name.",
        "global",
        "applicationNotFound",
    );
    body["error"]["errors"][0]["location"] = json!("packageName");
    body["error"]["errors"][0]["locationType"] = json!("parameter");
    body
}

/// 429: over a quota (the double's hourly per-app one, or injected).
pub fn quota_exceeded_body() -> Value {
    error_body(
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
        "global",
        "rateLimitExceeded",
    )
}

/// 500 as Google's front ends send it.
pub fn internal_error_body() -> Value {
    error_body(
        500,
        "INTERNAL",
        "Internal error encountered.",
        "global",
        "backendError",
    )
}

/// 503 as Google's front ends send it.
pub fn unavailable_body() -> Value {
    error_body(
        503,
        "UNAVAILABLE",
        "The service is currently unavailable.",
        "global",
        "backendError",
    )
}

/// 400 `INVALID_ARGUMENT` for a bad query parameter.
pub fn invalid_argument_body(message: &str) -> Value {
    error_body(400, "INVALID_ARGUMENT", message, "global", "invalid")
}

struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
        }
    }

    fn into_response(self) -> Response {
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        if !self.body.is_empty() {
            builder = builder.header("content-type", "application/json; charset=UTF-8");
        }
        builder.body(Body::from(self.body)).unwrap_or_else(|e| {
            let mut response = Response::new(Body::from(e.to_string()));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        })
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization_present = headers.contains_key("authorization");
    let mut data = shared.data.lock().unwrap();
    let reply = if uri.path() == "/token" {
        if method == Method::POST {
            shared.token(&mut data, &body)
        } else {
            Reply::json(
                405,
                &json!({ "error": "invalid_request", "error_description": "POST only" }),
            )
        }
    } else if let Some((package, review_id, reply)) = review_path(uri.path()) {
        match (method.clone(), reply) {
            (Method::POST, true) => shared.reply(&mut data, package, review_id, &headers, &body),
            (Method::GET, false) => shared.review(&mut data, package, review_id, &headers),
            _ => method_not_allowed(&method, uri.path()),
        }
    } else if let Some(package) = review_list_package(uri.path()) {
        if method == Method::GET {
            *data.gets.entry(package.to_string()).or_default() += 1;
            shared.review_list(&mut data, package, &uri, &headers)
        } else {
            method_not_allowed(&method, uri.path())
        }
    } else {
        let message = format!(
            "The requested URL {} was not found on this server.",
            uri.path()
        );
        Reply::json(
            404,
            &error_body(404, "NOT_FOUND", &message, "global", "notFound"),
        )
    };
    data.requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(redact_query),
        authorization_present,
        status: reply.status,
    });
    drop(data);
    reply.into_response()
}

fn method_not_allowed(method: &Method, path: &str) -> Reply {
    let message = format!("Method {method} is not allowed for {path}");
    Reply::json(
        405,
        &error_body(
            405,
            "INVALID_ARGUMENT",
            &message,
            "global",
            "httpMethodNotAllowed",
        ),
    )
}

/// The query with the values of credential parameters replaced.
fn redact_query(query: &str) -> String {
    let pairs = url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| {
        let v = if k == "access_token" || k == "oauth_token" {
            "REDACTED".into()
        } else {
            v
        };
        (k, v)
    });
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `Some(package)` for `/androidpublisher/v3/applications/{package}/reviews`.
fn review_list_package(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(REVIEWS_PREFIX)?;
    let (package, tail) = rest.split_once('/')?;
    (tail == "reviews" && !package.is_empty()).then_some(package)
}

/// `Some((package, review id, is reply))` for `.../applications/{package}/reviews/{id}[:reply]`.
fn review_path(path: &str) -> Option<(&str, &str, bool)> {
    let rest = path.strip_prefix(REVIEWS_PREFIX)?;
    let (package, tail) = rest.split_once("/reviews/")?;
    let (review_id, reply) = match tail.strip_suffix(":reply") {
        Some(id) => (id, true),
        None => (tail, false),
    };
    (!package.is_empty() && !review_id.is_empty() && !review_id.contains('/'))
        .then_some((package, review_id, reply))
}

/// The text without HTML tags, as Google keeps a reply.
fn strip_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

fn invalid_grant(check: GrantCheck, detail: &str) -> (GrantCheck, String) {
    (check, format!("{}: {detail}", check.name()))
}

/// A fresh opaque token shaped like Google's (`ya29.` then URL-safe characters).
fn fresh_token(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, AtomicOrdering::Relaxed);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let random: String = (0..48)
        .map(|_| alphabet[fastrand::usize(..alphabet.len())] as char)
        .collect();
    format!("{prefix}{n}{random}")
}

impl Shared {
    fn token(&self, data: &mut Data, body: &[u8]) -> Reply {
        data.token_requests += 1;
        let now = data.now();
        match self.verify_grant(body, now) {
            Ok(()) => {
                let token = fresh_token("ya29.c.");
                data.tokens
                    .insert(token.clone(), now + self.config.token_expires_in);
                Reply::json(
                    200,
                    &json!({
                        "access_token": token,
                        "expires_in": self.config.token_expires_in,
                        "token_type": "Bearer",
                    }),
                )
            }
            Err((check, description)) => {
                data.grant_refusals.push(check);
                Reply::json(
                    400,
                    &json!({ "error": "invalid_grant", "error_description": description }),
                )
            }
        }
    }

    /// Google's rules for a service account's JWT grant; `Err` says which one failed.
    fn verify_grant(&self, body: &[u8], now: i64) -> Result<(), (GrantCheck, String)> {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let grant_type = form.get("grant_type").map(String::as_str);
        if grant_type != Some(GRANT_TYPE) {
            return Err(invalid_grant(
                GrantCheck::GrantType,
                &format!("grant_type is {grant_type:?}, expected {GRANT_TYPE:?}"),
            ));
        }
        let assertion = form
            .get("assertion")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| invalid_grant(GrantCheck::AssertionMissing, "no assertion"))?;
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|e| invalid_grant(GrantCheck::Malformed, &format!("unreadable JWT: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid_grant(
                GrantCheck::Alg,
                &format!("alg is {:?}, not RS256", header.alg),
            ));
        }
        if header.kid.as_deref() != Some(self.config.private_key_id.as_str()) {
            return Err(invalid_grant(
                GrantCheck::Kid,
                &format!("kid is {:?}, not the key's private_key_id", header.kid),
            ));
        }
        let mut validation = Validation::new(Algorithm::RS256);
        // Times are checked below against the double's clock, aud against its own URL.
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Value>(assertion, &self.key, &validation)
            .map_err(|e| {
                invalid_grant(
                    GrantCheck::Signature,
                    &format!("Invalid JWT Signature ({e})"),
                )
            })?
            .claims;

        if claims["iss"].as_str() != Some(self.config.client_email.as_str()) {
            return Err(invalid_grant(
                GrantCheck::Iss,
                &format!(
                    "iss is {}, not the service account's client_email",
                    claims["iss"]
                ),
            ));
        }
        let token_url = format!("{}/token", self.base_url);
        if claims["aud"].as_str() != Some(token_url.as_str()) {
            return Err(invalid_grant(
                GrantCheck::Aud,
                &format!("aud is {}, expected {token_url:?}", claims["aud"]),
            ));
        }
        let scopes = claims["scope"].as_str().unwrap_or_default();
        if !scopes.split(' ').any(|s| s == SCOPE) {
            return Err(invalid_grant(
                GrantCheck::Scope,
                &format!("scope {} does not include {SCOPE}", claims["scope"]),
            ));
        }
        let iat = claims["iat"].as_i64().ok_or_else(|| {
            invalid_grant(GrantCheck::IssuedInFuture, "iat missing or not an integer")
        })?;
        let exp = claims["exp"]
            .as_i64()
            .ok_or_else(|| invalid_grant(GrantCheck::Expired, "exp missing or not an integer"))?;
        if iat > now + IAT_SKEW_SECS {
            return Err(invalid_grant(
                GrantCheck::IssuedInFuture,
                &format!("iat {iat} is in the future (now {now})"),
            ));
        }
        if exp <= now {
            return Err(invalid_grant(
                GrantCheck::Expired,
                &format!("exp {exp} has passed (now {now})"),
            ));
        }
        if exp - iat > MAX_ASSERTION_LIFETIME_SECS || exp <= iat {
            return Err(invalid_grant(
                GrantCheck::Lifetime,
                &format!(
                    "Token must be a short-lived token ({} minutes): exp - iat = {} s",
                    MAX_ASSERTION_LIFETIME_SECS / 60,
                    exp - iat
                ),
            ));
        }
        Ok(())
    }

    /// The bearer token, the package and the account's permission, as Google checks them
    /// for every review call; `Some` is the refusal.
    fn refusal(data: &Data, package: &str, headers: &HeaderMap) -> Option<Reply> {
        let now = data.now();
        match bearer_token(headers) {
            None => return Some(Reply::json(401, &credentials_missing_body())),
            Some(token) => {
                if data.tokens.get(token).is_none_or(|&expiry| expiry <= now) {
                    return Some(Reply::json(401, &invalid_credentials_body()));
                }
            }
        }
        if !data.reviews.contains_key(package) {
            return Some(Reply::json(404, &application_not_found_body()));
        }
        match data.denials.get(package) {
            Some(Denial::NoPermission) => Some(Reply::json(403, &permission_denied_body())),
            Some(Denial::ApiDisabled) => Some(Reply::json(403, &api_disabled_body())),
            None => None,
        }
    }

    /// `reviews.reply`: `{"replyText": ...}`, at most [`MAX_REPLY_CHARS`] characters, HTML
    /// stripped; answers `{"result": {"replyText", "lastEdited"}}`.
    fn reply(
        &self,
        data: &mut Data,
        package: &str,
        review_id: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Reply {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        data.reply_bodies.push(parsed.clone());
        if let Some(refusal) = Self::refusal(data, package, headers) {
            return refusal;
        }
        let Some(text) = parsed["replyText"].as_str() else {
            return Reply::json(400, &invalid_argument_body("replyText is required"));
        };
        if text.trim().is_empty() {
            return Reply::json(400, &invalid_argument_body("Reply text must not be empty."));
        }
        if text.chars().count() > MAX_REPLY_CHARS {
            return Reply::json(400, &invalid_argument_body("Reply text is too long."));
        }
        let now = data.now();
        let kept = strip_html(text);
        let Some(review) = data.reviews.get_mut(package).and_then(|reviews| {
            reviews
                .iter_mut()
                .find(|r| r["reviewId"].as_str() == Some(review_id))
        }) else {
            return Reply::json(
                404,
                &error_body(404, "NOT_FOUND", "Review not found.", "global", "notFound"),
            );
        };
        set_developer_comment_in(review, &kept, now);
        Reply::json(
            200,
            &json!({ "result": { "replyText": kept, "lastEdited": timestamp(now) } }),
        )
    }

    /// `reviews.get`: the review with its comments.
    fn review(
        &self,
        data: &mut Data,
        package: &str,
        review_id: &str,
        headers: &HeaderMap,
    ) -> Reply {
        if let Some(refusal) = Self::refusal(data, package, headers) {
            return refusal;
        }
        match data.reviews.get(package).and_then(|reviews| {
            reviews
                .iter()
                .find(|r| r["reviewId"].as_str() == Some(review_id))
        }) {
            Some(review) => Reply::json(200, review),
            None => Reply::json(
                404,
                &error_body(404, "NOT_FOUND", "Review not found.", "global", "notFound"),
            ),
        }
    }

    fn review_list(&self, data: &mut Data, package: &str, uri: &Uri, headers: &HeaderMap) -> Reply {
        if let Some(refusal) = Self::refusal(data, package, headers) {
            return refusal;
        }
        let now = data.listing_now();
        let used = data
            .hourly
            .entry((package.to_string(), now.div_euclid(3600)))
            .or_default();
        *used += 1;
        if *used > self.config.hourly_quota {
            return Reply::json(429, &quota_exceeded_body());
        }
        if let Some(failure) = data.failure.as_mut()
            && failure.remaining > 0
        {
            failure.remaining -= 1;
            return Reply {
                status: failure.status,
                body: if failure.body.is_null() {
                    String::new()
                } else {
                    failure.body.to_string()
                },
            };
        }

        let query = match self.parse_query(data, package, uri) {
            Ok(query) => query,
            Err(reply) => return reply,
        };
        let Some(stored) = data.reviews.get(package) else {
            return Reply::json(404, &application_not_found_body());
        };
        let mut listed: Vec<&Value> = stored
            .iter()
            .filter(|r| last_modified(r).is_some_and(|(s, _)| s > now - WINDOW_SECS && s <= now))
            .collect();
        listed.sort_by(|a, b| {
            last_modified(b)
                .cmp(&last_modified(a))
                .then_with(|| a["reviewId"].as_str().cmp(&b["reviewId"].as_str()))
        });
        let total = listed.len();
        let per_page = self
            .config
            .page_cap
            .map_or(query.max_results, |cap| cap.min(query.max_results));
        let end = (query.offset + per_page).min(total);
        let page: Vec<Value> = listed
            .get(query.offset.min(total)..end)
            .unwrap_or_default()
            .iter()
            .map(|r| translate(r, query.translation_language.as_deref()))
            .collect();

        // Google answers `{}` when there is nothing to list.
        let mut document = json!({});
        if !page.is_empty() {
            document["reviews"] = json!(page);
        }
        if end < total {
            let next = fresh_token("");
            data.page_tokens
                .insert(next.clone(), (package.to_string(), end));
            document["tokenPagination"] = json!({ "nextPageToken": next });
            document["pageInfo"] = json!({
                "totalResults": total,
                "resultPerPage": per_page,
                "startIndex": query.offset,
            });
        }
        Reply::json(200, &document)
    }

    fn parse_query(&self, data: &Data, package: &str, uri: &Uri) -> Result<ListQuery, Reply> {
        let mut query = ListQuery {
            max_results: DEFAULT_MAX_RESULTS,
            offset: 0,
            translation_language: None,
        };
        let pairs = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned();
        for (name, value) in pairs {
            if !self.list_parameters.contains(&name) {
                return Err(Reply::json(
                    400,
                    &invalid_argument_body(&format!(
                        "Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query \
                         parameter. Field '{name}' could not be found in request message."
                    )),
                ));
            }
            match name.as_str() {
                "maxResults" => match value.parse::<u32>() {
                    // proto3: 0 is "not set".
                    Ok(0) => {}
                    Ok(n) if n as usize <= MAX_MAX_RESULTS => query.max_results = n as usize,
                    Ok(n) => {
                        return Err(Reply::json(
                            400,
                            &invalid_argument_body(&format!(
                                "maxResults is {n}; at most {MAX_MAX_RESULTS} reviews can be listed per page."
                            )),
                        ));
                    }
                    Err(_) => {
                        return Err(Reply::json(
                            400,
                            &invalid_argument_body(&format!(
                                "Invalid value at 'max_results' (TYPE_UINT32), \"{value}\""
                            )),
                        ));
                    }
                },
                "token" if value.is_empty() => {}
                "token" => match data.page_tokens.get(&value) {
                    Some((issued_for, offset)) if issued_for == package => query.offset = *offset,
                    _ => {
                        return Err(Reply::json(
                            400,
                            &invalid_argument_body("Invalid pagination token."),
                        ));
                    }
                },
                "translationLanguage" if !value.is_empty() => {
                    query.translation_language = Some(value);
                }
                // startIndex is ignored (SOURCE.md); the standard parameters change nothing here.
                _ => {}
            }
        }
        Ok(query)
    }
}

struct ListQuery {
    max_results: usize,
    offset: usize,
    translation_language: Option<String>,
}

/// The language part of a code such as `pt_BR`, `pt-BR` or `pt`, lowercased.
fn language_part(code: &str) -> String {
    code.split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// `review` as served with `translationLanguage=language`: a user comment in another language gets
/// a deterministic fake translation (`"[xx] " + text`) and keeps the original in `originalText`.
fn translate(review: &Value, language: Option<&str>) -> Value {
    let mut review = review.clone();
    let Some(language) = language else {
        return review;
    };
    let user = user_comment_mut(&mut review);
    let reviewer = user["reviewerLanguage"].as_str().map(language_part);
    if reviewer.is_some_and(|r| r != language_part(language))
        && let Some(original) = user["text"].as_str().map(str::to_string)
    {
        user["text"] = json!(format!("[{language}] {original}"));
        user["originalText"] = json!(original);
    }
    review
}
