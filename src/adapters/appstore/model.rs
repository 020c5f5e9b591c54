//! The JSON of `GET /v1/apps/{id}/customerReviews?include=response` (Apple's
//! `CustomerReviewsResponse`) and of `GET /v1/apps/{id}` (`AppResponse`), read once into domain
//! types. Every attribute is optional in Apple's spec.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::domain::{DeveloperResponse, Review, parse_instant};

/// The `type` of a developer reply, in linkages and in `included`.
pub const REPLY_TYPE: &str = "customerReviewResponses";

#[derive(Deserialize)]
pub struct ReviewsPage {
    pub data: Vec<Resource>,
    /// Read one resource at a time by [`Replies::from_included`]: a reply that does not parse
    /// costs that reply, never the page.
    #[serde(default)]
    pub included: Option<Value>,
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
    /// Read leniently by [`Resource::reply_id`], for the same reason as `included`.
    #[serde(default)]
    pub relationships: Option<Value>,
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

/// A `customerReviewResponses` resource in `included`.
#[derive(Deserialize)]
struct ReplyResource {
    id: String,
    #[serde(default)]
    attributes: Option<ReplyAttributes>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ReplyAttributes {
    response_body: Option<String>,
    last_modified_date: Option<String>,
    state: Option<String>,
}

/// The developer replies a page includes, by reply id.
#[derive(Default)]
pub struct Replies {
    /// `None`: the reply exists but is not shown (not published yet, or unreadable).
    by_id: HashMap<String, Option<DeveloperResponse>>,
}

/// A page's reviews with their published replies, and what was left out of them and why
/// (for a log line: ids and causes, never reply text).
pub struct PageReviews {
    pub reviews: Vec<Review>,
    pub left_out: Vec<String>,
}

/// `GET /v1/apps/{id}` (`AppResponse`), read only for the app's name.
#[derive(Deserialize)]
pub struct AppDocument {
    pub data: AppResource,
}

#[derive(Deserialize)]
pub struct AppResource {
    #[serde(default)]
    pub attributes: Option<AppAttributes>,
}

#[derive(Deserialize)]
pub struct AppAttributes {
    #[serde(default)]
    pub name: Option<String>,
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

impl ReviewsPage {
    /// The reviews, each with its published reply. A review that cannot be read fails the page
    /// (it has no place in the order); a reply that cannot be read is only left out.
    pub fn into_reviews(self) -> Result<PageReviews, String> {
        let mut left_out = Vec::new();
        let replies = Replies::from_included(self.included, &mut left_out);
        let reviews = self
            .data
            .into_iter()
            .map(|resource| {
                let response = replies.for_review(&resource, &mut left_out);
                resource.into_review_with(response)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PageReviews { reviews, left_out })
    }
}

impl Replies {
    /// Reads the `customerReviewResponses` of `included`; other included types are skipped.
    /// Only `PUBLISHED` replies are kept: a `PENDING_PUBLISH` one is not on the App Store yet and
    /// may still be edited or withdrawn.
    pub fn from_included(included: Option<Value>, left_out: &mut Vec<String>) -> Self {
        let mut replies = Self::default();
        let items = match included {
            None | Some(Value::Null) => return replies,
            Some(Value::Array(items)) => items,
            Some(_) => {
                left_out.push("`included` is not a list".to_owned());
                return replies;
            }
        };
        for item in items {
            if item.get("type").and_then(Value::as_str) != Some(REPLY_TYPE) {
                continue;
            }
            let id = item.get("id").and_then(Value::as_str).map(str::to_owned);
            match serde_json::from_value::<ReplyResource>(item) {
                Ok(reply) => {
                    let shown = reply.published(left_out);
                    replies.by_id.insert(reply.id, shown);
                }
                Err(e) => {
                    left_out.push(format!(
                        "reply {} is not a {REPLY_TYPE} resource ({e})",
                        id.as_deref().unwrap_or("(no id)")
                    ));
                    if let Some(id) = id {
                        replies.by_id.insert(id, None);
                    }
                }
            }
        }
        replies
    }

