//! App Store Connect: customer reviews, read with an ES256 bearer token.

mod answers;
pub(crate) mod model;
mod token;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use tracing::warn;

use crate::adapters::retry::{Attempt, retry_after, with_retries};
use crate::config::RetryPolicy;
use url::Url;

use crate::adapters::credentials::SecretHandle;
use crate::adapters::{Answer, send_and_read};
use crate::domain::{AppId, Store};
use crate::ports::{Cursor, Page, RateBudget, ReviewSource, SourceError, TimeLimit};
use crate::secret::{ApiKey, RelaySecret};

pub use token::TokenCache;

/// Apple's largest page.
const PAGE_LIMIT: u32 = 200;
/// The reply attributes a message can show (`fields[customerReviewResponses]`).
const REPLY_FIELDS: &str = "responseBody,lastModifiedDate,state";
/// The app's name only dresses up a message: its lookup gets one short try.
const NAME_TIMEOUT: Duration = Duration::from_secs(5);
/// A failed name lookup is not tried again sooner than this, so a run asks at most once per app
/// and the next scheduled run (15 minutes later by default) asks again.
const NAME_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);

pub struct AppStoreClient {
    http: reqwest::Client,
    secret: SecretHandle,
    /// `ASC_BASE_URL`; the token goes to this origin only.
    base: Url,
    tokens: TokenCache,
    retry: RetryPolicy,
    /// From the last answer's `X-Rate-Limit`.
    budget: Mutex<Option<RateBudget>>,
    /// App names, read once per cold start.
    names: Mutex<HashMap<AppId, NameLookup>>,
}

enum NameLookup {
    Known(String),
    FailedAt(Instant),
}

impl AppStoreClient {
    pub fn new(http: reqwest::Client, secret: SecretHandle, base: Url, retry: RetryPolicy) -> Self {
        Self {
            http,
            secret,
            base,
            tokens: TokenCache::default(),
            retry,
            budget: Mutex::new(None),
            names: Mutex::new(HashMap::new()),
        }
    }

    /// `{base}/{path}`, whatever path `ASC_BASE_URL` already has.
    fn api_url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}/{path}",
            self.base.path().trim_end_matches('/')
        ));
        url
    }

    fn first_page_url(&self, app: &AppId) -> Url {
        let mut url = self.api_url(&format!("v1/apps/{app}/customerReviews"));
        url.query_pairs_mut()
            .append_pair("sort", "-createdDate")
            .append_pair("limit", &PAGE_LIMIT.to_string())
            // The developer's reply rides along in `included`: no request per review.
            .append_pair("include", "response")
            .append_pair("fields[customerReviewResponses]", REPLY_FIELDS);
        url
    }

    fn app_url(&self, app: &AppId) -> Url {
        let mut url = self.api_url(&format!("v1/apps/{app}"));
        url.query_pairs_mut().append_pair("fields[apps]", "name");
        url
    }

    /// The page a cursor names: Apple's `cursor` on the first page's query, or a whole link as
    /// `links.next` gave it when it carried no cursor (and as earlier versions saved every stop).
    fn next_page_url(&self, app: &AppId, next: &str) -> Result<Url, SourceError> {
        if next.starts_with("https://") || next.starts_with("http://") {
            let link = Url::parse(next).map_err(|e| {
                SourceError::Unparseable(format!("the saved next link is not a URL ({e})"))
            })?;
            if !self.same_origin(&link) {
                return Err(SourceError::ForeignNext);
            }
            return Ok(link);
        }
        let mut url = self.first_page_url(app);
        url.query_pairs_mut().append_pair("cursor", next);
        Ok(url)
    }

    /// `links.next` as a cursor: Apple's `cursor` alone when the link reads the same list, so
    /// the same page is the same cursor however the link spells it.
    fn cursor_of(&self, next: &Url, page: &Url) -> Cursor {
        let cursor = next
            .query_pairs()
            .find(|(name, _)| name == "cursor")
            .map(|(_, value)| value.into_owned())
            .filter(|value| !value.is_empty() && next.path() == page.path());
        Cursor::Next(cursor.unwrap_or_else(|| next.to_string()))
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }
}

