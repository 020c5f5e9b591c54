//! The Google Play adapter against the Google Play Developer API double (real HTTP on 127.0.0.1):
//! the token exchange, paging, mapping, and the errors a user has to act on.

mod support;

use std::time::Duration;

use review_relay::adapters::credentials::SecretHandle;
use review_relay::adapters::googleplay::{GooglePlayClient, OPTIONAL_UNTIL};
use review_relay::config::RetryPolicy;
use review_relay::domain::{AppId, Review, Store};
use review_relay::ports::{Cursor, ReviewSource, SourceError};
use review_relay::secret::RelaySecret;
use secrecy::SecretString;
use serde_json::{Value, json};
use support::play::{
    self, Denial, GrantCheck, PlayConfig, PlayDouble, play_review, real_now_secs,
    with_developer_comment, with_device_metadata,
};

const PACKAGE: &str = "com.example.tally";
const ATTEMPTS: u32 = 3;

fn retry() -> RetryPolicy {
    RetryPolicy {
        attempts: ATTEMPTS,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        retry_after_max: Duration::from_millis(10),
        request_timeout: Duration::from_secs(10),
    }
}

/// The secret as the relay reads it, with this service account key file.
fn secret(account: Value) -> RelaySecret {
    let secret = json!({
        "google_service_account": account,
        "webhook_url": "https://example.com/hook",
    });
    RelaySecret::parse(&SecretString::from(secret.to_string()), None).unwrap()
}

fn client_with(play: &PlayDouble, account: Value, language: Option<&str>) -> GooglePlayClient {
    // As the relay's shared client: no redirects.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    GooglePlayClient::new(
        http,
        SecretHandle::fixed(secret(account)),
        url::Url::parse(&play.base_url()).unwrap(),
        language.map(str::to_owned),
        retry(),
    )
}

fn client(play: &PlayDouble) -> GooglePlayClient {
    client_with(play, play.service_account_json(), None)
}

fn app(package: &str) -> AppId {
    AppId::play(package).unwrap()
}

/// Every page, following the cursor from the first.
async fn read_all(
    source: &GooglePlayClient,
    package: &str,
) -> Result<Vec<Vec<Review>>, SourceError> {
    let mut pages = Vec::new();
    let mut cursor = Cursor::First;
    loop {
        let page = source.page(&app(package), &cursor, None).await?;
        pages.push(page.reviews);
        match page.next {
            Some(next) => cursor = next,
            None => return Ok(pages),
        }
    }
}

/// What no error may contain: an access token the double issued (`ya29.`), a JWT (an assertion
/// starts `eyJ`), or the key.
fn assert_no_credentials(text: &str) {
    for marker in ["ya29.", "eyJ", "PRIVATE KEY"] {
        assert!(!text.contains(marker), "{marker:?} in {text:?}");
    }
}

#[tokio::test]
async fn every_page_is_read_newest_first_with_one_token() {
    let play = PlayDouble::start(PlayConfig::fixture());
    let now = real_now_secs();
    let reviews = (0..230)
        .map(|i| {
            play_review(
                &format!("r{i:03}"),
                &format!("Reviewer {i}"),
                &format!("Title {i}\tBody {i}"),
                (i % 5 + 1) as u8,
                now - 60 * i64::from(i),
                "en",
            )
        })
        .collect();
    play.set_reviews(PACKAGE, reviews);
    play.push_review(
        PACKAGE,
        with_developer_comment(
            with_device_metadata(play_review("replied", "Ana", "Solid", 5, now - 30, "en")),
            "Thanks!",
            now - 10,
        ),
    );

    let pages = read_all(&client(&play), PACKAGE).await.unwrap();

    let sizes: Vec<_> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 100, 31]);
    let all: Vec<&Review> = pages.iter().flatten().collect();
    assert_eq!(all[0].id, "r000");
    assert_eq!(all[1].id, "replied");
    assert_eq!(all[230].id, "r229");
    assert!(
        all.windows(2)
            .all(|w| w[0].created_date >= w[1].created_date),
        "newest first"
    );
    let first = all[0];
    assert_eq!(first.store, Store::GooglePlay);
    assert_eq!(first.title.as_deref(), Some("Title 0"));
    assert_eq!(first.body.as_deref(), Some("Body 0"));
    assert_eq!(first.rating, Some(1));
    assert_eq!(first.reviewer_nickname.as_deref(), Some("Reviewer 0"));
    assert_eq!(first.details.device.as_deref(), Some("oriole"));
    assert_eq!(first.details.app_version.as_deref(), Some("1.2.0"));
    assert_eq!(first.details.language.as_deref(), Some("en"));
    assert_eq!(first.details.original_text, None);
    assert!(first.created_date.ends_with('Z'), "{}", first.created_date);
    let replied = all[1];
    assert_eq!(replied.details.device.as_deref(), Some("Pixel 6"));
    assert_eq!(
        replied.response.as_ref().map(|r| r.body.as_str()),
        Some("Thanks!")
    );
    assert_eq!(replied.title, None);
    assert_eq!(replied.body.as_deref(), Some("Solid"));

    assert_eq!(play.token_requests(), 1, "one token for every page");
    assert!(
        play.grant_refusals().is_empty(),
        "{:?}",
        play.grant_refusals()
    );
    assert_eq!(play.gets(PACKAGE), 3);
    let requests = play.requests();
    let lists: Vec<_> = requests.iter().filter(|r| r.method == "GET").collect();
    assert!(lists.iter().all(|r| r.status == 200), "{requests:?}");
    assert!(lists.iter().all(|r| r.authorization_present));
    assert_eq!(lists[0].query.as_deref(), Some("maxResults=100"));
    assert!(lists[1].query.as_deref().unwrap().contains("&token="));
}

