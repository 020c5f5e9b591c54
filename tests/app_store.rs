//! The App Store Connect adapter against the App Store Connect double: developer replies and the
//! app's name, as the relay receives them.

mod support;

use std::time::{Duration, Instant};

use review_relay::adapters::appstore::AppStoreClient;
use review_relay::adapters::credentials::SecretHandle;
use review_relay::config::RetryPolicy;
use review_relay::domain::AppId;
use review_relay::ports::{Cursor, ReviewSource, TimeLimit};
use review_relay::secret::RelaySecret;
use secrecy::SecretString;
use support::asc::{AscConfig, AscDouble, review};
use support::keys;

fn client(asc: &AscDouble) -> AppStoreClient {
    let retry = RetryPolicy {
        attempts: 1,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        retry_after_max: Duration::ZERO,
        request_timeout: Duration::from_secs(10),
    };
    let base = url::Url::parse(&asc.base_url()).unwrap();
    AppStoreClient::new(
        reqwest::Client::new(),
        SecretHandle::fixed(secret()),
        base,
        retry,
    )
}

/// The fixture key, read the way the relay reads its secret.
fn secret() -> RelaySecret {
    let secret = serde_json::json!({
        "issuer_id": keys::ISSUER_ID,
        "key_id": keys::KEY_ID,
        "private_key": keys::PRIVATE_KEY_P8,
        "webhook_url": "https://example.com/hook",
    });
    RelaySecret::parse(&SecretString::from(secret.to_string()), None).unwrap()
}

fn app(id: &str) -> AppId {
    AppId::parse(id).unwrap()
}

#[tokio::test]
async fn published_replies_arrive_with_their_reviews() {
    let asc = AscDouble::start(AscConfig::team());
    let reviews = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            review(
                id,
                &format!("2026-11-20T1{i}:00:00Z"),
                3,
                Some("Title"),
                Some("Body"),
                None,
                Some("FRA"),
            )
        })
        .collect();
    asc.set_reviews("10", reviews);
    asc.set_response("10", "a", "Merci !");
    asc.set_response_in_state("10", "b", "Not yet", "PENDING_PUBLISH");

    let page = client(&asc)
        .page(&app("10"), &Cursor::First, None)
        .await
        .unwrap();
    let replies: Vec<_> = page
        .reviews
        .iter()
        .map(|r| (r.id.as_str(), r.response.as_ref().map(|x| x.body.as_str())))
        .collect();
    assert_eq!(replies, [("c", None), ("b", None), ("a", Some("Merci !"))]);
    assert_eq!(
        page.reviews[2]
            .response
            .as_ref()
            .unwrap()
            .last_modified_date
            .as_deref(),
        Some(support::asc::RESPONSE_DATE)
    );
    let requests = asc.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, 200, "the double accepted the query");
    assert!(
        requests[0]
            .query
            .as_deref()
            .unwrap()
            .contains("include=response"),
        "{requests:?}"
    );
}

#[tokio::test]
async fn the_app_name_is_read_once_per_cold_start() {
    let asc = AscDouble::start(AscConfig::team());
    asc.set_app_name("20", "Tally & Co");
    let source = client(&asc);

    for _ in 0..3 {
        assert_eq!(
            source.app_name(&app("20"), None).await.as_deref(),
            Some("Tally & Co")
        );
    }
    assert_eq!(asc.app_lookups("20"), 1);
    let lookup = &asc.requests()[0];
    assert_eq!(lookup.query.as_deref(), Some("fields%5Bapps%5D=name"));
    assert!(lookup.auth_ok && lookup.status == 200);
}

#[tokio::test]
async fn a_failed_lookup_is_none_and_not_asked_again_at_once() {
    let asc = AscDouble::start(AscConfig::team());
    let source = client(&asc);

    // Unknown to the double: 404.
    assert_eq!(source.app_name(&app("30"), None).await, None);
    asc.set_app_name("30", "Late");
    assert_eq!(source.app_name(&app("30"), None).await, None);
    assert_eq!(
        asc.app_lookups("30"),
        1,
        "a failure is remembered for a while"
    );
}

#[tokio::test]
async fn the_lookup_keeps_within_the_time_limit() {
    let asc = AscDouble::start(AscConfig::team());
    asc.set_app_name("40", "Slow");
    asc.set_delay(Duration::from_secs(3));
    let source = client(&asc);

    let now = Instant::now();
    let limit = TimeLimit {
        give_up_at: now + Duration::from_millis(200),
        finish_by: now + Duration::from_millis(400),
    };
    assert_eq!(source.app_name(&app("40"), Some(limit)).await, None);
    assert!(
        now.elapsed() < Duration::from_secs(2),
        "{:?}",
        now.elapsed()
    );

    // Past `give_up_at`, nothing is asked.
    asc.set_delay(Duration::ZERO);
    let spent = TimeLimit {
        give_up_at: Instant::now(),
        finish_by: Instant::now() + Duration::from_secs(5),
    };
    assert_eq!(source.app_name(&app("41"), Some(spent)).await, None);
    assert_eq!(asc.app_lookups("41"), 0);
}
