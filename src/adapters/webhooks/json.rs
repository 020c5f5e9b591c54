//! `json`: one review per POST, every field present, absent attributes as `null`. For a Google
//! Play review `app_id` is the package name and `created_date` the `lastModified` of its text.

use serde_json::{Value, json};

use super::{MessageFormat, ReviewCard};
use crate::adapters::retry::AfterMaybeTaken;
use crate::domain::{AppId, Review};

pub fn message(app: &AppId, review: &Review) -> Value {
    json!({
        "reviews": [{
            "id": review.original_id(),
            "app_id": app.as_str(),
            "rating": review.rating,
            "title": review.title,
            "body": review.body,
            "reviewer_nickname": review.reviewer_nickname,
            "territory": review.territory,
            "created_date": review.created_date,
            "store": review.store.code(),
            "edited": review.edit.is_some(),
            "previous_rating": review.edit.as_ref().and_then(|e| e.previous_rating),
            "language": review.details.language,
            "app_version": review.details.app_version,
            "device": review.details.device,
            "original_text": review.details.original_text,
        }]
    })
}

/// One review per POST, whatever its size: a receiver stores each by its `Idempotency-Key`.
pub struct Json;

impl MessageFormat for Json {
    fn render(&self, card: &ReviewCard<'_>) -> Value {
        message(card.app, card.review)
    }

    fn join(&self, _app_name: &str, rendered: &[Value]) -> Value {
        rendered.first().cloned().unwrap_or(Value::Null)
    }

    fn fits(&self, _message: &Value) -> bool {
        true
    }

    fn max_per_message(&self) -> usize {
        1
    }

    /// A `json` receiver can drop a copy by its `Idempotency-Key`.
    fn after_maybe_taken(&self) -> AfterMaybeTaken {
        AfterMaybeTaken::UpToTheLimit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_attributes_are_null_and_the_date_is_apples_string() {
        let review = Review::new(
            "r1".into(),
            None,
            None,
            Some("Great".into()),
            None,
            Some("FRA".into()),
            "2024-02-03T04:05:06.7-08:00".into(),
            None,
        )
        .unwrap();
        let app = AppId::parse("42").unwrap();
        assert_eq!(
            message(&app, &review),
            json!({"reviews": [{"id": "r1", "app_id": "42", "rating": null, "title": null,
                "body": "Great", "reviewer_nickname": null, "territory": "FRA",
                "created_date": "2024-02-03T04:05:06.7-08:00", "store": "app_store",
                "edited": false, "previous_rating": null,
                "language": null, "app_version": null, "device": null, "original_text": null}]})
        );
    }
}