#[tokio::test]
async fn an_empty_app_is_one_empty_page() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.add_app(PACKAGE);
    let pages = read_all(&client(&play), PACKAGE).await.unwrap();
    assert_eq!(pages, vec![Vec::<Review>::new()]);
}

#[tokio::test]
async fn an_expired_token_is_refused_once_then_replaced() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.set_reviews(
        PACKAGE,
        vec![play_review("a", "Ana", "ok", 4, real_now_secs() - 60, "en")],
    );
    let source = client(&play);
    source
        .page(&app(PACKAGE), &Cursor::First, None)
        .await
        .unwrap();
    play.expire_tokens();

    let page = source
        .page(&app(PACKAGE), &Cursor::First, None)
        .await
        .unwrap();

    assert_eq!(page.reviews.len(), 1);
    assert_eq!(play.token_requests(), 2);
    let statuses: Vec<_> = play
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [200, 401, 200]);
    assert!(play.grant_refusals().is_empty());
}

#[tokio::test]
async fn a_token_refused_again_after_reading_the_secret_again_fails() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.add_app(PACKAGE);
    play.fail_next(2, 401, play::invalid_credentials_body());

    let err = first_page_error(&play, PACKAGE).await;

    assert!(matches!(err, SourceError::PlayUnauthorized), "{err:?}");
    assert!(
        err.to_string().contains("`google_service_account`"),
        "{err}"
    );
    assert_eq!(play.gets(PACKAGE), 2, "one more try, no more");
    assert_eq!(play.token_requests(), 2, "a fresh token for the second try");
}

#[tokio::test]
async fn reviews_arrive_translated_with_the_reviewers_own_words() {
    let play = PlayDouble::start(PlayConfig::fixture());
    let now = real_now_secs();
    play.set_reviews(
        PACKAGE,
        vec![
            play_review("fr", "Zoé", "Très bien", 5, now - 60, "fr_FR"),
            play_review("en", "Sam", "Great", 5, now - 120, "en_GB"),
        ],
    );
    let source = client_with(&play, play.service_account_json(), Some("en"));

    let page = source
        .page(&app(PACKAGE), &Cursor::First, None)
        .await
        .unwrap();

    let query = play.requests().last().unwrap().query.clone().unwrap();
    assert_eq!(query, "maxResults=100&translationLanguage=en");
    let fr = &page.reviews[0];
    assert_eq!(fr.body.as_deref(), Some("[en] Très bien"));
    assert_eq!(fr.details.original_text.as_deref(), Some("Très bien"));
    assert_eq!(fr.details.language.as_deref(), Some("fr_FR"));
    let en = &page.reviews[1];
    assert_eq!(en.body.as_deref(), Some("Great"));
    assert_eq!(en.details.original_text, None);
}

#[tokio::test]
async fn a_server_fault_is_retried_to_success() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.set_reviews(
        PACKAGE,
        vec![play_review("a", "Ana", "ok", 4, real_now_secs() - 60, "en")],
    );
    play.fail_next(1, 503, play::unavailable_body());

    let page = client(&play)
        .page(&app(PACKAGE), &Cursor::First, None)
        .await
        .unwrap();

    assert_eq!(page.reviews.len(), 1);
    assert_eq!(play.gets(PACKAGE), 2);
    assert_eq!(play.token_requests(), 1);
}

/// The error reading `package`'s first page, which must carry no credential.
async fn first_page_error(play: &PlayDouble, package: &str) -> SourceError {
    let err = client(play)
        .page(&app(package), &Cursor::First, None)
        .await
        .unwrap_err();
    assert_no_credentials(&err.to_string());
    err
}

#[tokio::test]
async fn a_missing_permission_names_the_play_console_permission_and_the_app() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.add_app(PACKAGE);
    play.deny(PACKAGE, Denial::NoPermission);

    let err = first_page_error(&play, PACKAGE).await;

    assert!(matches!(err, SourceError::PlayForbidden { .. }), "{err:?}");
    let text = err.to_string();
    for needle in [
        "Reply to reviews",
        "Users and permissions",
        PACKAGE,
        play::CLIENT_EMAIL,
        "even to read",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    assert_eq!(play.gets(PACKAGE), 1, "not retried");
}

