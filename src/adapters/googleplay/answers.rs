//! Replies to Google Play reviews: `reviews.reply` (posting again replaces the reply) and
//! `reviews.get` for the reply as it stands. Google has no call that deletes a reply.

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tracing::warn;
use url::Url;

use super::{GooglePlayClient, model, service_account, transport, unix_now};
use crate::adapters::retry::Attempt;
use crate::adapters::{Answer, describe_http_error, send_and_read, with_bearer};
use crate::domain::{AnswerText, AppId, Store};
use crate::ports::{AnswerError, PostedAnswer, ReviewAnswers, SourceError};
use crate::secret::ServiceAccount;

/// `ReviewsReplyRequest`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReplyRequest<'a> {
    pub(super) reply_text: &'a str,
}

/// `ReviewsReplyResponse`.
#[derive(Deserialize)]
struct ReplyResponse {
    #[serde(default)]
    result: Option<ReplyResult>,
}

/// `ReviewReplyResult`: the text as Google keeps it (HTML stripped) and when.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplyResult {
    #[serde(default)]
    reply_text: Option<String>,
    #[serde(default)]
    last_edited: Option<model::Timestamp>,
}

impl GooglePlayClient {
    /// `{base}/androidpublisher/v3/applications/{package}/reviews/{review id}{suffix}`.
    pub(super) fn review_url(&self, app: &AppId, review_id: &str, suffix: &str) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_path(&format!(
            "{}/androidpublisher/v3/applications/{app}/reviews",
            self.base.path().trim_end_matches('/')
        ));
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(&format!("{review_id}{suffix}"));
        }
        url
    }

    /// Sends the request `build` makes with an access token; after Google refuses the token or
    /// the assertion, once more with the secret read again.
    async fn send_authorised(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(Answer, ServiceAccount), AnswerError> {
        let secret = self.secret.current().await?;
        let account = service_account(&secret)?;
        match self.send_as(&account, &build).await {
            Err(AnswerError::Credentials(
                SourceError::PlayUnauthorized | SourceError::PlayTokenRefused { .. },
            )) => {}
            other => return other.map(|answer| (answer, account)),
        }
        warn!(
            "Google refused the service account's token; trying once more with the secret read again"
        );
        self.tokens.forget();
        let fresh = self.secret.after_refusal(&secret).await?;
        let account = service_account(&fresh)?;
        self.send_as(&account, &build)
            .await
            .map(|answer| (answer, account))
    }

    async fn send_as(
        &self,
        account: &ServiceAccount,
        build: &impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, AnswerError> {
        let token: SecretString = match self.access_token(account, None, 1).await {
            Attempt::Done(token) => token,
            Attempt::Retry { error, .. }
            | Attempt::RetryMaybeTaken(error)
            | Attempt::Fail(error) => return Err(error.into()),
        };
        let request = with_bearer(build(), &token, self.retry.request_timeout);
        let answer = send_and_read(request)
            .await
            .map_err(|e| AnswerError::Credentials(transport(describe_http_error(e), 1)))?;
        if answer.status == StatusCode::UNAUTHORIZED {
            self.tokens.forget();
            return Err(SourceError::PlayUnauthorized.into());
        }
        Ok(answer)
    }

    /// What a status other than 200 means.
    fn refusal(
        app: &AppId,
        review_id: &str,
        account: &ServiceAccount,
        answer: &Answer,
    ) -> AnswerError {
        let error = model::ErrorDocument::parse(&answer.body);
        match answer.status {
            StatusCode::BAD_REQUEST => AnswerError::PlayRefused {
                detail: error.summary(),
            },
            StatusCode::FORBIDDEN => match error.forbidden() {
                model::Forbidden::ApiDisabled { project } => {
                    SourceError::PlayApiDisabled { project }.into()
                }
                model::Forbidden::RateLimited => AnswerError::RateLimited {
                    store: Store::GooglePlay,
                },
                model::Forbidden::NoPermission => AnswerError::PlayForbidden {
                    package: app.clone(),
                    account: account.client_email.clone(),
                },
            },
            StatusCode::NOT_FOUND => AnswerError::ReviewNotFound {
                app: app.clone(),
                review_id: review_id.to_owned(),
            },
            StatusCode::TOO_MANY_REQUESTS => AnswerError::RateLimited {
                store: Store::GooglePlay,
            },
            other => AnswerError::Status {
                store: Store::GooglePlay,
                status: other.as_u16(),
                detail: error.summary(),
            },
        }
    }
}

fn unparseable(cause: String) -> AnswerError {
    AnswerError::Unparseable {
        store: Store::GooglePlay,
        cause,
    }
}

#[async_trait]
impl ReviewAnswers for GooglePlayClient {
    async fn answer(
        &self,
        app: &AppId,
        review_id: &str,
        text: &AnswerText,
    ) -> Result<PostedAnswer, AnswerError> {
        let url = self.review_url(app, review_id, ":reply");
        let body = ReplyRequest {
            reply_text: text.as_str(),
        };
        let (answer, account) = self
            .send_authorised(|| self.http.post(url.clone()).json(&body))
            .await?;
        if answer.status != StatusCode::OK {
            return Err(Self::refusal(app, review_id, &account, &answer));
        }
        let result = serde_json::from_slice::<ReplyResponse>(&answer.body)
            .map_err(|e| unparseable(format!("reviews.reply: {e}")))?
            .result
            .ok_or_else(|| unparseable("reviews.reply answered no result".into()))?;
        Ok(PostedAnswer {
            id: None,
            text: result.reply_text.unwrap_or_default(),
            state: None,
            last_modified: result
                .last_edited
                .as_ref()
                .and_then(model::Timestamp::rfc3339),
        })
    }

    async fn delete(&self, _app: &AppId, _review_id: &str) -> Result<PostedAnswer, AnswerError> {
        Err(AnswerError::PlayCannotDelete)
    }

    async fn current(
        &self,
        app: &AppId,
        review_id: &str,
    ) -> Result<Option<PostedAnswer>, AnswerError> {
        let url = self.review_url(app, review_id, "");
        // Google counts this GET against the app's hourly reviews quota like a page.
        self.gets.count(app, unix_now());
        let (answer, account) = self.send_authorised(|| self.http.get(url.clone())).await?;
        if answer.status != StatusCode::OK {
            return Err(Self::refusal(app, review_id, &account, &answer));
        }
        // serde's message can quote a value, which may be the reviewer's words.
        let review = serde_json::from_slice::<model::PlayReview>(&answer.body).map_err(|_| {
            unparseable("reviews.get: it does not match Google's Review schema".into())
        })?;
        Ok(review
            .comments
            .into_iter()
            .find_map(|c| c.developer_comment)
            .and_then(|reply| {
                Some(PostedAnswer {
                    id: None,
                    text: reply.text.filter(|t| !t.trim().is_empty())?,
                    state: None,
                    last_modified: reply
                        .last_modified
                        .as_ref()
                        .and_then(model::Timestamp::rfc3339),
                })
            }))
    }
}
