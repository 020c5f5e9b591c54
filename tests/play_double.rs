//! Self-test of the Google Play Developer API double in tests/support/play.rs (no product code
//! involved): Google's token exchange, `reviews.list` paging and window, errors, translation, and
//! every served object against the discovery document's schemas.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use support::play::{
    self, Denial, GrantCheck, PlayConfig, PlayDouble, assertion, assertion_claims,
    developer_comment, play_review, sign_rsa, user_comment, with_developer_comment,
    with_device_metadata, with_user_field,
};

const PACKAGE: &str = "com.example.tally";
/// 2026-11-20T12:00:00Z: the pinned clock of most tests.
const NOW: i64 = 1_795_176_000;
const DAY: i64 = 24 * 3600;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// `POST /token` with these form fields.
async fn exchange(play: &PlayDouble, fields: &[(&str, &str)]) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let resp = http()
        .post(play.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("POST /token");
    read(resp).await
}

async fn exchange_assertion(play: &PlayDouble, assertion: &str) -> (u16, Value) {
    exchange(
        play,
        &[("grant_type", play::GRANT_TYPE), ("assertion", assertion)],
    )
    .await
}

/// A fresh access token for the fixture account, by the double's clock.
async fn access_token(play: &PlayDouble) -> String {
    let (status, body) = exchange_assertion(play, &assertion(&play.token_url(), play.now())).await;
    assert_eq!(status, 200, "token exchange: {body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// `GET` the review list of `package` with a raw `query` (without `?`).
async fn list(play: &PlayDouble, package: &str, query: &str, token: Option<&str>) -> (u16, Value) {
    let url = if query.is_empty() {
        play.reviews_url(package)
    } else {
        format!("{}?{query}", play.reviews_url(package))
    };
    let mut req = http().get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    read(req.send().await.expect("GET reviews")).await
}

fn ids(body: &Value) -> Vec<String> {
    body["reviews"]
        .as_array()
        .map(|reviews| {
            reviews
                .iter()
                .map(|r| r["reviewId"].as_str().expect("reviewId").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn next_token(body: &Value) -> Option<String> {
    body["tokenPagination"]["nextPageToken"]
        .as_str()
        .map(str::to_string)
}

/// Every review of `package` from `query` on, following `nextPageToken` until there is none.
async fn all_pages(play: &PlayDouble, token: &str, query: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut q = query.to_string();
        if let Some(t) = &page_token {
            q = format!("{q}&token={t}");
        }
        let (status, body) = list(play, PACKAGE, &q, Some(token)).await;
        assert_eq!(status, 200, "page {}: {body}", pages.len());
        page_token = next_token(&body);
        pages.push(body);
        if page_token.is_none() {
            return pages;
        }
        assert!(pages.len() < 50, "paging does not end");
    }
}

fn pinned() -> PlayDouble {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.set_now(NOW);
    play
}

#[test]
fn fixture_key_file_is_shaped_like_googles_and_its_key_pair_works() {
    let account = play::service_account();
    let keys: HashSet<&str> = account
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: HashSet<&str> = [
        "type",
        "project_id",
        "private_key_id",
        "private_key",
        "client_email",
        "client_id",
        "auth_uri",
        "token_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
        "universe_domain",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected);
    assert_eq!(account["type"], "service_account");
    assert_eq!(account["client_email"], play::CLIENT_EMAIL);
    assert_eq!(account["token_uri"], "https://oauth2.googleapis.com/token");
    let kid = play::private_key_id();
    assert_eq!(kid.len(), 40);
    assert!(
        kid.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let pem = play::private_key_pem();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "PKCS#8");
    assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
    assert!(
        play::SERVICE_ACCOUNT_JSON.contains("-----BEGIN PRIVATE KEY-----\\n"),
        "newlines escaped as in Google's file"
    );
    assert!(play::OTHER_KEY_PEM.starts_with("-----BEGIN PRIVATE KEY-----\n"));

    // jsonwebtoken signs with the private key and verifies with the public one, not the other key.
    let claims = assertion_claims("https://oauth2.googleapis.com/token", play::real_now_secs());
    let token = sign_rsa(Algorithm::RS256, &pem, Some(&kid), &claims);
    let public = DecodingKey::from_rsa_pem(play::PUBLIC_KEY_PEM.as_bytes()).expect("public key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["https://oauth2.googleapis.com/token"]);
    let decoded = jsonwebtoken::decode::<Value>(&token, &public, &validation).expect("verifies");
    assert_eq!(decoded.claims["iss"], play::CLIENT_EMAIL);
    assert_eq!(decoded.header.kid.as_deref(), Some(kid.as_str()));
    let forged = sign_rsa(Algorithm::RS256, play::OTHER_KEY_PEM, Some(&kid), &claims);
    assert!(jsonwebtoken::decode::<Value>(&forged, &public, &validation).is_err());
}

#[tokio::test]
async fn a_valid_assertion_gets_a_token_that_lists_reviews() {
    let play = PlayDouble::start(PlayConfig::fixture());
    let now = play::real_now_secs();
    play.push_review(
        PACKAGE,
        play_review("r1", "Ann", "Lovely", 5, now - 60, "en"),
    );

    let account = play.service_account_json();
    assert_eq!(account["token_uri"], json!(play.token_url()));
    assert_eq!(
        account["private_key"],
        play::service_account()["private_key"]
    );

    // Signed from the key file exactly as a client would, with the scope among others.
    let mut claims = assertion_claims(account["token_uri"].as_str().unwrap(), now);
    claims["scope"] = json!(format!("openid {} email", play::SCOPE));
    let signed = sign_rsa(
        Algorithm::RS256,
        account["private_key"].as_str().unwrap(),
        account["private_key_id"].as_str(),
        &claims,
    );
    let (status, body) = exchange_assertion(&play, &signed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], play::DEFAULT_TOKEN_EXPIRES_IN);
    let token = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let second = access_token(&play).await;
    assert_ne!(token, second, "every exchange gets a fresh token");
    assert_eq!(play.token_requests(), 2);
    assert!(play.grant_refusals().is_empty());

    let (status, body) = list(&play, PACKAGE, "", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), ["r1"]);
    assert_eq!(user_comment(&body["reviews"][0])["text"], "Lovely");
    assert_eq!(play.gets(PACKAGE), 1);

    let requests = play.requests();
    let get = requests.last().expect("recorded");
    assert_eq!(
        (get.method.as_str(), get.path.as_str(), get.status),
        (
            "GET",
            format!("/androidpublisher/v3/applications/{PACKAGE}/reviews").as_str(),
            200
        )
    );
    assert!(get.authorization_present);
    let recorded = format!("{requests:?}");
    assert!(!recorded.contains(&token) && !recorded.contains(&second));

    // A token passed as access_token is not recorded either (nor accepted instead of the header).
    let (status, _) = list(&play, PACKAGE, &format!("access_token={token}"), None).await;
    assert_eq!(status, 401);
    let last = play.requests().pop().unwrap();
    assert_eq!(last.query.as_deref(), Some("access_token=REDACTED"));
    assert!(!last.authorization_present);
}

#[tokio::test]
async fn bad_assertions_are_refused_with_invalid_grant_naming_the_check() {
    let play = pinned();
    let aud = play.token_url();
    let key = play::private_key_pem();
    let kid = play::private_key_id();
    let good = assertion_claims(&aud, NOW);
    let with = |key_: &str, value: Value| {
        let mut claims = good.clone();
        claims[key_] = value;
        claims
    };
    let rs256 = |claims: &Value| sign_rsa(Algorithm::RS256, &key, Some(&kid), claims);
    let mut no_scope = good.clone();
    no_scope.as_object_mut().unwrap().remove("scope");

    let cases: Vec<(&str, String, GrantCheck)> = vec![
        (
            "wrong alg",
            sign_rsa(Algorithm::RS384, &key, Some(&kid), &good),
            GrantCheck::Alg,
        ),
        (
            "wrong kid",
            sign_rsa(Algorithm::RS256, &key, Some(&"0".repeat(40)), &good),
            GrantCheck::Kid,
        ),
        (
            "no kid",
            sign_rsa(Algorithm::RS256, &key, None, &good),
            GrantCheck::Kid,
        ),
        (
            "signed with the other key",
            sign_rsa(Algorithm::RS256, play::OTHER_KEY_PEM, Some(&kid), &good),
            GrantCheck::Signature,
        ),
        (
            "wrong iss",
            rs256(&with(
                "iss",
                json!("someone@test-project.iam.gserviceaccount.com"),
            )),
            GrantCheck::Iss,
        ),
        (
            "wrong aud (Google's real token URL)",
            rs256(&with("aud", json!("https://oauth2.googleapis.com/token"))),
            GrantCheck::Aud,
        ),
        ("missing scope", rs256(&no_scope), GrantCheck::Scope),
        (
            "another scope only",
            rs256(&with(
                "scope",
                json!("https://www.googleapis.com/auth/cloud-platform"),
            )),
            GrantCheck::Scope,
        ),
        (
            "lifetime over an hour",
            rs256(&with("exp", json!(NOW + 3601))),
            GrantCheck::Lifetime,
        ),
        (
            "expired",
            rs256(&assertion_claims(&aud, NOW - 3600 - 10)),
            GrantCheck::Expired,
        ),
        (
            "issued in the future",
            rs256(&assertion_claims(&aud, NOW + 120)),
            GrantCheck::IssuedInFuture,
        ),
        ("not a JWT", "not-a-jwt".to_string(), GrantCheck::Malformed),
    ];

    let mut expected = Vec::new();
    for (name, signed, check) in &cases {
        let (status, body) = exchange_assertion(&play, signed).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{name}: {body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(
            description.starts_with(&format!("{}: ", check.name())),
            "{name}: {body}"
        );
        assert!(body.get("access_token").is_none(), "{name}");
        expected.push(*check);
    }

    // The grant type and the assertion are required.
    let valid = assertion(&aud, NOW);
    let (status, body) = exchange(
        &play,
        &[
            ("grant_type", "client_credentials"),
            ("assertion", valid.as_str()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    expected.push(GrantCheck::GrantType);
    let (status, body) = exchange(&play, &[("grant_type", play::GRANT_TYPE)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    expected.push(GrantCheck::AssertionMissing);

    assert_eq!(play.grant_refusals(), expected);
    assert_eq!(play.token_requests(), expected.len());

    // Skew within 60 s and exactly an hour are fine.
    let (status, body) = exchange_assertion(&play, &rs256(&assertion_claims(&aud, NOW + 60))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = exchange_assertion(&play, &valid).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_description_says_which_check_failed() {
    let play = pinned();
    let kid = play::private_key_id();
    let claims = assertion_claims(&play.token_url(), NOW);
    let (_, body) = exchange_assertion(
        &play,
        &sign_rsa(Algorithm::RS256, play::OTHER_KEY_PEM, Some(&kid), &claims),
    )
    .await;
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.starts_with("signature:"), "{body}");
    let (_, body) = exchange(&play, &[("grant_type", "password")]).await;
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.starts_with("grant_type:"), "{body}");
}

#[tokio::test]
async fn calls_without_a_token_or_with_an_expired_one_are_401() {
    let play = pinned();
    play.push_review(PACKAGE, play_review("r1", "Ann", "Hi", 4, NOW - 10, "en"));

    let (status, body) = list(&play, PACKAGE, "", None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["errors"][0]["reason"], "required");
    assert_eq!(body["error"]["details"][0]["reason"], "CREDENTIALS_MISSING");

    let (status, body) = list(&play, PACKAGE, "", Some("ya29.never-issued")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");

    // Expiry by the double's clock: valid for expires_in seconds.
    let token = access_token(&play).await;
    assert_eq!(list(&play, PACKAGE, "", Some(&token)).await.0, 200);
    play.set_now(NOW + play::DEFAULT_TOKEN_EXPIRES_IN - 1);
    assert_eq!(list(&play, PACKAGE, "", Some(&token)).await.0, 200);
    play.set_now(NOW + play::DEFAULT_TOKEN_EXPIRES_IN);
    let (status, body) = list(&play, PACKAGE, "", Some(&token)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");

    // expire_tokens() ends every issued token; a new exchange works again.
    let fresh = access_token(&play).await;
    assert_eq!(list(&play, PACKAGE, "", Some(&fresh)).await.0, 200);
    play.expire_tokens();
    assert_eq!(list(&play, PACKAGE, "", Some(&fresh)).await.0, 401);
    let renewed = access_token(&play).await;
    assert_eq!(list(&play, PACKAGE, "", Some(&renewed)).await.0, 200);

    // 401s count as GETs; a token with a shorter configured life expires sooner.
    assert_eq!(play.gets(PACKAGE), 8);
    let short = PlayDouble::start(PlayConfig {
        token_expires_in: 60,
        ..PlayConfig::fixture()
    });
    short.set_now(NOW);
    short.push_review(PACKAGE, play_review("r1", "Ann", "Hi", 4, NOW - 10, "en"));
    let (_, body) = exchange_assertion(&short, &assertion(&short.token_url(), NOW)).await;
    assert_eq!(body["expires_in"], 60);
    let token = body["access_token"].as_str().unwrap().to_string();
    short.set_now(NOW + 60);
    assert_eq!(list(&short, PACKAGE, "", Some(&token)).await.0, 401);
}

#[tokio::test]
async fn paging_covers_every_review_in_the_window_once_newest_first() {
    let play = pinned();
    let mut reviews = Vec::new();
    // 23 in the window: one an hour back from now, three of them sharing a second.
    for i in 0..20 {
        reviews.push(play_review(
            &format!("w{i:02}"),
            "A",
            "in window",
            3,
            NOW - i * 3600,
            "en",
        ));
    }
    for id in ["tie-c", "tie-a", "tie-b"] {
        reviews.push(play_review(id, "T", "tied", 2, NOW - 5 * 3600, "en"));
    }
    // Older than a week (and one at exactly a week), and one "from the future": never listed.
    reviews.push(play_review("old1", "O", "old", 1, NOW - 8 * DAY, "en"));
    reviews.push(play_review("old2", "O", "old", 1, NOW - 30 * DAY, "en"));
    reviews.push(play_review("week", "O", "old", 1, NOW - 7 * DAY, "en"));
    reviews.push(play_review("future", "F", "later", 1, NOW + 10, "en"));
    reviews.reverse();
    play.set_reviews(PACKAGE, reviews);
    let token = access_token(&play).await;

    let pages = all_pages(&play, &token, "maxResults=7").await;
    let sizes: Vec<usize> = pages.iter().map(|p| ids(p).len()).collect();
    assert_eq!(sizes, [7, 7, 7, 2]);
    for page in &pages[..3] {
        assert!(next_token(page).is_some());
        assert_eq!(page["pageInfo"]["resultPerPage"], 7);
        assert_eq!(page["pageInfo"]["totalResults"], 23);
    }
    let last = pages.last().unwrap();
    assert!(last.get("tokenPagination").is_none(), "{last}");
    assert!(last.get("pageInfo").is_none(), "{last}");

    let seen: Vec<String> = pages.iter().flat_map(ids).collect();
    let mut expected: Vec<String> = (0..20).map(|i| format!("w{i:02}")).collect();
    expected.splice(5..5, ["tie-a", "tie-b", "tie-c"].map(String::from));
    assert_eq!(
        seen, expected,
        "newest lastModified first, ties by reviewId"
    );

    // Tokens are unique per issue; a token the double never issued is refused.
    let again = all_pages(&play, &token, "maxResults=7").await;
    assert_ne!(next_token(&again[0]), next_token(&pages[0]));
    let (status, body) = list(&play, PACKAGE, "token=bm90LWlzc3VlZA", Some(&token)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    // ... and so is one issued for another package.
    play.add_app("com.example.other");
    let foreign = next_token(&pages[0]).unwrap();
    let (status, _) = list(
        &play,
        "com.example.other",
        &format!("token={foreign}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 400);

    // Default page size 10; startIndex is ignored; the standard parameters are accepted.
    let (status, body) = list(
        &play,
        PACKAGE,
        "startIndex=15&prettyPrint=false&alt=json&quotaUser=relay&%24.xgafv=2",
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), expected[..10]);

    // maxResults at most 100; unknown parameters are refused.
    let (status, _) = list(&play, PACKAGE, "maxResults=100", Some(&token)).await;
    assert_eq!(status, 200);
    let (status, body) = list(&play, PACKAGE, "maxResults=101", Some(&token)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    let (status, _) = list(&play, PACKAGE, "maxResults=ten", Some(&token)).await;
    assert_eq!(status, 400);
    let (status, body) = list(&play, PACKAGE, "pageSize=5", Some(&token)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pageSize")
    );

    // A week later the window holds none of them: Google answers `{}`.
    play.set_now(NOW + 8 * DAY);
    let token = access_token(&play).await;
    let (status, body) = list(&play, PACKAGE, "", Some(&token)).await;
    assert_eq!((status, body), (200, json!({})));
}

#[tokio::test]
async fn an_edit_moves_a_review_to_the_front_and_a_reply_does_not() {
    let play = pinned();
    play.set_reviews(
        PACKAGE,
        vec![
            play_review("a", "Ann", "First", 2, NOW - 3 * DAY, "en"),
            play_review("b", "Bob", "Second", 4, NOW - 2 * DAY, "en"),
            play_review("c", "Cy", "Third", 5, NOW - DAY, "en"),
        ],
    );
    let token = access_token(&play).await;
    assert_eq!(
        ids(&list(&play, PACKAGE, "", Some(&token)).await.1),
        ["c", "b", "a"]
    );

    play.set_developer_comment(PACKAGE, "a", "Sorry! Fixed in 1.2.1", NOW - 60);
    let (_, body) = list(&play, PACKAGE, "", Some(&token)).await;
    assert_eq!(ids(&body), ["c", "b", "a"]);
    let a = &body["reviews"][2];
    assert_eq!(developer_comment(a)["text"], "Sorry! Fixed in 1.2.1");
    assert_eq!(
        developer_comment(a)["lastModified"]["seconds"],
        (NOW - 60).to_string()
    );

    play.edit_review(PACKAGE, "a", "Now it works", 5, NOW - 30);
    let (_, body) = list(&play, PACKAGE, "", Some(&token)).await;
    assert_eq!(ids(&body), ["a", "c", "b"]);
    let a = user_comment(&body["reviews"][0]);
    assert_eq!(a["text"], "Now it works");
    assert_eq!(a["starRating"], 5);
    assert_eq!(
        a["lastModified"],
        json!({ "seconds": (NOW - 30).to_string(), "nanos": 0 })
    );
    assert_eq!(
        developer_comment(&body["reviews"][0])["text"],
        "Sorry! Fixed in 1.2.1"
    );

    // An edit brings an old review back into the window.
    play.push_review(
        PACKAGE,
        play_review("old", "Oz", "Meh", 2, NOW - 20 * DAY, "en"),
    );
    assert!(!ids(&list(&play, PACKAGE, "", Some(&token)).await.1).contains(&"old".into()));
    play.edit_review(PACKAGE, "old", "Better", 3, NOW - 1);
    assert_eq!(
        ids(&list(&play, PACKAGE, "", Some(&token)).await.1)[0],
        "old"
    );
}

#[tokio::test]
async fn errors_come_in_googles_shapes() {
    let play = pinned();
    play.push_review(PACKAGE, play_review("r1", "Ann", "Hi", 4, NOW - 10, "en"));
    let token = access_token(&play).await;

    // 404: a package the double does not know.
    let (status, body) = list(&play, "com.example.unknown", "", Some(&token)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], 404);
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    assert_eq!(body["error"]["errors"][0]["reason"], "applicationNotFound");
    // A registered app with no reviews is 200 `{}`.
    play.add_app("com.example.empty");
    assert_eq!(
        list(&play, "com.example.empty", "", Some(&token)).await,
        (200, json!({}))
    );

    // 403: no Play Console permission.
    play.deny(PACKAGE, Denial::NoPermission);
    let (status, body) = list(&play, PACKAGE, "", Some(&token)).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(
        body["error"]["message"],
        "The caller does not have permission"
    );
    assert_eq!(body["error"]["errors"][0]["reason"], "forbidden");
    assert!(body["error"].get("details").is_none());

    // 403: the API is not enabled in the Cloud project.
    play.deny(PACKAGE, Denial::ApiDisabled);
    let (status, body) = list(&play, PACKAGE, "", Some(&token)).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(body["error"]["errors"][0]["reason"], "accessNotConfigured");
    let info = &body["error"]["details"][0];
    assert_eq!(info["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    assert_eq!(info["reason"], "SERVICE_DISABLED");
    assert_eq!(info["domain"], "googleapis.com");
    assert_eq!(
        info["metadata"]["service"],
        "androidpublisher.googleapis.com"
    );
    assert_eq!(
        info["metadata"]["consumer"],
        format!("projects/{}", play::PROJECT_NUMBER)
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Google Play Android Developer API has not been used in project")
    );
    play.allow(PACKAGE);
    assert_eq!(list(&play, PACKAGE, "", Some(&token)).await.0, 200);

    // Injected 429, 500, 503, each for as many GETs as asked, then normal service.
    play.fail_next(1, 429, play::quota_exceeded_body());
    let (status, body) = list(&play, PACKAGE, "", Some(&token)).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(list(&play, PACKAGE, "", Some(&token)).await.0, 200);
    play.fail_next(2, 500, play::internal_error_body());
    for _ in 0..2 {
        let (status, body) = list(&play, PACKAGE, "", Some(&token)).await;
        assert_eq!(status, 500);
        assert_eq!(body["error"]["status"], "INTERNAL");
        assert_eq!(body["error"]["code"], 500);
    }
    play.fail_next(1, 503, play::unavailable_body());
    let (status, body) = list(&play, PACKAGE, "", Some(&token)).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (503, Some("UNAVAILABLE"))
    );
    play.fail_next(1, 502, Value::Null);
    assert_eq!(
        list(&play, PACKAGE, "", Some(&token)).await,
        (502, json!(""))
    );
    assert_eq!(list(&play, PACKAGE, "", Some(&token)).await.0, 200);
    // Injected failures come after the token check.
    play.fail_next(1, 500, play::internal_error_body());
    assert_eq!(list(&play, PACKAGE, "", None).await.0, 401);
    assert_eq!(list(&play, PACKAGE, "", Some(&token)).await.0, 500);
}

#[tokio::test]
async fn the_hourly_quota_answers_429_until_the_next_clock_hour() {
    let play = PlayDouble::start(PlayConfig {
        hourly_quota: 5,
        ..PlayConfig::fixture()
    });
    // 20 minutes into an hour.
    let start = NOW + 20 * 60;
    play.set_now(start);
    play.push_review(PACKAGE, play_review("r1", "Ann", "Hi", 4, NOW - 10, "en"));
    play.add_app("com.example.other");
    let token = access_token(&play).await;
    for i in 0..5 {
        assert_eq!(
            list(&play, PACKAGE, "", Some(&token)).await.0,
            200,
            "GET {i}"
        );
    }
    let (status, body) = list(&play, PACKAGE, "", Some(&token)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], 429);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["errors"][0]["reason"], "rateLimitExceeded");
    // Per package.
    assert_eq!(
        list(&play, "com.example.other", "", Some(&token)).await.0,
        200
    );
    // Still the same clock hour 39 minutes later; the next one starts afresh.
    play.set_now(start + 39 * 60);
    assert_eq!(list(&play, PACKAGE, "", Some(&token)).await.0, 429);
    play.set_now(start + 40 * 60);
    let token = access_token(&play).await;
    assert_eq!(list(&play, PACKAGE, "", Some(&token)).await.0, 200);
    assert_eq!(play.gets(PACKAGE), 8);

    // The default is Google's 200 an hour.
    let play = pinned();
    play.push_review(PACKAGE, play_review("r1", "Ann", "Hi", 4, NOW - 10, "en"));
    let token = access_token(&play).await;
    for _ in 0..200 {
        assert_eq!(list(&play, PACKAGE, "", Some(&token)).await.0, 200);
    }
    assert_eq!(list(&play, PACKAGE, "", Some(&token)).await.0, 429);
}

#[tokio::test]
async fn translation_replaces_text_and_keeps_the_original() {
    let play = pinned();
    play.set_reviews(
        PACKAGE,
        vec![
            play_review("de", "Jo", "Sehr gut", 5, NOW - 30, "de"),
            play_review("en", "Al", "Very good", 5, NOW - 20, "en"),
            play_review("gb", "Bo", "Brilliant", 5, NOW - 10, "en_GB"),
            with_user_field(
                play_review("none", "Cy", "Bien", 4, NOW - 5, "fr"),
                "reviewerLanguage",
                Value::Null,
            ),
        ],
    );
    let token = access_token(&play).await;

    let (_, plain) = list(&play, PACKAGE, "", Some(&token)).await;
    for review in plain["reviews"].as_array().unwrap() {
        assert!(
            user_comment(review).get("originalText").is_none(),
            "{review}"
        );
    }

    let (status, body) = list(&play, PACKAGE, "translationLanguage=en", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let by_id = |id: &str| {
        body["reviews"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["reviewId"] == id)
            .map(user_comment)
            .cloned()
            .unwrap()
    };
    let de = by_id("de");
    assert_eq!(de["text"], "[en] Sehr gut");
    assert_eq!(de["originalText"], "Sehr gut");
    assert_eq!(de["reviewerLanguage"], "de");
    for id in ["en", "gb", "none"] {
        let comment = by_id(id);
        assert!(comment.get("originalText").is_none(), "{id}: {comment}");
        assert!(!comment["text"].as_str().unwrap().starts_with('['), "{id}");
    }

    let (_, body) = list(&play, PACKAGE, "translationLanguage=de-DE", Some(&token)).await;
    let en = body["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reviewId"] == "en")
        .map(user_comment)
        .unwrap();
    assert_eq!(en["text"], "[de-DE] Very good");
    assert_eq!(en["originalText"], "Very good");
}

/// Asserts every key of `value` is a property of `schema` (recursively, with the JSON types the
/// document gives), and notes each schema met in `seen`.
fn check_schema(
    value: &Value,
    schema: &str,
    schemas: &Value,
    path: &str,
    seen: &mut HashSet<String>,
) {
    let properties = schemas[schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {schema}"));
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{path}: {schema} must be an object, got {value}"));
    seen.insert(schema.to_string());
    for (key, item) in object {
        let property = properties
            .get(key)
            .unwrap_or_else(|| panic!("{path}.{key} is not a property of {schema}"));
        check_property(item, property, schemas, &format!("{path}.{key}"), seen);
    }
}

fn check_property(
    value: &Value,
    property: &Value,
    schemas: &Value,
    path: &str,
    seen: &mut HashSet<String>,
) {
    if let Some(reference) = property["$ref"].as_str() {
        return check_schema(value, reference, schemas, path, seen);
    }
    match property["type"].as_str() {
        Some("string") => assert!(value.is_string(), "{path} must be a string, got {value}"),
        Some("integer") => assert!(
            value.is_i64() || value.is_u64(),
            "{path} must be an integer, got {value}"
        ),
        Some("boolean") => assert!(value.is_boolean(), "{path} must be a boolean"),
        Some("array") => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("{path} must be an array, got {value}"));
            for (i, item) in items.iter().enumerate() {
                check_property(
                    item,
                    &property["items"],
                    schemas,
                    &format!("{path}[{i}]"),
                    seen,
                );
            }
        }
        other => panic!("{path}: schema type {other:?} not handled"),
    }
}

#[tokio::test]
async fn every_served_object_matches_the_discovery_document() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/google-play/reviews.discovery.json"
        ))
        .expect("discovery document"),
    )
    .expect("JSON");
    let schemas = &doc["schemas"];
    let list_method = &doc["resources"]["reviews"]["methods"]["list"];
    assert_eq!(list_method["response"]["$ref"], "ReviewsListResponse");
    assert_eq!(
        list_method["path"],
        "androidpublisher/v3/applications/{packageName}/reviews"
    );
    assert!(doc["auth"]["oauth2"]["scopes"][play::SCOPE].is_object());

    let play = pinned();
    let full = with_developer_comment(
        with_device_metadata(play_review(
            "full",
            "Ann",
            "Title\tBody",
            5,
            NOW - 100,
            "pt_BR",
        )),
        "Obrigado!",
        NOW - 50,
    );
    let sparse = [
        "device",
        "androidOsVersion",
        "appVersionCode",
        "appVersionName",
        "reviewerLanguage",
    ]
    .into_iter()
    .fold(
        play_review("sparse", "Bob", "ok", 3, NOW - 200, "en"),
        |r, key| with_user_field(r, key, Value::Null),
    );
    let mut reviews = vec![full, sparse];
    for i in 0..5 {
        reviews.push(with_user_field(
            play_review(&format!("n{i}"), "C", "fine", 4, NOW - 300 - i, "en"),
            "thumbsUpCount",
            json!(i),
        ));
    }
    play.set_reviews(PACKAGE, reviews);
    let token = access_token(&play).await;

    let mut seen = HashSet::new();
    let mut served = 0;
    for query in ["maxResults=3", "maxResults=3&translationLanguage=en"] {
        for (i, page) in all_pages(&play, &token, query).await.iter().enumerate() {
            check_schema(
                page,
                "ReviewsListResponse",
                schemas,
                &format!("{query} page {i}"),
                &mut seen,
            );
            served += ids(page).len();
        }
    }
    assert_eq!(served, 14);
    // Comment objects hold exactly one of userComment / developerComment.
    let (_, body) = list(&play, PACKAGE, "maxResults=1", Some(&token)).await;
    let comments = body["reviews"][0]["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2);
    assert!(comments.iter().all(|c| c.as_object().unwrap().len() == 1));

    let expected: HashSet<String> = [
        "ReviewsListResponse",
        "Review",
        "Comment",
        "UserComment",
        "DeveloperComment",
        "Timestamp",
        "DeviceMetadata",
        "TokenPagination",
        "PageInfo",
    ]
    .map(String::from)
    .into_iter()
    .collect();
    assert_eq!(
        seen, expected,
        "every schema the list uses was served and checked"
    );

    // The originalText of a translation is checked too.
    let (_, body) = list(
        &play,
        PACKAGE,
        "maxResults=1&translationLanguage=en",
        Some(&token),
    )
    .await;
    assert_eq!(
        user_comment(&body["reviews"][0])["originalText"],
        "Title\tBody"
    );
}

#[tokio::test]
async fn reviews_reply_takes_350_characters_strips_html_and_reviews_get_shows_it() {
    let play = pinned();
    play.set_reviews(
        PACKAGE,
        vec![play_review("gp:1", "Ana", "Slow", 2, NOW - 3600, "en")],
    );
    let token = access_token(&play).await;
    let reply_url = format!("{}/gp:1:reply", play.reviews_url(PACKAGE));
    let reply = |body: Value, token: Option<String>| {
        let mut request = http().post(&reply_url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { read(request.send().await.expect("POST")).await }
    };

    let (status, _) = reply(json!({"replyText": "Hi"}), None).await;
    assert_eq!(status, 401);
    let (status, body) = reply(json!({"replyText": "x".repeat(351)}), Some(token.clone())).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    let (status, _) = reply(json!({"text": "x"}), Some(token.clone())).await;
    assert_eq!(status, 400, "replyText is required");
    assert_eq!(
        play.reply_text(PACKAGE, "gp:1"),
        None,
        "nothing kept from refusals"
    );

    let (status, body) = reply(
        json!({"replyText": format!("<b>Thanks</b> Ana{}", "!".repeat(333))}),
        Some(token.clone()),
    )
    .await;
    assert_eq!(status, 200, "350 characters are taken: {body}");
    let kept = format!("Thanks Ana{}", "!".repeat(333));
    assert_eq!(body["result"]["replyText"], kept.as_str());
    assert_eq!(body["result"]["lastEdited"]["seconds"], NOW.to_string());
    assert_eq!(
        play.reply_text(PACKAGE, "gp:1").as_deref(),
        Some(kept.as_str())
    );

    let get_url = format!("{}/gp:1", play.reviews_url(PACKAGE));
    let (status, review) = read(
        http()
            .get(&get_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(developer_comment(&review)["text"], kept.as_str());
    let missing = format!("{}/gp:2:reply", play.reviews_url(PACKAGE));
    let status = http()
        .post(&missing)
        .bearer_auth(&token)
        .json(&json!({"replyText": "x"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);

    play.deny(PACKAGE, Denial::NoPermission);
    let (status, body) = reply(json!({"replyText": "Again"}), Some(token)).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(play.reply_bodies().len(), 6);
}