    /// The published reply `resource` links to, if any.
    fn for_review(
        &self,
        resource: &Resource,
        left_out: &mut Vec<String>,
    ) -> Option<DeveloperResponse> {
        let reply_id = match resource.reply_id() {
            Ok(id) => id?,
            Err(e) => {
                left_out.push(format!("review {}: {e}", resource.id));
                return None;
            }
        };
        match self.by_id.get(&reply_id) {
            Some(shown) => shown.clone(),
            None => {
                left_out.push(format!(
                    "review {}: its reply {reply_id} is not in `included`",
                    resource.id
                ));
                None
            }
        }
    }
}

impl ReplyResource {
    fn published(&self, left_out: &mut Vec<String>) -> Option<DeveloperResponse> {
        let ReplyAttributes {
            response_body,
            last_modified_date,
            state,
        } = match &self.attributes {
            Some(attributes) => attributes,
            None => {
                left_out.push(format!("reply {}: no attributes", self.id));
                return None;
            }
        };
        match state.as_deref() {
            Some("PUBLISHED") => {}
            Some("PENDING_PUBLISH") => return None,
            Some(other) => {
                left_out.push(format!("reply {}: unknown state `{other}`", self.id));
                return None;
            }
            None => {
                left_out.push(format!("reply {}: no state", self.id));
                return None;
            }
        }
        let Some(body) = response_body
            .as_deref()
            .filter(|body| !body.trim().is_empty())
        else {
            left_out.push(format!("reply {}: published with no responseBody", self.id));
            return None;
        };
        // A date that cannot be read costs the date, not the reply.
        let last_modified_date = last_modified_date
            .as_deref()
            .filter(|date| {
                let readable = parse_instant(date).is_some();
                if !readable {
                    left_out.push(format!(
                        "reply {}: lastModifiedDate is not an RFC 3339 date-time",
                        self.id
                    ));
                }
                readable
            })
            .map(str::to_owned);
        Some(DeveloperResponse {
            body: body.to_owned(),
            last_modified_date,
        })
    }
}

impl Resource {
    /// The id in `relationships.response.data`; `None` when the review has no reply (no linkage,
    /// or a `null` one).
    pub fn reply_id(&self) -> Result<Option<String>, String> {
        let data = self
            .relationships
            .as_ref()
            .and_then(|r| r.get("response"))
            .and_then(|r| r.get("data"));
        let data = match data {
            None | Some(Value::Null) => return Ok(None),
            Some(data) => data,
        };
        match (
            data.get("type").and_then(Value::as_str),
            data.get("id").and_then(Value::as_str),
        ) {
            (Some(REPLY_TYPE), Some(id)) => Ok(Some(id.to_owned())),
            _ => Err(format!(
                "relationships.response.data is not a {REPLY_TYPE} linkage"
            )),
        }
    }

    /// The review alone, without its reply (a resource read on its own has no `included`).
    pub fn into_review(self) -> Result<Review, String> {
        self.into_review_with(None)
    }

