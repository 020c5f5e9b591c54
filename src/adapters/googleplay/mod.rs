//! Google Play: customer reviews from the Google Play Developer API (`reviews.list`), read with
//! a service account's OAuth access token.

mod answers;
mod model;
mod quota;
mod token;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tracing::warn;
use url::Url;

use crate::adapters::credentials::SecretHandle;
use crate::adapters::retry::{Attempt, retry_after, with_retries};
use crate::adapters::{Answer, send_and_read};
use crate::config::RetryPolicy;
use crate::domain::{AppId, Store};
use crate::ports::{Cursor, Page, ReviewSource, SourceError, TimeLimit};
use crate::secret::{RelaySecret, ServiceAccount};

pub use quota::{HOURLY_GETS, HourlyGets, OPTIONAL_UNTIL};
pub use token::TokenCache;

/// Google's largest page.
const PAGE_SIZE: u32 = 100;

pub struct GooglePlayClient {
    http: reqwest::Client,
    secret: SecretHandle,
    /// `PLAY_BASE_URL`; the access token goes to this origin only.
    base: Url,
    /// `PLAY_TRANSLATION_LANGUAGE`: reviews in other languages arrive translated into it.
    translation_language: Option<String>,
    retry: RetryPolicy,
    tokens: TokenCache,
    gets: HourlyGets,
}

impl GooglePlayClient {
    pub fn new(
        http: reqwest::Client,
        secret: SecretHandle,
        base: Url,
        translation_language: Option<String>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http,
            secret,
            base,
            translation_language: translation_language.filter(|l| !l.trim().is_empty()),
            retry,
            tokens: TokenCache::default(),
            gets: HourlyGets::default(),
        }
    }

    /// `{base}/androidpublisher/v3/applications/{package}/reviews?maxResults=100[&token=…]
    /// [&translationLanguage=…]`, whatever path `PLAY_BASE_URL` already has.
    fn list_url(&self, app: &AppId, cursor: &Cursor) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}/androidpublisher/v3/applications/{app}/reviews",
            self.base.path().trim_end_matches('/')
        ));
        url.set_query(None);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("maxResults", &PAGE_SIZE.to_string());
            if let Cursor::Next(token) = cursor
                && !token.is_empty()
            {
                query.append_pair("token", token);
            }
            if let Some(language) = &self.translation_language {
                query.append_pair("translationLanguage", language);
            }
        }
        url
    }
}

#[async_trait]
impl ReviewSource for GooglePlayClient {
    async fn page(
        &self,
        app: &AppId,
        cursor: &Cursor,
        limit: Option<TimeLimit>,
    ) -> Result<Page, SourceError> {
        let url = self.list_url(app, cursor);
        let secret = self.secret.current().await?;
        let read = |account: ServiceAccount| {
            let url = url.clone();
            async move {
                with_retries(&self.retry, TimeLimit::give_up_at(limit), |attempt| {
                    self.get_once(&account, app, &url, limit, attempt)
                })
                .await
            }
        };
        match read(service_account(&secret)?).await {
            // The key may have been rotated (and the old one deleted) since the secret was read.
            Err(SourceError::PlayUnauthorized | SourceError::PlayTokenRefused { .. }) => {
                warn!(
                    app_id = %app,
                    "Google refused the service account's token; trying once more with the secret read again"
                );
                self.tokens.forget();
                let fresh = self.secret.after_refusal(&secret).await?;
                read(service_account(&fresh)?).await
            }
            other => other,
        }
    }

    fn optional_reads_affordable(&self, app: &AppId) -> bool {
        self.gets.allows_optional(app, unix_now())
    }

    fn hourly_request_limit(&self) -> Option<u32> {
        Some(HOURLY_GETS)
    }

    fn requests_sent(&self, app: &AppId) -> u64 {
        self.gets.total(app)
    }
}

