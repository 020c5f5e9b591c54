//! App Store Connect API double: `GET /v1/apps/{id}/customerReviews` (with the developer's
//! replies under `include=response`), `GET /v1/apps/{id}`, and answers to reviews
//! (`POST /v1/customerReviewResponses`, `DELETE /v1/customerReviewResponses/{id}`,
//! `GET /v1/customerReviews/{id}/response`), with Apple's JWT checks, query
//! checks, error bodies and cursor paging (shapes from
//! tests/fixtures/asc-openapi/customer-reviews.openapi.json).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::keys;
use super::server::BackgroundServer;

/// Apple's limit on a token's lifetime (exp − iat), in seconds.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 1200;
pub const AUDIENCE: &str = "appstoreconnect-v1";
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
/// `lastModifiedDate` of every reply the double serves.
pub const RESPONSE_DATE: &str = "2026-11-21T09:30:00-08:00";

/// Attributes of `customerReviews` that `fields[customerReviews]` may name (Apple's enum).
const REVIEW_FIELDS: [&str; 8] = [
    "rating",
    "title",
    "body",
    "reviewerNickname",
    "createdDate",
    "territory",
    "response",
    "reviewTerritory",
];
/// Attributes of `customerReviewResponses` that `fields[customerReviewResponses]` may name.
const RESPONSE_FIELDS: [&str; 4] = ["responseBody", "lastModifiedDate", "state", "review"];
/// What `GET /v1/apps/{id}` can show of an app; `fields[apps]` may name these.
const APP_FIELDS: [&str; 2] = ["name", "bundleId"];

/// Who may call: tokens must be signed by the private half of `public_key_pem` with `kid == key_id`.
#[derive(Clone, Debug)]
pub struct AscConfig {
    pub public_key_pem: String,
    pub key_id: String,
    /// `Some` for a team key (`iss` must match); `None` for an individual key (`sub: "user"`, no `iss`).
    pub issuer_id: Option<String>,
}

impl AscConfig {
    /// Team key from the fixtures: [`keys::KEY_ID`], [`keys::ISSUER_ID`].
    pub fn team() -> AscConfig {
        AscConfig {
            public_key_pem: keys::PUBLIC_KEY_PEM.to_string(),
            key_id: keys::KEY_ID.to_string(),
            issuer_id: Some(keys::ISSUER_ID.to_string()),
        }
    }

    /// Individual key from the fixtures: [`keys::KEY_ID`], no issuer.
    pub fn individual() -> AscConfig {
        AscConfig {
            issuer_id: None,
            ..AscConfig::team()
        }
    }
}

/// One request the double received, whatever it answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Raw query string, without `?`.
    pub query: Option<String>,
    pub auth_ok: bool,
    /// Why the token was refused (`None` when accepted).
    pub auth_error: Option<String>,
    /// The bearer token as sent, if any.
    pub token: Option<String>,
    /// Status the double answered with.
    pub status: u16,
}

#[derive(Clone)]
struct CannedFailure {
    remaining: usize,
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
}

/// A developer reply to one review.
#[derive(Clone)]
struct ResponseData {
    id: String,
    body: String,
    state: String,
}

#[derive(Default)]
struct Data {
    reviews: HashMap<String, Vec<Value>>,
    app_names: HashMap<String, String>,
    /// By (app id, review id).
    responses: HashMap<(String, String), ResponseData>,
    requests: Vec<RecordedRequest>,
    accepted_tokens: Vec<String>,
    failure: Option<CannedFailure>,
    delay: Duration,
    page_overrides: HashMap<(String, usize), String>,
    next_overrides: HashMap<(String, usize), String>,
    review_list_requests: HashMap<String, usize>,
    /// `(limit, remaining)` for Apple's `X-Rate-Limit` header; `None` sends no header.
    rate_limit: Option<(u32, u32)>,
    /// The bodies of `POST /v1/customerReviewResponses` as received, in arrival order.
    answer_bodies: Vec<Value>,
    /// The next requests to the answer routes (after the token check) answer this instead.
    answer_failure: Option<CannedFailure>,
}

struct Shared {
    config: AscConfig,
    key: DecodingKey,
    base_url: String,
    data: Mutex<Data>,
}

/// A running ASC double; dropping it stops the server.
pub struct AscDouble {
    shared: Arc<Shared>,
    server: BackgroundServer,
}