    pub fn into_review_with(self, response: Option<DeveloperResponse>) -> Result<Review, String> {
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
            response,
        )
        .ok_or_else(|| format!("review {id} has a createdDate that is not an RFC 3339 date-time"))
    }
}

impl AppDocument {
    /// The app's name, trimmed; `None` when Apple sent none.
    pub fn name(self) -> Option<String> {
        let name = self.data.attributes?.name?;
        let name = name.trim();
        (!name.is_empty()).then(|| name.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const APPLE: &str = "https://api.appstoreconnect.apple.com/v1";

    /// A review as Apple sends it with `include=response`: linkage to its reply when it has one.
    fn review(id: &str, reply: Option<Value>) -> Value {
        let mut response = json!({"links": {
            "self": format!("{APPLE}/customerReviews/{id}/relationships/response"),
            "related": format!("{APPLE}/customerReviews/{id}/response"),
        }});
        if let Some(data) = reply {
            response["data"] = data;
        }
        json!({
            "type": "customerReviews",
            "id": id,
            "attributes": {
                "rating": 2,
                "title": "Crashes",
                "body": "Since the update it crashes on launch.",
                "reviewerNickname": "kim",
                "createdDate": "2024-02-03T04:05:06-08:00",
                "territory": "USA",
            },
            "relationships": {"response": response},
            "links": {"self": format!("{APPLE}/customerReviews/{id}")},
        })
    }

    fn linkage(reply_id: &str) -> Option<Value> {
        Some(json!({"type": "customerReviewResponses", "id": reply_id}))
    }

    fn reply(id: &str, body: &str, state: &str) -> Value {
        json!({
            "type": "customerReviewResponses",
            "id": id,
            "attributes": {
                "responseBody": body,
                "lastModifiedDate": "2024-02-04T10:00:00-08:00",
                "state": state,
            },
            "links": {"self": format!("{APPLE}/customerReviewResponses/{id}")},
        })
    }

    fn read(page: Value) -> PageReviews {
        serde_json::from_value::<ReviewsPage>(page)
            .unwrap()
            .into_reviews()
            .unwrap()
    }

    fn replies(page: &PageReviews) -> Vec<Option<&str>> {
        page.reviews
            .iter()
            .map(|r| r.response.as_ref().map(|x| x.body.as_str()))
            .collect()
    }

    #[test]
    fn published_replies_join_their_reviews() {
        let page = read(json!({
            "data": [
                review("r1", linkage("p1")),
                review("r2", None),
                review("r3", Some(Value::Null)),
            ],
            "included": [
                {"type": "territories", "id": "USA", "attributes": {"currency": "USD"}},
                reply("p1", "Fixed in 2.1, thanks!", "PUBLISHED"),
            ],
            "links": {"self": format!("{APPLE}/apps/1/customerReviews")},
            "meta": {"paging": {"total": 3, "limit": 200}},
        }));
        assert_eq!(replies(&page), [Some("Fixed in 2.1, thanks!"), None, None]);
        assert_eq!(
            page.reviews[0].response,
            Some(DeveloperResponse {
                body: "Fixed in 2.1, thanks!".into(),
                last_modified_date: Some("2024-02-04T10:00:00-08:00".into()),
            })
        );
        assert!(page.left_out.is_empty(), "{:?}", page.left_out);
    }

    #[test]
    fn pending_replies_are_not_shown() {
        let page = read(json!({
            "data": [review("r1", linkage("p1"))],
            "included": [reply("p1", "Draft", "PENDING_PUBLISH")],
        }));
        assert_eq!(replies(&page), [None]);
        assert!(page.left_out.is_empty(), "{:?}", page.left_out);
    }

    #[test]
    fn a_reply_that_does_not_parse_costs_the_reply_not_the_review() {
        let mut no_body = reply("p3", "", "PUBLISHED");
        no_body["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("responseBody");
        let mut bad_date = reply("p6", "Thanks", "PUBLISHED");
        bad_date["attributes"]["lastModifiedDate"] = json!("last Tuesday");
        let page = read(json!({
            "data": [
                review("r1", linkage("p1")),
                review("r2", linkage("p2")),
                review("r3", linkage("p3")),
                review("r4", linkage("missing")),
                review("r5", Some(json!({"type": "customerReviewResponses"}))),
                review("r6", linkage("p6")),
                review("r7", linkage("p7")),
            ],
            "included": [
                {"type": "customerReviewResponses", "id": "p1", "attributes": {"responseBody": 42}},
                reply("p2", "Hello", "WITHDRAWN"),
                no_body,
                bad_date,
                {"type": "customerReviewResponses", "id": "p7"},
                {"type": "customerReviewResponses"},
            ],
        }));
        let ids: Vec<_> = page.reviews.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r1", "r2", "r3", "r4", "r5", "r6", "r7"]);
        assert_eq!(
            replies(&page),
            [None, None, None, None, None, Some("Thanks"), None]
        );
        assert_eq!(
            page.reviews[5]
                .response
                .as_ref()
                .unwrap()
                .last_modified_date,
            None
        );
        let said = page.left_out.join("\n");
        for expected in [
            "reply p1 is not a customerReviewResponses resource",
            "reply p2: unknown state `WITHDRAWN`",
            "reply p3: published with no responseBody",
            "reply p6: lastModifiedDate is not an RFC 3339 date-time",
            "reply p7: no attributes",
            "reply (no id) is not a customerReviewResponses resource",
            "review r4: its reply missing is not in `included`",
            "review r5: relationships.response.data is not a customerReviewResponses linkage",
        ] {
            assert!(said.contains(expected), "{said}\nlacks {expected}");
        }
        assert!(
            !said.contains("Hello") && !said.contains("Thanks"),
            "{said}"
        );
    }

    #[test]
    fn an_included_that_is_no_list_costs_only_the_replies() {
        let page = read(json!({
            "data": [review("r1", linkage("p1"))],
            "included": {"type": "customerReviewResponses", "id": "p1"},
        }));
        assert_eq!(replies(&page), [None]);
        assert_eq!(page.left_out.len(), 2, "{:?}", page.left_out);
    }

    #[test]
    fn a_page_that_does_not_parse_is_still_an_error() {
        assert!(serde_json::from_value::<ReviewsPage>(json!({"included": []})).is_err());
        assert!(serde_json::from_value::<ReviewsPage>(json!({"data": {}})).is_err());
        let undated = json!({"data": [{"type": "customerReviews", "id": "7"}], "included": []});
        let error = serde_json::from_value::<ReviewsPage>(undated)
            .unwrap()
            .into_reviews()
            .err()
            .unwrap();
        assert_eq!(error, "review 7 has no createdDate");
    }

    #[test]
    fn a_resource_read_alone_has_no_reply() {
        let resource: Resource = serde_json::from_value(review("r1", linkage("p1"))).unwrap();
        assert_eq!(resource.reply_id(), Ok(Some("p1".to_owned())));
        assert_eq!(resource.into_review().unwrap().response, None);
    }

    #[test]
    fn the_app_name_is_read_from_apples_app_document() {
        let document = |attributes: Value| {
            serde_json::from_value::<AppDocument>(json!({
                "data": {"type": "apps", "id": "1", "attributes": attributes,
                         "links": {"self": format!("{APPLE}/apps/1")}},
                "links": {"self": format!("{APPLE}/apps/1?fields%5Bapps%5D=name")},
            }))
            .unwrap()
            .name()
        };
        assert_eq!(
            document(json!({"name": " Tally "})),
            Some("Tally".to_owned())
        );
        assert_eq!(document(json!({"name": "  "})), None);
        assert_eq!(document(json!({})), None);
    }
}