#[async_trait]
impl ReviewSource for AppStoreClient {
    async fn page(
        &self,
        app: &AppId,
        cursor: &Cursor,
        limit: Option<TimeLimit>,
    ) -> Result<Page, SourceError> {
        let url = match cursor {
            Cursor::First => self.first_page_url(app),
            Cursor::Next(next) => self.next_page_url(app, next)?,
        };
        let secret = self.secret.current().await?;
        let read = |key: ApiKey| {
            let url = url.clone();
            async move {
                with_retries(&self.retry, TimeLimit::give_up_at(limit), |attempt| {
                    self.get_once(&key, app, &url, limit, attempt)
                })
                .await
            }
        };
        match read(api_key(&secret)?).await {
            Err(SourceError::Unauthorized) => {
                warn!(
                    "App Store Connect rejected the token; signing a new one with the secret read again"
                );
                self.tokens.forget();
                let fresh = self.secret.after_refusal(&secret).await?;
                read(api_key(&fresh)?).await
            }
            other => other,
        }
    }

    fn optional_reads_affordable(&self, _app: &AppId) -> bool {
        RateBudget::allows_optional(self.budget.lock().ok().and_then(|b| *b))
    }

    async fn app_name(&self, app: &AppId, limit: Option<TimeLimit>) -> Option<String> {
        AppStoreClient::app_name(self, app, limit).await
    }
}

/// The secret's App Store Connect key.
fn api_key(secret: &RelaySecret) -> Result<ApiKey, SourceError> {
    secret.api_key.clone().ok_or(SourceError::NoCredentials(
        "the secret has no App Store Connect key: add `key_id` and `private_key` (and `issuer_id` for a team key)",
    ))
}

impl AppStoreClient {
    async fn get_once(
        &self,
        key: &ApiKey,
        app: &AppId,
        url: &Url,
        limit: Option<TimeLimit>,
        attempt: u32,
    ) -> Attempt<Page, SourceError> {
        let token = match self.bearer(key) {
            Ok(token) => token,
            Err(e) => return Attempt::Fail(SourceError::Signing(e.to_string())),
        };
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
                    error: SourceError::Transport {
                        store: Store::AppStore,
                        cause: super::describe_http_error(e),
                        attempts: attempt,
                    },
                    after: None,
                };
            }
        };
        let rate_limit = self.note_budget(&headers);
        let after = retry_after(&headers);
        match status {
            StatusCode::OK => match self.parse_page(url, &body) {
                Ok(page) => Attempt::Done(page),
                Err(e) => Attempt::Fail(e),
            },
            StatusCode::UNAUTHORIZED => {
                self.tokens.forget();
                Attempt::Fail(SourceError::Unauthorized)
            }
            StatusCode::FORBIDDEN => Attempt::Fail(SourceError::Forbidden),
            StatusCode::NOT_FOUND => Attempt::Fail(SourceError::AppNotFound(app.clone())),
            StatusCode::TOO_MANY_REQUESTS => {
                // Apple's header reads like `user-hour-lim:3500;user-hour-rem:0;`.
                warn!(
                    rate_limit = rate_limit.as_deref().unwrap_or("(not sent)"),
                    attempt, "App Store Connect rate limit exceeded; backing off"
                );
                Attempt::Retry {
                    error: SourceError::RateLimited { attempts: attempt },
                    after,
                }
            }
            other => {
                let error = SourceError::Status {
                    status: other.as_u16(),
                    detail: model::ErrorDocument::summary(&body),
                    attempts: attempt,
                };
                if other.is_server_error() {
                    Attempt::Retry { error, after: None }
                } else {
                    Attempt::Fail(error)
                }
            }
        }
    }
}