impl AscDouble {
    /// Starts the double on 127.0.0.1 with a free port. Panics if the key is unusable.
    pub fn start(config: AscConfig) -> AscDouble {
        let key = DecodingKey::from_ec_pem(config.public_key_pem.as_bytes())
            .unwrap_or_else(|e| panic!("AscDouble: public_key_pem is not an EC public key: {e}"));
        let mut shared = None;
        let server = BackgroundServer::spawn("asc", |addr| {
            let state = Arc::new(Shared {
                config,
                key,
                base_url: format!("http://{addr}"),
                data: Mutex::new(Data::default()),
            });
            shared = Some(Arc::clone(&state));
            Router::new().fallback(handle).with_state(state)
        });
        let shared = shared.expect("router built during spawn");
        AscDouble { shared, server }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.shared.data.lock().unwrap()
    }

    /// Replaces the reviews of `app_id` (stored order is the order with no `sort`).
    /// An app with an empty list answers 200 with no data; an app never set answers 404.
    pub fn set_reviews(&self, app_id: &str, reviews: Vec<Value>) {
        self.data().reviews.insert(app_id.to_string(), reviews);
    }

    /// Adds one review to `app_id` (creating the app's list if needed).
    pub fn push_review(&self, app_id: &str, review: Value) {
        self.data()
            .reviews
            .entry(app_id.to_string())
            .or_default()
            .push(review);
    }

    /// Makes `GET /v1/apps/{app_id}` answer with this name (bundle id `com.example.app<app_id>`).
    pub fn set_app_name(&self, app_id: &str, name: &str) {
        self.data()
            .app_names
            .insert(app_id.to_string(), name.to_string());
    }

    /// Gives review `review_id` of `app_id` a published developer reply, served in `included`
    /// when the list is asked with `include=response`.
    pub fn set_response(&self, app_id: &str, review_id: &str, body: &str) {
        self.set_response_in_state(app_id, review_id, body, "PUBLISHED");
    }

    /// Like [`AscDouble::set_response`], in `state` (Apple's are `PUBLISHED` and
    /// `PENDING_PUBLISH`).
    pub fn set_response_in_state(&self, app_id: &str, review_id: &str, body: &str, state: &str) {
        self.data().responses.insert(
            (app_id.to_string(), review_id.to_string()),
            ResponseData {
                id: format!("response-{review_id}"),
                body: body.to_string(),
                state: state.to_string(),
            },
        );
    }

    /// How many `GET /v1/apps/{app_id}` requests arrived (any outcome).
    pub fn app_lookups(&self, app_id: &str) -> usize {
        let path = format!("/v1/apps/{app_id}");
        self.data()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.data().requests.clone()
    }

    /// Every bearer token that passed verification, in arrival order (duplicates kept).
    pub fn accepted_tokens(&self) -> Vec<String> {
        self.data().accepted_tokens.clone()
    }

    /// How many `GET /v1/apps/{app_id}/customerReviews` requests arrived (any outcome).
    pub fn review_list_requests(&self, app_id: &str) -> usize {
        self.data()
            .review_list_requests
            .get(app_id)
            .copied()
            .unwrap_or(0)
    }

    /// The next `n` review-list requests (any app, after the token check) answer `status`
    /// with `body` (JSON; `Value::Null` sends an empty body) and extra `headers`.
    pub fn fail_next(&self, n: usize, status: u16, body: Value, headers: Vec<(String, String)>) {
        self.data().failure = Some(CannedFailure {
            remaining: n,
            status,
            body,
            headers,
        });
    }

    /// Sends Apple's `X-Rate-Limit: user-hour-lim:<limit>;user-hour-rem:<remaining>;` with every
    /// answer, `remaining` counting down one per request (`None` stops the header).
    pub fn set_rate_limit(&self, budget: Option<(u32, u32)>) {
        self.data().rate_limit = budget;
    }

    /// Delays every answer by `delay` (zero turns it off).
    pub fn set_delay(&self, delay: Duration) {
        self.data().delay = delay;
    }

    /// Page `page_index` (0-based, = offset / limit) of `app_id`'s review list answers 200
    /// with this raw body instead of the real page.
    pub fn set_page_override(&self, app_id: &str, page_index: usize, raw_body: String) {
        self.data()
            .page_overrides
            .insert((app_id.to_string(), page_index), raw_body);
    }

    /// Page `page_index` of `app_id`'s review list carries this `links.next`, even on the last page.
    pub fn set_next_link_override(&self, app_id: &str, page_index: usize, next: String) {
        self.data()
            .next_overrides
            .insert((app_id.to_string(), page_index), next);
    }

