//! Answers to App Store reviews: `POST /v1/customerReviewResponses` (posting again replaces the
//! answer), `GET /v1/customerReviews/{id}/response` and `DELETE /v1/customerReviewResponses/{id}`,
//! shaped as tests/fixtures/asc-openapi/customer-reviews.openapi.json has them.

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{AppStoreClient, api_key, model};
use crate::adapters::{Answer, describe_http_error, first_line, send_and_read, with_bearer};
use crate::domain::{AnswerText, AppId, Store};
use crate::ports::{AnswerError, PostedAnswer, ReviewAnswers, SourceError};
use crate::secret::ApiKey;

const RESPONSES: &str = "customerReviewResponses";
const REVIEWS: &str = "customerReviews";

/// `CustomerReviewResponseV1CreateRequest`.
#[derive(Serialize)]
struct CreateRequest<'a> {
    data: CreateData<'a>,
}

#[derive(Serialize)]
struct CreateData<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    attributes: CreateAttributes<'a>,
    relationships: CreateRelationships<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateAttributes<'a> {
    response_body: &'a str,
}

#[derive(Serialize)]
struct CreateRelationships<'a> {
    review: Linkage<'a>,
}

#[derive(Serialize)]
struct Linkage<'a> {
    data: Identifier<'a>,
}

#[derive(Serialize)]
struct Identifier<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
}

/// `CustomerReviewResponseV1Response`.
#[derive(Deserialize)]
struct ResponseDocument {
    data: ResponseResource,
}

#[derive(Deserialize)]
struct ResponseResource {
    id: String,
    #[serde(default)]
    attributes: Option<ResponseAttributes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseAttributes {
    #[serde(default)]
    response_body: Option<String>,
    #[serde(default)]
    last_modified_date: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

impl ResponseDocument {
    fn parse(body: &[u8]) -> Result<PostedAnswer, AnswerError> {
        let doc: ResponseDocument =
            serde_json::from_slice(body).map_err(|e| AnswerError::Unparseable {
                store: Store::AppStore,
                cause: e.to_string(),
            })?;
        let attributes = doc.data.attributes.unwrap_or(ResponseAttributes {
            response_body: None,
            last_modified_date: None,
            state: None,
        });
        Ok(PostedAnswer {
            id: Some(doc.data.id),
            text: attributes.response_body.unwrap_or_default(),
            state: attributes.state,
            last_modified: attributes.last_modified_date,
        })
    }
}

/// The first error of Apple's `ErrorResponse`: its code and detail (or title).
fn first_error(body: &[u8]) -> (String, String) {
    let first = serde_json::from_slice::<model::ErrorDocument>(body)
        .ok()
        .and_then(|doc| doc.errors.into_iter().next());
    match first {
        Some(error) => (
            error.code.unwrap_or_default(),
            first_line(&error.detail.or(error.title).unwrap_or_default()),
        ),
        None => (String::new(), "(no error detail)".into()),
    }
}

impl AppStoreClient {
    /// Sends the request `build` makes with a bearer token; after a 401, once more with a new
    /// token signed from the secret read again.
    async fn send_signed(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, AnswerError> {
        let secret = self.secret.current().await?;
        let answer = self.send_with(&api_key(&secret)?, &build).await?;
        if answer.status != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        warn!("App Store Connect rejected the token; signing a new one with the secret read again");
        self.tokens.forget();
        let fresh = self.secret.after_refusal(&secret).await?;
        let answer = self.send_with(&api_key(&fresh)?, &build).await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            self.tokens.forget();
            return Err(SourceError::Unauthorized.into());
        }
        Ok(answer)
    }

    async fn send_with(
        &self,
        key: &ApiKey,
        build: &impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, AnswerError> {
        let token = self
            .bearer(key)
            .map_err(|e| SourceError::Signing(e.to_string()))?;
        let request = with_bearer(build(), &token, self.retry.request_timeout);
        let answer = send_and_read(request)
            .await
            .map_err(|e| AnswerError::Transport {
                store: Store::AppStore,
                cause: describe_http_error(e),
            })?;
        self.note_budget(&answer.headers);
        Ok(answer)
    }

    /// `{base}/v1/{segments…}`, each segment escaped (ids come from the caller).
    fn resource_url(&self, segments: &[&str]) -> Result<url::Url, AnswerError> {
        let mut url = self.api_url("v1");
        url.path_segments_mut()
            .map_err(|()| AnswerError::Unparseable {
                store: Store::AppStore,
                cause: "ASC_BASE_URL cannot take a path".into(),
            })?
            .extend(segments);
        Ok(url)
    }

    /// What a status other than the expected one means.
    fn refusal(app: &AppId, review_id: &str, answer: &Answer) -> AnswerError {
        let (code, detail) = first_error(&answer.body);
        match answer.status {
            StatusCode::FORBIDDEN => AnswerError::AppStoreForbidden {
                // `code` is empty when the body is not Apple's error document.
                detail: if code.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                },
            },
            StatusCode::NOT_FOUND => AnswerError::ReviewNotFound {
                app: app.clone(),
                review_id: review_id.to_owned(),
            },
            StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => {
                AnswerError::AppStoreRefused {
                    status: answer.status.as_u16(),
                    code,
                    detail,
                }
            }
            StatusCode::TOO_MANY_REQUESTS => AnswerError::RateLimited {
                store: Store::AppStore,
            },
            other => AnswerError::Status {
                store: Store::AppStore,
                status: other.as_u16(),
                detail: model::ErrorDocument::summary(&answer.body),
            },
        }
    }
}

#[async_trait]
impl ReviewAnswers for AppStoreClient {
    async fn answer(
        &self,
        app: &AppId,
        review_id: &str,
        text: &AnswerText,
    ) -> Result<PostedAnswer, AnswerError> {
        let url = self.api_url(&format!("v1/{RESPONSES}"));
        let body = CreateRequest {
            data: CreateData {
                kind: RESPONSES,
                attributes: CreateAttributes {
                    response_body: text.as_str(),
                },
                relationships: CreateRelationships {
                    review: Linkage {
                        data: Identifier {
                            kind: REVIEWS,
                            id: review_id,
                        },
                    },
                },
            },
        };
        let answer = self
            .send_signed(|| self.http.post(url.clone()).json(&body))
            .await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => ResponseDocument::parse(&answer.body),
            _ => Err(Self::refusal(app, review_id, &answer)),
        }
    }

    async fn delete(&self, app: &AppId, review_id: &str) -> Result<PostedAnswer, AnswerError> {
        let Some(current) = self.current(app, review_id).await? else {
            return Err(AnswerError::NoAnswer {
                review_id: review_id.to_owned(),
            });
        };
        let Some(id) = current.id.as_deref() else {
            return Err(AnswerError::Unparseable {
                store: Store::AppStore,
                cause: "the answer has no id".into(),
            });
        };
        let url = self.resource_url(&[RESPONSES, id])?;
        let answer = self.send_signed(|| self.http.delete(url.clone())).await?;
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(current),
            _ => Err(Self::refusal(app, review_id, &answer)),
        }
    }