#[tokio::test]
async fn a_disabled_api_says_to_enable_it_in_the_cloud_project() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.add_app(PACKAGE);
    play.deny(PACKAGE, Denial::ApiDisabled);

    let err = first_page_error(&play, PACKAGE).await;

    assert!(
        matches!(err, SourceError::PlayApiDisabled { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("Google Play Android Developer API is not enabled")
            && text.contains(play::PROJECT_NUMBER)
            && text.contains("enable it"),
        "{text}"
    );
    assert!(!text.contains("Reply to reviews"), "{text}");
    assert_eq!(play.gets(PACKAGE), 1, "not retried");
}

#[tokio::test]
async fn an_unknown_package_is_named() {
    let play = PlayDouble::start(PlayConfig::fixture());
    let err = first_page_error(&play, "com.example.unknown").await;
    assert!(matches!(err, SourceError::PlayAppNotFound(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Google Play app com.example.unknown was not found (404): check PLAY_PACKAGES, and that the app is in the service account's Play Console developer account"
    );
}

#[tokio::test]
async fn an_exhausted_quota_is_retried_then_reported_with_googles_limit() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.add_app(PACKAGE);
    play.fail_next(10, 429, play::quota_exceeded_body());

    let err = first_page_error(&play, PACKAGE).await;

    assert!(
        matches!(
            err,
            SourceError::PlayRateLimited {
                status: 429,
                attempts: ATTEMPTS
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Google Play quota exceeded (429): Google allows 200 GET requests an hour per app for reviews (after 3 attempts)"
    );
    assert_eq!(play.gets(PACKAGE), ATTEMPTS as usize);
}

#[tokio::test]
async fn a_project_quota_answered_with_403_is_a_rate_limit_not_a_permission() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.add_app(PACKAGE);
    play.fail_next(
        10,
        403,
        play::error_body(
            403,
            "PERMISSION_DENIED",
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per day'",
            "usageLimits",
            "rateLimitExceeded",
        ),
    );

    let err = first_page_error(&play, PACKAGE).await;

    assert!(
        matches!(
            err,
            SourceError::PlayRateLimited {
                status: 403,
                attempts: ATTEMPTS
            }
        ),
        "{err:?}"
    );
    assert_eq!(play.gets(PACKAGE), ATTEMPTS as usize);
}

#[tokio::test]
async fn a_lasting_server_fault_is_retried_then_reported() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.add_app(PACKAGE);
    play.fail_next(10, 500, play::internal_error_body());

    let err = first_page_error(&play, PACKAGE).await;

    assert!(
        matches!(
            err,
            SourceError::PlayStatus {
                status: 500,
                attempts: ATTEMPTS,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Google Play answered 500 INTERNAL: Internal error encountered. (after 3 attempts)"
    );
    assert_eq!(play.gets(PACKAGE), ATTEMPTS as usize);
}

#[tokio::test]
async fn a_stale_page_token_is_a_status_error() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.add_app(PACKAGE);
    let err = client(&play)
        .page(&app(PACKAGE), &Cursor::Next("gone".into()), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::PlayStatus { status: 400, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("Invalid pagination token"),
        "{err}"
    );
    assert_eq!(play.gets(PACKAGE), 1, "a 400 is not retried");
}

#[tokio::test]
async fn a_key_google_does_not_know_is_refused_with_what_to_check() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.add_app(PACKAGE);
    let mut account = play.service_account_json();
    account["private_key_id"] = json!("0000000000000000000000000000000000000000");
    let source = client_with(&play, account, None);

    let err = source
        .page(&app(PACKAGE), &Cursor::First, None)
        .await
        .unwrap_err();

    assert!(
        matches!(err, SourceError::PlayTokenRefused { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert_no_credentials(&text);
    for needle in [
        "invalid_grant: kid:",
        "`client_email`",
        "`private_key`",
        "`private_key_id`",
        "still exists in Google Cloud",
        "clock",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    // Tried once more with the secret read again (the key may have been rotated), then given up.
    assert_eq!(play.grant_refusals(), [GrantCheck::Kid, GrantCheck::Kid]);
    assert_eq!(play.gets(PACKAGE), 0, "no token, no request for reviews");
}

#[tokio::test]
async fn optional_reads_stop_when_three_quarters_of_the_hours_quota_are_used() {
    let play = PlayDouble::start(PlayConfig::fixture());
    play.add_app(PACKAGE);
    play.add_app("com.example.other");
    let source = client(&play);
    let hour = |secs: i64| secs.div_euclid(3600);
    let started = real_now_secs();

    for _ in 0..OPTIONAL_UNTIL - 1 {
        source
            .page(&app(PACKAGE), &Cursor::First, None)
            .await
            .unwrap();
    }
    let before_last = source.optional_reads_affordable(&app(PACKAGE));
    source
        .page(&app(PACKAGE), &Cursor::First, None)
        .await
        .unwrap();
    let after_last = source.optional_reads_affordable(&app(PACKAGE));

    // The count starts again with each clock hour; a run across the hour proves nothing.
    if hour(started) == hour(real_now_secs()) {
        assert!(before_last);
        assert!(!after_last);
    }
    assert!(source.optional_reads_affordable(&app("com.example.other")));
    assert_eq!(play.gets(PACKAGE), OPTIONAL_UNTIL as usize);
    assert_eq!(play.token_requests(), 1);
}