    /// Removes the page and `links.next` overrides of `app_id`: its pages are real again.
    pub fn clear_overrides(&self, app_id: &str) {
        let mut data = self.data();
        data.page_overrides.retain(|(app, _), _| app != app_id);
        data.next_overrides.retain(|(app, _), _| app != app_id);
    }

    /// The developer's answer to review `review_id` of `app_id`, as the double keeps it:
    /// (id, body, state).
    pub fn response(&self, app_id: &str, review_id: &str) -> Option<(String, String, String)> {
        self.data()
            .responses
            .get(&(app_id.to_string(), review_id.to_string()))
            .map(|r| (r.id.clone(), r.body.clone(), r.state.clone()))
    }

    /// Every `POST /v1/customerReviewResponses` body received, as JSON (`Null` when not JSON).
    pub fn answer_bodies(&self) -> Vec<Value> {
        self.data().answer_bodies.clone()
    }

    /// Requests that reached the answer routes (`/v1/customerReviewResponses…` and
    /// `/v1/customerReviews/{id}/response`), any outcome.
    pub fn answer_requests(&self) -> Vec<RecordedRequest> {
        self.data()
            .requests
            .iter()
            .filter(|r| is_answer_path(&r.path))
            .cloned()
            .collect()
    }

    /// The next `n` requests to the answer routes (after the token check) answer `status` with
    /// `body`: a role that may not answer (403), a conflict (409), an unprocessable answer (422).
    pub fn fail_answers_next(&self, n: usize, status: u16, body: Value) {
        self.data().answer_failure = Some(CannedFailure {
            remaining: n,
            status,
            body,
            headers: Vec::new(),
        });
    }

    /// Publishes every pending answer, as Apple does after its review.
    pub fn publish_answers(&self) {
        for response in self.data().responses.values_mut() {
            response.state = "PUBLISHED".into();
        }
    }

    /// Drops recorded requests, tokens and counters (data and switches stay).
    pub fn clear_requests(&self) {
        let mut data = self.data();
        data.requests.clear();
        data.accepted_tokens.clear();
        data.review_list_requests.clear();
    }
}

/// A `customerReviews` resource as the API returns it; absent attributes are left out.
pub fn review(
    id: &str,
    created_date: &str,
    rating: u8,
    title: Option<&str>,
    body: Option<&str>,
    nickname: Option<&str>,
    territory: Option<&str>,
) -> Value {
    let mut attributes = serde_json::Map::new();
    attributes.insert("rating".into(), json!(rating));
    if let Some(title) = title {
        attributes.insert("title".into(), json!(title));
    }
    if let Some(body) = body {
        attributes.insert("body".into(), json!(body));
    }
    if let Some(nickname) = nickname {
        attributes.insert("reviewerNickname".into(), json!(nickname));
    }
    attributes.insert("createdDate".into(), json!(created_date));
    if let Some(territory) = territory {
        attributes.insert("territory".into(), json!(territory));
    }
    let apple = "https://api.appstoreconnect.apple.com/v1/customerReviews";
    json!({
        "type": "customerReviews",
        "id": id,
        "attributes": attributes,
        "relationships": {
            "response": {
                "links": {
                    "self": format!("{apple}/{id}/relationships/response"),
                    "related": format!("{apple}/{id}/response"),
                }
            }
        },
        "links": { "self": format!("{apple}/{id}") }
    })
}

/// An Apple `ErrorResponse` with one error.
pub fn error_body(status: u16, code: &str, title: &str, detail: &str) -> Value {
    json!({
        "errors": [{
            "id": error_id(),
            "status": status.to_string(),
            "code": code,
            "title": title,
            "detail": detail,
        }]
    })
}

/// Apple's answer to a missing, badly signed or expired token.
pub fn not_authorized_body() -> Value {
    error_body(
        401,
        "NOT_AUTHORIZED",
        "Authentication credentials are missing or invalid.",
        "Provide a properly configured and signed bearer token, and make sure that it has not expired. \
         Learn more about Generating Tokens for API Requests https://developer.apple.com/go/?id=api-generating-tokens",
    )
}