impl AppStoreClient {
    /// The app's name from `GET /v1/apps/{id}?fields[apps]=name`, read once per cold start; one
    /// short try, cut short by `limit`. `None` on any failure, logged with its cause; a failed
    /// lookup is not tried again for [`NAME_RETRY_AFTER`].
    pub async fn app_name(&self, app: &AppId, limit: Option<TimeLimit>) -> Option<String> {
        match self.names.lock().ok()?.get(app) {
            Some(NameLookup::Known(name)) => return Some(name.clone()),
            Some(NameLookup::FailedAt(at)) if at.elapsed() < NAME_RETRY_AFTER => return None,
            _ => {}
        }
        // Optional work: none starts once the run is winding down.
        if TimeLimit::passed(limit) {
            return None;
        }
        let key = match self.secret.current().await {
            Ok(secret) => api_key(&secret).ok()?,
            Err(e) => {
                warn!(error = %e, "cannot read the secret for the app's name");
                return None;
            }
        };
        let lookup = match self.fetch_name(&key, app, limit).await {
            Ok(name) => NameLookup::Known(name),
            Err(cause) => {
                warn!(
                    app_id = %app,
                    %cause,
                    "cannot read the app's name from App Store Connect; its messages show the app id"
                );
                NameLookup::FailedAt(Instant::now())
            }
        };
        let name = match &lookup {
            NameLookup::Known(name) => Some(name.clone()),
            NameLookup::FailedAt(_) => None,
        };
        if let Ok(mut names) = self.names.lock() {
            names.insert(app.clone(), lookup);
        }
        name
    }

    /// `GET /v1/apps/{id}?fields[apps]=name`, once; `Err` says why in words without the token.
    async fn fetch_name(
        &self,
        key: &ApiKey,
        app: &AppId,
        limit: Option<TimeLimit>,
    ) -> Result<String, String> {
        let token = self
            .bearer(key)
            .map_err(|e| format!("cannot sign the token: {e}"))?;
        let response = self
            .http
            .get(self.app_url(app))
            .timeout(TimeLimit::request_timeout(
                limit,
                NAME_TIMEOUT.min(self.retry.request_timeout),
            ))
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(super::describe_http_error)?;
        self.note_budget(response.headers());
        let status = response.status();
        let body = response.bytes().await.map_err(super::describe_http_error)?;
        if status != StatusCode::OK {
            return Err(format!(
                "App Store Connect answered {}{}",
                status.as_u16(),
                model::ErrorDocument::summary(&body)
            ));
        }
        serde_json::from_slice::<model::AppDocument>(&body)
            .map_err(|e| format!("the answer could not be parsed: {e}"))?
            .name()
            .ok_or_else(|| "the answer has no name".to_owned())
    }

