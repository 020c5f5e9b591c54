//! The JSON of `GET /v1/apps/{id}/customerReviews` (Apple's `CustomerReviewsResponse`), read once
//! into domain reviews. Every attribute is optional in Apple's spec.

use serde::Deserialize;

use crate::domain::Review;

#[derive(Deserialize)]
pub struct ReviewsPage {
    pub data: Vec<Resource>,
    #[serde(default)]
    pub links: Option<Links>,
}

#[derive(Deserialize)]
pub struct Links {
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Deserialize)]
pub struct Resource {
    pub id: String,
    #[serde(default)]
    pub attributes: Attributes,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    pub rating: Option<u8>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub reviewer_nickname: Option<String>,
    pub created_date: Option<String>,
    pub territory: Option<String>,
}

/// Apple's error document (`ErrorResponse`).
#[derive(Deserialize)]
pub struct ErrorDocument {
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

impl Resource {
    pub fn into_review(self) -> Result<Review, String> {
        let Attributes {
            rating,
            title,
            body,
            reviewer_nickname,
            created_date,
            territory,
        } = self.attributes;
        let Some(created_date) = created_date else {
            return Err(format!("review {} has no createdDate", self.id));
        };
        let id = self.id;
        Review::new(
            id.clone(),
            rating,
            title,
            body,
            reviewer_nickname,
            territory,
            created_date,
            None,
        )
        .ok_or_else(|| format!("review {id} has a createdDate that is not an RFC 3339 date-time"))
    }
}

impl ErrorDocument {
    /// ": CODE: detail" from the first error, or "" when the body is not Apple's error shape.
    pub fn summary(body: &[u8]) -> String {
        let Ok(doc) = serde_json::from_slice::<ErrorDocument>(body) else {
            return String::new();
        };
        let Some(first) = doc.errors.into_iter().next() else {
            return String::new();
        };
        let code = first.code.unwrap_or_default();
        let detail = first.detail.or(first.title).unwrap_or_default();
        format!(": {code}: {}", crate::adapters::first_line(&detail))
    }
}