fn error_id() -> String {
    // Unique enough for a test double; shaped like Apple's UUID ids.
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, AtomicOrdering::Relaxed);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u128;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (nanos >> 32) as u32,
        (nanos >> 16) as u16,
        (n >> 12) & 0xfff,
        n & 0xfff,
        nanos & 0xffff_ffff_ffff
    )
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    fn error(status: u16, code: &str, title: &str, detail: &str) -> Reply {
        Reply::json(status, &error_body(status, code, title, detail))
    }

    fn invalid_parameter(parameter: &str, detail: String) -> Reply {
        let mut body = error_body(
            400,
            "PARAMETER_ERROR.INVALID",
            "A parameter has an invalid value",
            &detail,
        );
        body["errors"][0]["source"] = json!({ "parameter": parameter });
        Reply::json(400, &body)
    }

    fn into_response(self) -> Response {
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        let has_content_type = self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if !self.body.is_empty() && !has_content_type {
            builder = builder.header("content-type", "application/json");
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(Body::from(self.body))
            .unwrap_or_else(|e| plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
    }
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut response = Response::new(Body::from(text.to_string()));
    *response.status_mut() = status;
    response
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = bearer_token(&headers);
    let auth = match &token {
        Some(token) => shared.verify(token),
        None => Err("no `Authorization: Bearer` header".to_string()),
    };
    let mut reply = match &auth {
        Err(_) => Reply::json(401, &not_authorized_body()),
        Ok(()) if is_answer_path(uri.path()) => {
            shared.answers(&method, uri.path(), &headers, &body)
        }
        Ok(()) => shared.route(&method, &uri),
    };
    // Counted and recorded before the delay, so a client that gives up is still seen.
    let delay = {
        let mut data = shared.data.lock().unwrap();
        if let Ok(()) = &auth
            && let Some(token) = &token
        {
            data.accepted_tokens.push(token.clone());
        }
        if let Some(app_id) = review_list_app(uri.path()) {
            *data
                .review_list_requests
                .entry(app_id.to_string())
                .or_default() += 1;
        }
        data.requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            auth_ok: auth.is_ok(),
            auth_error: auth.err(),
            token,
            status: reply.status,
        });
        if let Some((limit, remaining)) = data.rate_limit.as_mut() {
            *remaining = remaining.saturating_sub(1);
            reply.headers.push((
                "x-rate-limit".into(),
                format!("user-hour-lim:{limit};user-hour-rem:{remaining};"),
            ));
        }
        data.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    reply.into_response()
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The paths of answers: `/v1/customerReviewResponses[/{id}]`, `/v1/customerReviews/{id}/response`.
fn is_answer_path(path: &str) -> bool {
    path.starts_with("/v1/customerReviewResponses")
        || (path.starts_with("/v1/customerReviews/") && path.ends_with("/response"))
}

/// Why a create request's body is not Apple's `CustomerReviewResponseV1CreateRequest`.
fn create_request_error(body: &Value) -> Option<String> {
    let data = &body["data"];
    if data["type"] != "customerReviewResponses" {
        return Some(format!(
            "data.type is {}, expected \"customerReviewResponses\"",
            data["type"]
        ));
    }
    let Some(attributes) = data["attributes"].as_object() else {
        return Some("data.attributes is required".into());
    };
    if attributes.keys().any(|k| k != "responseBody") {
        return Some("data.attributes may hold only responseBody".into());
    }
    if !attributes.get("responseBody").is_some_and(Value::is_string) {
        return Some("data.attributes.responseBody is required and must be a string".into());
    }
    let review = &data["relationships"]["review"]["data"];
    if review["type"] != "customerReviews" || !review["id"].is_string() {
        return Some("data.relationships.review.data must be {type: customerReviews, id}".into());
    }
    if data.as_object().is_some_and(|d| {
        d.keys()
            .any(|k| !["type", "attributes", "relationships"].contains(&k.as_str()))
    }) {
        return Some("data may hold only type, attributes and relationships".into());
    }
    None
}

/// `Some(app_id)` for `/v1/apps/{app_id}/customerReviews`.
fn review_list_app(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v1/apps/")?;
    let (app_id, tail) = rest.split_once('/')?;
    (tail == "customerReviews" && !app_id.is_empty()).then_some(app_id)
}

impl Shared {
    /// The answer routes, after the token check.
    fn answers(&self, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
        let mut data = self.data.lock().unwrap();
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if method == Method::POST && path == "/v1/customerReviewResponses" {
            data.answer_bodies.push(parsed.clone());
        }
        if let Some(failure) = data.answer_failure.as_mut()
            && failure.remaining > 0
        {
            failure.remaining -= 1;
            return Reply::json(failure.status, &failure.body);
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.clone(), segments.as_slice()) {
            (Method::POST, ["v1", "customerReviewResponses"]) => {
                let json_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/json"));
                if !json_type {
                    return Reply::error(
                        415,
                        "UNSUPPORTED_MEDIA_TYPE",
                        "Unsupported media type",
                        "Send application/json",
                    );
                }
                if let Some(problem) = create_request_error(&parsed) {
                    return Reply::error(
                        422,
                        "ENTITY_UNPROCESSABLE",
                        "The request entity is not valid",
                        &problem,
                    );
                }
                let review_id = parsed["data"]["relationships"]["review"]["data"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let text = parsed["data"]["attributes"]["responseBody"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let Some(app_id) = data.reviews.iter().find_map(|(app, reviews)| {
                    reviews
                        .iter()
                        .any(|r| r["id"] == review_id.as_str())
                        .then(|| app.clone())
                }) else {
                    return Reply::error(
                        409,
                        "ENTITY_ERROR.RELATIONSHIP.INVALID",
                        "The provided entity includes a relationship with an invalid value",
                        &format!("There is no customerReviews resource with id '{review_id}'"),
                    );
                };
                let id = format!("response-{}", error_id());
                let response = ResponseData {
                    id,
                    body: text,
                    state: "PENDING_PUBLISH".into(),
                };
                let resource = self.full_response(&response, &review_id);
                data.responses.insert((app_id, review_id), response);
                Reply::json(
                    201,
                    &json!({ "data": resource, "links": { "self": format!("{}/v1/customerReviewResponses", self.base_url) } }),
                )
            }
            (Method::DELETE, ["v1", "customerReviewResponses", id]) => {
                let key = data
                    .responses
                    .iter()
                    .find(|(_, r)| r.id == *id)
                    .map(|(key, _)| key.clone());
                match key {
                    Some(key) => {
                        data.responses.remove(&key);
                        Reply {
                            status: 204,
                            headers: Vec::new(),
                            body: String::new(),
                        }
                    }
                    None => not_found("customerReviewResponses", id),
                }
            }
            (Method::GET, ["v1", "customerReviews", review_id, "response"]) => {
                match data.responses.iter().find(|((_, r), _)| r == review_id) {
                    Some((_, response)) => Reply::json(
                        200,
                        &json!({ "data": self.full_response(response, review_id), "links": { "self": format!("{}{path}", self.base_url) } }),
                    ),
                    None => not_found("customerReviewResponses", review_id),
                }
            }
            _ => Reply::error(
                405,
                "METHOD_NOT_ALLOWED",
                "The request method is not valid for the resource path.",
                &format!(
                    "The request method is not valid for the resource path. ({method} {path})"
                ),
            ),
        }
    }

    /// A `customerReviewResponses` resource with every attribute.
    fn full_response(&self, response: &ResponseData, review_id: &str) -> Value {
        json!({
            "type": "customerReviewResponses",
            "id": response.id,
            "attributes": {
                "responseBody": response.body,
                "lastModifiedDate": RESPONSE_DATE,
                "state": response.state,
            },
            "relationships": { "review": { "data": { "type": "customerReviews", "id": review_id } } },
            "links": { "self": format!("{}/v1/customerReviewResponses/{}", self.base_url, response.id) },
        })
    }

    /// Apple's rules for API tokens; `Err` says which one failed.
    fn verify(&self, token: &str) -> Result<(), String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| format!("unreadable JWT header: {e}"))?;
        if header.alg != Algorithm::ES256 {
            return Err(format!("alg is {:?}, not ES256", header.alg));
        }
        if header.kid.as_deref() != Some(self.config.key_id.as_str()) {
            return Err(format!(
                "kid is {:?}, expected {:?}",
                header.kid, self.config.key_id
            ));
        }
        if header.typ.as_deref() != Some("JWT") {
            return Err(format!("typ is {:?}, expected \"JWT\"", header.typ));
        }
        let mut validation = Validation::new(Algorithm::ES256);
        // Exact checks below; the library only verifies the signature and exp without slack.
        validation.leeway = 0;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Value>(token, &self.key, &validation)
            .map_err(|e| format!("rejected by signature/exp check: {e}"))?
            .claims;

        if claims.get("aud").and_then(Value::as_str) != Some(AUDIENCE) {
            return Err(format!(
                "aud is {:?}, expected {AUDIENCE:?}",
                claims.get("aud")
            ));
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or("exp missing or not an integer")?;
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or("iat missing or not an integer")?;
        if exp <= keys::now_secs() {
            return Err(format!("token expired (exp {exp})"));
        }
        if exp - iat > MAX_TOKEN_LIFETIME_SECS {
            return Err(format!(
                "exp - iat = {} s, more than {MAX_TOKEN_LIFETIME_SECS} s",
                exp - iat
            ));
        }
        match &self.config.issuer_id {
            Some(issuer) => {
                if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                    return Err(format!(
                        "iss is {:?}, expected {issuer:?}",
                        claims.get("iss")
                    ));
                }
            }
            None => {
                if claims.get("iss").is_some() {
                    return Err("individual key token must not have iss".to_string());
                }
                if claims.get("sub").and_then(Value::as_str) != Some("user") {
                    return Err(format!(
                        "individual key token needs sub \"user\", got {:?}",
                        claims.get("sub")
                    ));
                }
            }
        }
        Ok(())
    }

    fn route(&self, method: &Method, uri: &Uri) -> Reply {
        let path = uri.path();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let route = match segments.as_slice() {
            ["v1", "apps", id, "customerReviews"] if !id.is_empty() => Some((*id, true)),
            ["v1", "apps", id] if !id.is_empty() => Some((*id, false)),
            _ => None,
        };
        let Some((app_id, is_list)) = route else {
            return Reply::error(
                404,
                "NOT_FOUND",
                "The specified resource does not exist",
                &format!("The path provided does not match a defined resource type. ({path})"),
            );
        };
        if method != Method::GET {
            return Reply::error(
                405,
                "METHOD_NOT_ALLOWED",
                "The request method is not valid for the resource path.",
                &format!(
                    "The request method is not valid for the resource path. ({method} {path})"
                ),
            );
        }
        if is_list {
            self.review_list(app_id, uri)
        } else {
            self.app(app_id, uri)
        }
    }

    fn app(&self, app_id: &str, uri: &Uri) -> Reply {
        let mut fields = None;
        for (name, value) in query_pairs(uri) {
            match name.as_str() {
                "fields[apps]" => match field_list(&name, &value, &APP_FIELDS) {
                    Ok(list) => fields = Some(list),
                    Err(reply) => return reply,
                },
                "include" | "limit[appInfos]" | "limit[appStoreVersions]" => {
                    return Reply::invalid_parameter(
                        &name,
                        format!("The parameter '{name}' is not implemented by the test double."),
                    );
                }
                _ if name.starts_with("fields[") => {
                    return Reply::invalid_parameter(
                        &name,
                        format!("The parameter '{name}' is not implemented by the test double."),
                    );
                }
                _ => return unknown_parameter(&name),
            }
        }
        let data = self.data.lock().unwrap();
        match data.app_names.get(app_id) {
            Some(name) => {
                let mut attributes = json!({
                    "name": name,
                    "bundleId": format!("com.example.app{app_id}"),
                });
                if let (Some(fields), Some(attributes)) = (&fields, attributes.as_object_mut()) {
                    attributes.retain(|k, _| fields.iter().any(|f| f == k));
                }
                Reply::json(
                    200,
                    &json!({
                        "data": {
                            "type": "apps",
                            "id": app_id,
                            "attributes": attributes,
                            "links": { "self": format!("{}/v1/apps/{app_id}", self.base_url) },
                        },
                        "links": { "self": self.absolute(uri) },
                    }),
                )
            }
            None => not_found("apps", app_id),
        }
    }

    fn absolute(&self, uri: &Uri) -> String {
        match uri.query() {
            Some(q) => format!("{}{}?{q}", self.base_url, uri.path()),
            None => format!("{}{}", self.base_url, uri.path()),
        }
    }

    fn review_list(&self, app_id: &str, uri: &Uri) -> Reply {
        let params = query_pairs(uri);
        let query = match ListQuery::parse(&params) {
            Ok(q) => q,
            Err(reply) => return reply,
        };

        let mut data = self.data.lock().unwrap();
        if let Some(failure) = data.failure.as_mut()
            && failure.remaining > 0
        {
            failure.remaining -= 1;
            let failure = failure.clone();
            return Reply {
                status: failure.status,
                headers: failure.headers,
                body: if failure.body.is_null() {
                    String::new()
                } else {
                    failure.body.to_string()
                },
            };
        }
        let Some(all) = data.reviews.get(app_id) else {
            return not_found("apps", app_id);
        };

        let mut reviews: Vec<Value> = all.iter().filter(|r| query.keeps(r)).cloned().collect();
        // Vec::sort_by is stable: ties keep their stored order.
        reviews.sort_by(|a, b| query.compare(a, b));

        let total = reviews.len();
        let page_index = query.offset / query.limit;
        if let Some(raw) = data.page_overrides.get(&(app_id.to_string(), page_index)) {
            return Reply {
                status: 200,
                headers: Vec::new(),
                body: raw.clone(),
            };
        }
        let end = (query.offset + query.limit).min(total);
        let mut page: Vec<Value> = reviews
            .get(query.offset.min(total)..end)
            .unwrap_or_default()
            .iter()
            .map(|r| query.project(r))
            .collect();
        // `include=response`: each reply's linkage in its review, the reply itself in `included`.
        let mut included = Vec::new();
        if query.include_response {
            for review in &mut page {
                let review_id = review["id"].as_str().unwrap_or_default().to_string();
                let Some(reply) = data.responses.get(&(app_id.to_string(), review_id.clone()))
                else {
                    continue;
                };
                review["relationships"]["response"]["data"] =
                    json!({ "type": "customerReviewResponses", "id": reply.id });
                included.push(self.response_resource(reply, &review_id, &query));
            }
        }

        let mut links = json!({ "self": self.absolute(uri) });
        let next = match data.next_overrides.get(&(app_id.to_string(), page_index)) {
            Some(next) => Some(next.clone()),
            None if end < total => Some(self.next_link(uri.path(), &params, end, query.limit)),
            None => None,
        };
        if let Some(next) = next {
            links["next"] = json!(next);
        }
        let mut document = json!({
            "data": page,
            "links": links,
            "meta": { "paging": { "total": total, "limit": query.limit } },
        });
        if !included.is_empty() {
            document["included"] = json!(included);
        }
        Reply::json(200, &document)
    }

    /// A `customerReviewResponses` resource, its attributes cut to `fields[customerReviewResponses]`.
    fn response_resource(&self, reply: &ResponseData, review_id: &str, query: &ListQuery) -> Value {
        let wanted = |field: &str| {
            query
                .response_fields
                .as_ref()
                .is_none_or(|fields| fields.iter().any(|f| f == field))
        };
        let mut attributes = serde_json::Map::new();
        if wanted("responseBody") {
            attributes.insert("responseBody".into(), json!(reply.body));
        }
        if wanted("lastModifiedDate") {
            attributes.insert("lastModifiedDate".into(), json!(RESPONSE_DATE));
        }
        if wanted("state") {
            attributes.insert("state".into(), json!(reply.state));
        }
        let mut resource = json!({
            "type": "customerReviewResponses",
            "id": reply.id,
            "attributes": attributes,
            "links": { "self": format!("{}/v1/customerReviewResponses/{}", self.base_url, reply.id) },
        });
        if wanted("review") {
            resource["relationships"] = json!({
                "review": { "data": { "type": "customerReviews", "id": review_id } }
            });
        }
        resource
    }

    /// The request's own parameters with `cursor` (and `limit`) set for the page at `offset`.
    fn next_link(
        &self,
        path: &str,
        params: &[(String, String)],
        offset: usize,
        limit: usize,
    ) -> String {
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "cursor" && k != "limit")
            .cloned()
            .collect();
        pairs.push(("cursor".into(), encode_cursor(offset)));
        pairs.push(("limit".into(), limit.to_string()));
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("{}{path}?{query}", self.base_url)
    }
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `value` split on commas when each is one of `allowed`; else Apple's 400.
fn field_list(name: &str, value: &str, allowed: &[&str]) -> Result<Vec<String>, Reply> {
    let list: Vec<String> = value.split(',').map(str::to_string).collect();
    match list.iter().find(|f| !allowed.contains(&f.as_str())) {
        None => Ok(list),
        Some(_) => Err(Reply::invalid_parameter(
            name,
            format!("'{value}' is not a valid value for the parameter '{name}'."),
        )),
    }
}

fn unknown_parameter(name: &str) -> Reply {
    Reply::invalid_parameter(
        name,
        format!("The parameter '{name}' can not be used with this request"),
    )
}

fn not_found(resource_type: &str, id: &str) -> Reply {
    Reply::error(
        404,
        "NOT_FOUND",
        "The specified resource does not exist",
        &format!("There is no resource of type '{resource_type}' with id '{id}'"),
    )
}

#[derive(Clone, Copy)]
enum SortKey {
    CreatedDate,
    Rating,
}

struct ListQuery {
    limit: usize,
    offset: usize,
    sort: Vec<(SortKey, bool)>,
    ratings: Option<Vec<String>>,
    territories: Option<Vec<String>>,
    fields: Option<Vec<String>>,
    include_response: bool,
    response_fields: Option<Vec<String>>,
}

impl ListQuery {
    fn parse(params: &[(String, String)]) -> Result<ListQuery, Reply> {
        let mut q = ListQuery {
            limit: DEFAULT_LIMIT,
            offset: 0,
            sort: Vec::new(),
            ratings: None,
            territories: None,
            fields: None,
            include_response: false,
            response_fields: None,
        };
        let list = |v: &str| v.split(',').map(str::to_string).collect::<Vec<_>>();
        for (name, value) in params {
            let invalid = || {
                Reply::invalid_parameter(
                    name,
                    format!("'{value}' is not a valid value for the parameter '{name}'."),
                )
            };
            match name.as_str() {
                "limit" => match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => q.limit = n,
                    _ => return Err(invalid()),
                },
                "cursor" => q.offset = decode_cursor(value).ok_or_else(invalid)?,
                "sort" => {
                    for key in value.split(',') {
                        let (field, descending) = match key.strip_prefix('-') {
                            Some(field) => (field, true),
                            None => (key, false),
                        };
                        let field = match field {
                            "createdDate" => SortKey::CreatedDate,
                            "rating" => SortKey::Rating,
                            _ => return Err(invalid()),
                        };
                        q.sort.push((field, descending));
                    }
                }
                "include" => {
                    for relationship in value.split(',') {
                        match relationship {
                            "response" => q.include_response = true,
                            // Valid for Apple; the double sends no territories.
                            "reviewTerritory" => {}
                            other => {
                                return Err(Reply::invalid_parameter(
                                    name,
                                    format!("The relationship '{other}' cannot be included"),
                                ));
                            }
                        }
                    }
                }
                "filter[rating]" => q.ratings = Some(list(value)),
                "filter[territory]" => q.territories = Some(list(value)),
                "fields[customerReviews]" => {
                    q.fields = Some(field_list(name, value, &REVIEW_FIELDS)?)
                }
                "fields[customerReviewResponses]" => {
                    q.response_fields = Some(field_list(name, value, &RESPONSE_FIELDS)?);
                }
                // Valid for Apple; the double sends no territories.
                "fields[territories]" => {}
                "filter[reviewTerritory]" | "exists[publishedResponse]" => {
                    return Err(Reply::invalid_parameter(
                        name,
                        format!("The parameter '{name}' is not implemented by the test double."),
                    ));
                }
                _ => return Err(unknown_parameter(name)),
            }
        }
        Ok(q)
    }

    fn keeps(&self, review: &Value) -> bool {
        let attrs = &review["attributes"];
        if let Some(ratings) = &self.ratings {
            let rating = attrs["rating"].as_i64().map(|r| r.to_string());
            if !ratings.iter().any(|r| Some(r) == rating.as_ref()) {
                return false;
            }
        }
        if let Some(territories) = &self.territories {
            let territory = attrs["territory"].as_str();
            if !territories.iter().any(|t| Some(t.as_str()) == territory) {
                return false;
            }
        }
        true
    }

    fn compare(&self, a: &Value, b: &Value) -> Ordering {
        for &(key, descending) in &self.sort {
            let ordering = match key {
                SortKey::CreatedDate => created(a).cmp(&created(b)),
                SortKey::Rating => a["attributes"]["rating"]
                    .as_i64()
                    .cmp(&b["attributes"]["rating"].as_i64()),
            };
            let ordering = if descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    }

    /// Applies `fields[customerReviews]` to the attributes.
    fn project(&self, review: &Value) -> Value {
        let mut review = review.clone();
        if let Some(fields) = &self.fields
            && let Some(attrs) = review["attributes"].as_object_mut()
        {
            attrs.retain(|k, _| fields.iter().any(|f| f == k));
        }
        review
    }
}

/// The review's createdDate as an instant (so offsets compare correctly); `None` sorts first.
fn created(review: &Value) -> Option<OffsetDateTime> {
    review["attributes"]["createdDate"]
        .as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

/// A cursor as the double writes it (like Apple's: base64 of `{"offset":"<n>"}`).
pub fn encode_cursor(offset: usize) -> String {
    base64_encode(format!("{{\"offset\":\"{offset}\"}}").as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = base64_decode(cursor)?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value["offset"].as_str()?.parse().ok()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(input: &[u8]) -> String {
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let input = input.trim_end_matches('=');
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in input.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