    /// A token for `key` now: the kept one while it has time left, else a new one.
    fn bearer(&self, key: &ApiKey) -> Result<secrecy::SecretString, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.tokens.bearer(key, now)
    }

    /// Keeps what Apple's `X-Rate-Limit` header says is left of the hour's budget.
    fn note_budget(&self, headers: &reqwest::header::HeaderMap) -> Option<String> {
        let rate_limit = headers
            .get("x-rate-limit")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(budget) = rate_limit.as_deref().and_then(RateBudget::parse)
            && let Ok(mut last) = self.budget.lock()
        {
            *last = Some(budget);
        }
        rate_limit
    }

    fn parse_page(&self, url: &Url, body: &[u8]) -> Result<Page, SourceError> {
        let mut page: model::ReviewsPage =
            serde_json::from_slice(body).map_err(|e| SourceError::Unparseable(e.to_string()))?;
        let links = page.links.take();
        let model::PageReviews { reviews, left_out } =
            page.into_reviews().map_err(SourceError::Unparseable)?;
        for cause in left_out {
            warn!(
                %cause,
                "a developer reply is left out; its review is relayed without it"
            );
        }
        let next = match links.and_then(|l| l.next) {
            None => None,
            Some(next) => {
                // A relative link resolves against the page it came from.
                let next = url.join(&next).map_err(|e| {
                    SourceError::Unparseable(format!("links.next is not a URL ({e})"))
                })?;
                if !self.same_origin(&next) {
                    return Err(SourceError::ForeignNext);
                }
                Some(self.cursor_of(&next, url))
            }
        };
        Ok(Page { reviews, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> AppStoreClient {
        let retry = RetryPolicy {
            attempts: 1,
            first_delay: std::time::Duration::ZERO,
            max_delay: std::time::Duration::ZERO,
            retry_after_max: std::time::Duration::ZERO,
            request_timeout: std::time::Duration::from_secs(1),
        };
        AppStoreClient::new(
            reqwest::Client::new(),
            SecretHandle::unused(),
            Url::parse(base).unwrap(),
            retry,
        )
    }

    #[test]
    fn first_page_asks_for_newest_first_in_big_pages_with_replies() {
        let app = AppId::parse("123").unwrap();
        let query = "sort=-createdDate&limit=200&include=response\
            &fields%5BcustomerReviewResponses%5D=responseBody%2ClastModifiedDate%2Cstate";
        assert_eq!(
            client("https://api.appstoreconnect.apple.com/")
                .first_page_url(&app)
                .as_str(),
            format!("https://api.appstoreconnect.apple.com/v1/apps/123/customerReviews?{query}")
        );
        assert_eq!(
            client("http://127.0.0.1:9/prefix/")
                .first_page_url(&app)
                .as_str(),
            format!("http://127.0.0.1:9/prefix/v1/apps/123/customerReviews?{query}")
        );
    }

    #[test]
    fn the_app_lookup_asks_for_the_name_only() {
        let app = AppId::parse("123").unwrap();
        assert_eq!(
            client("http://127.0.0.1:9/prefix").app_url(&app).as_str(),
            "http://127.0.0.1:9/prefix/v1/apps/123?fields%5Bapps%5D=name"
        );
    }

    #[test]
    fn replies_arrive_with_their_reviews() {
        let c = client("http://127.0.0.1:9");
        let url = Url::parse("http://127.0.0.1:9/x").unwrap();
        let body = serde_json::json!({
            "data": [{"type": "customerReviews", "id": "1",
                "attributes": {"createdDate": "2024-01-01T00:00:00-08:00"},
                "relationships": {"response": {"data": {"type": "customerReviewResponses", "id": "9"}}}}],
            "included": [{"type": "customerReviewResponses", "id": "9",
                "attributes": {"responseBody": "Thanks!", "state": "PUBLISHED"}}],
            "links": {"self": "x"}});
        let page = c.parse_page(&url, body.to_string().as_bytes()).unwrap();
        assert_eq!(page.reviews[0].response.as_ref().unwrap().body, "Thanks!");
    }

    #[test]
    fn relative_next_resolves_and_foreign_next_is_refused() {
        let c = client("http://127.0.0.1:9");
        let page_url =
            Url::parse("http://127.0.0.1:9/v1/apps/1/customerReviews?limit=200").unwrap();
        let body = |next: &str| {
            serde_json::json!({"data": [], "links": {"self": "x", "next": next}}).to_string()
        };
        let page = c
            .parse_page(&page_url, body("?cursor=abc").as_bytes())
            .unwrap();
        assert_eq!(page.next.unwrap(), Cursor::Next("abc".into()));
        let first = c.first_page_url(&AppId::parse("1").unwrap());
        assert_eq!(
            c.next_page_url(&AppId::parse("1").unwrap(), "abc").unwrap(),
            Url::parse(&format!("{first}&cursor=abc")).unwrap()
        );
        let cursorless = c
            .parse_page(
                &page_url,
                body("/v1/apps/1/customerReviews?limit=200").as_bytes(),
            )
            .unwrap();
        assert_eq!(
            cursorless.next.unwrap(),
            Cursor::Next("http://127.0.0.1:9/v1/apps/1/customerReviews?limit=200".into())
        );
        for foreign in [
            "http://127.0.0.1:10/v1/x",
            "https://127.0.0.1:9/v1/x",
            "//evil.example/x",
        ] {
            assert!(matches!(
                c.parse_page(&page_url, body(foreign).as_bytes()),
                Err(SourceError::ForeignNext)
            ));
        }
    }

    #[test]
    fn minimal_reviews_parse_and_undated_ones_do_not() {
        let c = client("http://127.0.0.1:9");
        let url = Url::parse("http://127.0.0.1:9/x").unwrap();
        let ok = serde_json::json!({"data": [{"type": "customerReviews", "id": "1",
            "attributes": {"createdDate": "2024-01-01T00:00:00-08:00"}}], "links": {"self": "x"}});
        let page = c.parse_page(&url, ok.to_string().as_bytes()).unwrap();
        assert_eq!(page.reviews[0].title, None);
        let undated = serde_json::json!({"data": [{"type": "customerReviews", "id": "7"}], "links": {"self": "x"}});
        let err = c
            .parse_page(&url, undated.to_string().as_bytes())
            .unwrap_err();
        assert!(
            err.to_string().contains("review 7 has no createdDate"),
            "{err}"
        );
        assert!(c.parse_page(&url, b"<html>").is_err());
    }
}