/// The secret's Google Cloud service account.
fn service_account(secret: &RelaySecret) -> Result<ServiceAccount, SourceError> {
    secret
        .google_service_account
        .clone()
        .ok_or(SourceError::NoCredentials(
            "the secret has no Google Play service account: add `google_service_account`, the JSON key Google Cloud downloads for the service account",
        ))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn transport(cause: String, attempts: u32) -> SourceError {
    SourceError::Transport {
        store: Store::GooglePlay,
        cause,
        attempts,
    }
}

impl GooglePlayClient {
    /// An access token for `account`: the kept one, or a new one from `token_uri`.
    async fn access_token(
        &self,
        account: &ServiceAccount,
        limit: Option<TimeLimit>,
        attempt: u32,
    ) -> Attempt<SecretString, SourceError> {
        if let Some(token) = self.tokens.get(account, Instant::now()) {
            return Attempt::Done(token);
        }
        let now = u64::try_from(unix_now()).unwrap_or(0);
        let assertion = match token::assertion(account, now) {
            Ok(assertion) => assertion,
            Err(e) => return Attempt::Fail(SourceError::Signing(e.to_string())),
        };
        let asked_at = Instant::now();
        let request = self
            .http
            .post(account.token_uri.clone())
            .timeout(TimeLimit::request_timeout(
                limit,
                self.retry.request_timeout,
            ))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(token::exchange_form(assertion.expose_secret()));
        let Answer {
            status,
            headers,
            body,
        } = match send_and_read(request).await {
            Ok(answer) => answer,
            Err(e) => {
                return Attempt::Retry {
                    error: transport(
                        format!(
                            "the token endpoint {}: {}",
                            account.token_uri,
                            super::describe_http_error(e)
                        ),
                        attempt,
                    ),
                    after: None,
                };
            }
        };
        let after = retry_after(&headers);
        if status == StatusCode::OK {
            return match serde_json::from_slice::<model::TokenAnswer>(&body) {
                Ok(answer) if !answer.access_token.is_empty() => {
                    let token = SecretString::from(answer.access_token);
                    self.tokens
                        .keep(account, token.clone(), answer.expires_in, asked_at);
                    Attempt::Done(token)
                }
                // serde_json's message names a position, never the input.
                Ok(_) => Attempt::Fail(SourceError::Unparseable(
                    "the token endpoint's answer has an empty access_token".into(),
                )),
                Err(e) => Attempt::Fail(SourceError::Unparseable(format!(
                    "the token endpoint's answer: {e}"
                ))),
            };
        }
        if status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED {
            let refusal: model::TokenRefusal = serde_json::from_slice(&body).unwrap_or_default();
            return Attempt::Fail(SourceError::PlayTokenRefused {
                error: refusal
                    .error
                    .map_or_else(|| status.as_u16().to_string(), |e| super::first_line(&e)),
                description: refusal
                    .error_description
                    .map(|d| format!(": {}", super::first_line(&d)))
                    .unwrap_or_default(),
            });
        }
        let error = SourceError::PlayStatus {
            status: status.as_u16(),
            detail: " at the token endpoint".into(),
            attempts: attempt,
        };
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Attempt::Retry { error, after }
        } else {
            Attempt::Fail(error)
        }
    }

    async fn get_once(
        &self,
        account: &ServiceAccount,
        app: &AppId,
        url: &Url,
        limit: Option<TimeLimit>,
        attempt: u32,
    ) -> Attempt<Page, SourceError> {
        let token = match self.access_token(account, limit, attempt).await {
            Attempt::Done(token) => token,
            Attempt::Retry { error, after } => return Attempt::Retry { error, after },
            Attempt::RetryMaybeTaken(error) => return Attempt::RetryMaybeTaken(error),
            Attempt::Fail(error) => return Attempt::Fail(error),
        };
        // Google counts every GET that reaches it, refused or not.
        self.gets.count(app, unix_now());
        let request = self
            .http
            .get(url.clone())
            .timeout(TimeLimit::request_timeout(
                limit,
                self.retry.request_timeout,
            ))
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        let Answer {
            status,
            headers,
            body,
        } = match send_and_read(request).await {
            Ok(answer) => answer,
            Err(e) => {
                return Attempt::Retry {
                    error: transport(super::describe_http_error(e), attempt),
                    after: None,
                };
            }
        };
        let after = retry_after(&headers);
        let rate_limited = |status: StatusCode| {
            warn!(
                app_id = %app,
                status = status.as_u16(),
                attempt,
                used_this_hour = self.gets.used(app, unix_now()),
                "Google Play quota exceeded; backing off"
            );
            Attempt::Retry {
                error: SourceError::PlayRateLimited {
                    status: status.as_u16(),
                    attempts: attempt,
                },
                after,
            }
        };
        match status {
            StatusCode::OK => match parse_page(&body) {
                Ok(page) => Attempt::Done(page),
                Err(e) => Attempt::Fail(e),
            },
            StatusCode::UNAUTHORIZED => {
                self.tokens.forget();
                Attempt::Fail(SourceError::PlayUnauthorized)
            }
            StatusCode::FORBIDDEN => match model::ErrorDocument::parse(&body).forbidden() {
                model::Forbidden::ApiDisabled { project } => {
                    Attempt::Fail(SourceError::PlayApiDisabled { project })
                }
                model::Forbidden::RateLimited => rate_limited(status),
                model::Forbidden::NoPermission => Attempt::Fail(SourceError::PlayForbidden {
                    package: app.clone(),
                    account: account.client_email.clone(),
                }),
            },
            StatusCode::NOT_FOUND => Attempt::Fail(SourceError::PlayAppNotFound(app.clone())),
            StatusCode::TOO_MANY_REQUESTS => rate_limited(status),
            other => {
                let error = SourceError::PlayStatus {
                    status: other.as_u16(),
                    detail: model::ErrorDocument::parse(&body).summary(),
                    attempts: attempt,
                };
                if other.is_server_error() {
                    Attempt::Retry { error, after }
                } else {
                    Attempt::Fail(error)
                }
            }
        }
    }
}

