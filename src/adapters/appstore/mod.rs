//! App Store Connect: customer reviews, read with an ES256 bearer token.

pub(crate) mod model;
mod token;

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use tracing::warn;

use crate::adapters::retry::{Attempt, retry_after, with_retries};
use crate::config::RetryPolicy;
use url::Url;

use crate::domain::AppId;
use crate::ports::{Page, PageRequest, RateBudget, ReviewSource, SourceError, TimeLimit};
use crate::secret::ApiKey;

pub use token::TokenCache;

/// Apple's largest page.
const PAGE_LIMIT: u32 = 200;

pub struct AppStoreClient {
    http: reqwest::Client,
    /// `ASC_BASE_URL`; the token goes to this origin only.
    base: Url,
    tokens: TokenCache,
    retry: RetryPolicy,
    /// From the last answer's `X-Rate-Limit`.
    budget: std::sync::Mutex<Option<RateBudget>>,
}

impl AppStoreClient {
    pub fn new(http: reqwest::Client, base: Url, retry: RetryPolicy) -> Self {
        Self {
            http,
            base,
            tokens: TokenCache::default(),
            retry,
            budget: std::sync::Mutex::new(None),
        }
    }

    fn first_page_url(&self, app: &AppId) -> Url {
        let mut url = self.base.clone();
        let path = format!(
            "{}/v1/apps/{app}/customerReviews",
            self.base.path().trim_end_matches('/')
        );
        url.set_path(&path);
        url.query_pairs_mut()
            .append_pair("sort", "-createdDate")
            .append_pair("limit", &PAGE_LIMIT.to_string());
        url
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }
}

#[async_trait]
impl ReviewSource for AppStoreClient {
    async fn page(
        &self,
        key: &ApiKey,
        app: &AppId,
        request: &PageRequest,
        limit: Option<TimeLimit>,
    ) -> Result<Page, SourceError> {
        let url = match request {
            PageRequest::First => self.first_page_url(app),
            PageRequest::Next(next) if self.same_origin(next) => next.clone(),
            PageRequest::Next(_) => return Err(SourceError::ForeignNext),
        };
        with_retries(&self.retry, TimeLimit::give_up_at(limit), |attempt| {
            self.get_once(key, app, &url, limit, attempt)
        })
        .await
    }

    fn forget_token(&self) {
        self.tokens.forget();
    }

    fn budget(&self) -> Option<RateBudget> {
        self.budget.lock().ok().and_then(|b| *b)
    }
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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let token = match self.tokens.bearer(key, now) {
            Ok(token) => token,
            Err(e) => return Attempt::Fail(SourceError::Signing(e.to_string())),
        };
        let sent = self
            .http
            .get(url.clone())
            .timeout(TimeLimit::request_timeout(
                limit,
                self.retry.request_timeout,
            ))
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        let transport = |e| SourceError::Transport {
            cause: super::describe_http_error(e),
            attempts: attempt,
        };
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Attempt::Retry {
                    error: transport(e),
                    after: None,
                };
            }
        };
        let status = response.status();
        let rate_limit = response
            .headers()
            .get("x-rate-limit")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(budget) = rate_limit.as_deref().and_then(RateBudget::parse)
            && let Ok(mut last) = self.budget.lock()
        {
            *last = Some(budget);
        }
        let after = retry_after(response.headers());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => {
                return Attempt::Retry {
                    error: transport(e),
                    after: None,
                };
            }
        };
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
    fn parse_page(&self, url: &Url, body: &[u8]) -> Result<Page, SourceError> {
        let page: model::ReviewsPage =
            serde_json::from_slice(body).map_err(|e| SourceError::Unparseable(e.to_string()))?;
        let reviews = page
            .data
            .into_iter()
            .map(model::Resource::into_review)
            .collect::<Result<Vec<_>, _>>()
            .map_err(SourceError::Unparseable)?;
        let next = match page.links.and_then(|l| l.next) {
            None => None,
            Some(next) => {
                // A relative link resolves against the page it came from.
                let next = url.join(&next).map_err(|e| {
                    SourceError::Unparseable(format!("links.next is not a URL ({e})"))
                })?;
                if !self.same_origin(&next) {
                    return Err(SourceError::ForeignNext);
                }
                Some(next)
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
        AppStoreClient::new(reqwest::Client::new(), Url::parse(base).unwrap(), retry)
    }

    #[test]
    fn first_page_asks_for_newest_first_in_big_pages() {
        let app = AppId::parse("123").unwrap();
        assert_eq!(
            client("https://api.appstoreconnect.apple.com/")
                .first_page_url(&app)
                .as_str(),
            "https://api.appstoreconnect.apple.com/v1/apps/123/customerReviews?sort=-createdDate&limit=200"
        );
        assert_eq!(
            client("http://127.0.0.1:9/prefix/")
                .first_page_url(&app)
                .as_str(),
            "http://127.0.0.1:9/prefix/v1/apps/123/customerReviews?sort=-createdDate&limit=200"
        );
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
        assert_eq!(
            page.next.unwrap().as_str(),
            "http://127.0.0.1:9/v1/apps/1/customerReviews?cursor=abc"
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