    async fn current(
        &self,
        app: &AppId,
        review_id: &str,
    ) -> Result<Option<PostedAnswer>, AnswerError> {
        let url = self.resource_url(&[REVIEWS, review_id, "response"])?;
        let answer = self.send_signed(|| self.http.get(url.clone())).await?;
        match answer.status {
            StatusCode::OK => ResponseDocument::parse(&answer.body).map(Some),
            // Apple answers 404 both for a review without an answer and for no such review.
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::refusal(app, review_id, &answer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_request_is_apples_json_api_document() {
        let body = CreateRequest {
            data: CreateData {
                kind: RESPONSES,
                attributes: CreateAttributes {
                    response_body: "Thanks",
                },
                relationships: CreateRelationships {
                    review: Linkage {
                        data: Identifier {
                            kind: REVIEWS,
                            id: "r1",
                        },
                    },
                },
            },
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"data": {"type": "customerReviewResponses",
                "attributes": {"responseBody": "Thanks"},
                "relationships": {"review": {"data": {"type": "customerReviews", "id": "r1"}}}}})
        );
    }

    #[test]
    fn a_refusal_is_explained_from_apples_error_body() {
        let app = AppId::parse("1").unwrap();
        let answer = |status: u16, body: serde_json::Value| Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: body.to_string().into(),
        };
        let error = |status: u16, code: &str, detail: &str| {
            serde_json::json!({"errors": [{"status": status.to_string(), "code": code,
                "title": "t", "detail": detail}]})
        };
        let conflict = AppStoreClient::refusal(
            &app,
            "r",
            &answer(409, error(409, "ENTITY_ERROR", "The review was deleted")),
        );
        let text = conflict.to_string();
        assert!(
            text.contains("(409 ENTITY_ERROR): The review was deleted"),
            "{text}"
        );
        let forbidden =
            AppStoreClient::refusal(&app, "r", &answer(403, error(403, "FORBIDDEN_ERROR", "no")))
                .to_string();
        for role in ["Account Holder", "Admin", "App Manager", "Customer Support"] {
            assert!(forbidden.contains(role), "{forbidden}");
        }
        let unknown = AppStoreClient::refusal(&app, "r", &answer(500, serde_json::json!({})));
        assert_eq!(unknown.to_string(), "App Store Connect answered 500");
    }
}