/// A `reviews.list` answer as a page; a review that cannot be used is left out with a warning
/// naming its id.
fn parse_page(body: &[u8]) -> Result<Page, SourceError> {
    use serde::Deserialize as _;

    let page: model::ReviewsPage = serde_json::from_slice(body)
        .map_err(|e| SourceError::Unparseable(format!("reviews.list: {e}")))?;
    let mut reviews = Vec::with_capacity(page.reviews.len());
    for raw in &page.reviews {
        let mapped = model::PlayReview::deserialize(raw)
            // serde's message can quote a value, which may be the reviewer's words.
            .map_err(|_| "it does not match Google's Review schema".to_owned())
            .and_then(model::PlayReview::into_review);
        match mapped {
            Ok(review) => reviews.push(review),
            Err(cause) => {
                let id = model::ReviewIdOnly::deserialize(raw)
                    .ok()
                    .and_then(|r| r.review_id)
                    .unwrap_or_else(|| "(no reviewId)".into());
                warn!(review_id = %id, %cause, "a Google Play review is left out");
            }
        }
    }
    let next = page
        .token_pagination
        .and_then(|t| t.next_page_token)
        .filter(|token| !token.is_empty())
        .map(Cursor::Next);
    Ok(Page { reviews, next })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::domain::{DeveloperResponse, StoreDetails};

    fn client(base: &str, language: Option<&str>) -> GooglePlayClient {
        let retry = RetryPolicy {
            attempts: 1,
            first_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            retry_after_max: Duration::ZERO,
            request_timeout: Duration::from_secs(1),
        };
        GooglePlayClient::new(
            reqwest::Client::new(),
            SecretHandle::unused(),
            Url::parse(base).unwrap(),
            language.map(str::to_owned),
            retry,
        )
    }

    #[test]
    fn a_reply_goes_to_the_reviews_own_path() {
        let app = AppId::play("com.example.tally").unwrap();
        let c = client("http://127.0.0.1:9/prefix/", Some("de"));
        assert_eq!(
            c.review_url(&app, "gp:AOq/x", ":reply").as_str(),
            "http://127.0.0.1:9/prefix/androidpublisher/v3/applications/com.example.tally/reviews/gp:AOq%2Fx:reply"
        );
        assert_eq!(
            serde_json::to_value(answers::ReplyRequest { reply_text: "Hi" }).unwrap(),
            json!({"replyText": "Hi"})
        );
    }

    fn page(reviews: serde_json::Value) -> Page {
        parse_page(json!({ "reviews": reviews }).to_string().as_bytes()).unwrap()
    }

    fn stamp(seconds: &str, nanos: i64) -> serde_json::Value {
        json!({ "seconds": seconds, "nanos": nanos })
    }

    #[test]
    fn asks_for_big_pages_with_the_token_and_the_translation_language() {
        let app = AppId::play("com.example.tally").unwrap();
        let plain = client("https://androidpublisher.googleapis.com", None);
        assert_eq!(
            plain.list_url(&app, &Cursor::First).as_str(),
            "https://androidpublisher.googleapis.com/androidpublisher/v3/applications/com.example.tally/reviews?maxResults=100"
        );
        let translated = client("http://127.0.0.1:9/prefix/", Some("de"));
        assert_eq!(
            translated
                .list_url(&app, &Cursor::Next("a b&c".into()))
                .as_str(),
            "http://127.0.0.1:9/prefix/androidpublisher/v3/applications/com.example.tally/reviews?maxResults=100&token=a+b%26c&translationLanguage=de"
        );
    }

    #[test]
    fn maps_a_review_with_its_reply_and_details() {
        let page = page(json!([{
            "reviewId": "gp:1",
            "authorName": "Ana",
            "comments": [
                { "userComment": {
                    "text": "Great\tWorks offline too",
                    "lastModified": stamp("1795168800", 0),
                    "starRating": 4,
                    "reviewerLanguage": "pt_BR",
                    "device": "oriole",
                    "deviceMetadata": { "productName": "Pixel 6", "manufacturer": "Google" },
                    "appVersionName": "1.2.0",
                    "originalText": "Ótimo\tFunciona offline"
                }},
                { "developerComment": {
                    "text": "Thanks!",
                    "lastModified": stamp("1795172400", 500_000_000)
                }}
            ]
        }]));
        let review = &page.reviews[0];
        assert_eq!(review.store, Store::GooglePlay);
        assert_eq!(review.id, "gp:1");
        assert_eq!(review.reviewer_nickname.as_deref(), Some("Ana"));
        assert_eq!(review.rating, Some(4));
        assert_eq!(review.title.as_deref(), Some("Great"));
        assert_eq!(review.body.as_deref(), Some("Works offline too"));
        assert_eq!(review.created_date, "2026-11-20T10:00:00Z");
        assert_eq!(review.territory, None);
        assert_eq!(
            review.response,
            Some(DeveloperResponse {
                body: "Thanks!".into(),
                last_modified_date: Some("2026-11-20T11:00:00.5Z".into()),
            })
        );
        assert_eq!(
            review.details,
            StoreDetails {
                language: Some("pt_BR".into()),
                device: Some("Pixel 6".into()),
                app_version: Some("1.2.0".into()),
                original_text: Some("Ótimo\tFunciona offline".into()),
            }
        );
        assert_eq!(page.next, None);
    }

    #[test]
    fn text_without_a_tab_is_the_body_and_the_device_code_stands_in_for_its_name() {
        let page = page(json!([{
            "reviewId": "2",
            "comments": [{ "userComment": {
                "text": "Just a body",
                "lastModified": stamp("1795168800", 123_456_789),
                "starRating": 0,
                "device": "oriole"
            }}]
        }]));
        let review = &page.reviews[0];
        assert_eq!(
            (review.title.as_deref(), review.body.as_deref()),
            (None, Some("Just a body"))
        );
        assert_eq!(review.rating, None, "0 stars is no rating");
        assert_eq!(review.details.device.as_deref(), Some("oriole"));
        assert_eq!(review.details.original_text, None);
        assert_eq!(review.created_date, "2026-11-20T10:00:00.123456789Z");
        assert_eq!(review.reviewer_nickname, None);
        assert_eq!(review.response, None);
    }

    #[test]
    fn unusable_reviews_are_left_out_and_the_rest_kept() {
        let good = json!({ "reviewId": "ok", "comments": [{ "userComment": {
            "text": "fine", "lastModified": stamp("1795168800", 0) }}]});
        let page = page(json!([
            { "reviewId": "no-user", "comments": [{ "developerComment": { "text": "hi" }}]},
            { "reviewId": "no-date", "comments": [{ "userComment": { "text": "x" }}]},
            { "reviewId": "bad-seconds", "comments": [{ "userComment": {
                "text": "x", "lastModified": stamp("soon", 0) }}]},
            { "reviewId": "bad-nanos", "comments": [{ "userComment": {
                "text": "x", "lastModified": stamp("1795168800", 1_000_000_000) }}]},
            { "reviewId": "wrong-type", "comments": [{ "userComment": {
                "text": 7, "lastModified": stamp("1795168800", 0) }}]},
            { "comments": [] },
            good,
        ]));
        let ids: Vec<_> = page.reviews.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["ok"]);
    }

    #[test]
    fn an_empty_answer_is_an_empty_last_page_and_a_token_leads_on() {
        let empty = parse_page(b"{}").unwrap();
        assert!(empty.reviews.is_empty() && empty.next.is_none());
        let next = parse_page(br#"{"tokenPagination": {"nextPageToken": "abc"}}"#).unwrap();
        assert_eq!(next.next, Some(Cursor::Next("abc".into())));
        let blank = parse_page(br#"{"tokenPagination": {"nextPageToken": ""}}"#).unwrap();
        assert_eq!(blank.next, None);
        assert!(matches!(
            parse_page(b"<html>"),
            Err(SourceError::Unparseable(_))
        ));
    }

    fn google_error(reason: &str, details: serde_json::Value) -> Vec<u8> {
        json!({ "error": {
            "code": 403,
            "message": "m",
            "errors": [{ "message": "m", "domain": "global", "reason": reason }],
            "status": "PERMISSION_DENIED",
            "details": details,
        }})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn tells_the_three_kinds_of_403_apart() {
        use model::{ErrorDocument, Forbidden};
        let kind = |body: &[u8]| ErrorDocument::parse(body).forbidden();
        assert_eq!(
            kind(&google_error("accessNotConfigured", json!([]))),
            Forbidden::ApiDisabled { project: None }
        );
        let service_disabled = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "SERVICE_DISABLED",
            "metadata": { "consumer": "projects/42", "containerInfo": "42" }
        }]);
        assert_eq!(
            kind(&google_error("forbidden", service_disabled)),
            Forbidden::ApiDisabled {
                project: Some("projects/42".into())
            }
        );
        for reason in [
            "rateLimitExceeded",
            "userRateLimitExceeded",
            "dailyLimitExceeded",
        ] {
            assert_eq!(
                kind(&google_error(reason, json!([]))),
                Forbidden::RateLimited
            );
        }
        assert_eq!(
            kind(&google_error("forbidden", json!([]))),
            Forbidden::NoPermission
        );
        assert_eq!(kind(b"not json"), Forbidden::NoPermission);
        assert_eq!(
            ErrorDocument::parse(&google_error("forbidden", json!([]))).summary(),
            " PERMISSION_DENIED: m"
        );
    }
}
