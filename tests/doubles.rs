//! Self-tests of the test doubles in tests/support (no product code involved).

mod support;

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeyType, TimeToLiveStatus};
use serde_json::{Value, json};
use support::asc::{AscConfig, AscDouble, review};
use support::keys;
use support::moto::{Moto, sdk_config, unique_name};
use support::receiver::Receiver;
use support::runtime_api::{FUNCTION_ARN, Invocation, RuntimeApi};
use support::template;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http().get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn token_with(claims: Value) -> String {
    keys::sign_es256(keys::PRIVATE_KEY_P8, keys::KEY_ID, &claims)
}

fn error_code(body: &Value) -> &str {
    body["errors"][0]["code"].as_str().unwrap_or("<none>")
}

#[test]
fn template_parser_accepts_cloudformation_short_tags() {
    let yaml = r#"
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          TABLE: !Ref Table
          SECRET: !Sub "arn:aws:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:x"
          ARN: !GetAtt Table.Arn
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-state"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - { AttributeName: pk, AttributeType: S }
      KeySchema:
        - { AttributeName: pk, KeyType: HASH }
"#;
    let props = template::table_properties_from_str(yaml);
    assert_eq!(props["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(props["KeySchema"][0]["AttributeName"].as_str(), Some("pk"));
}

#[tokio::test]
async fn moto_table_from_template_and_secrets() {
    let moto = Moto::shared();
    let cfg = sdk_config(&moto.endpoint()).await;
    let table = unique_name("doubles-table");
    template::create_table_from_template(&cfg, &table).await;

    // The created table must have exactly the template's shape.
    let props = template::table_properties();
    let ddb = aws_sdk_dynamodb::Client::new(&cfg);
    let described = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("DescribeTable")
        .table
        .expect("table description");
    let key_schema: Vec<(String, KeyType)> = described
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_string(), k.key_type().clone()))
        .collect();
    let expected: Vec<(String, KeyType)> = props["KeySchema"]
        .as_sequence()
        .expect("KeySchema list")
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap().to_string(),
                KeyType::from(k["KeyType"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(key_schema, expected);
    assert_eq!(
        described
            .billing_mode_summary()
            .and_then(|b| b.billing_mode()),
        Some(&BillingMode::from(props["BillingMode"].as_str().unwrap()))
    );
    if let Some(ttl_spec) = props.get("TimeToLiveSpecification") {
        let ttl = ddb
            .describe_time_to_live()
            .table_name(&table)
            .send()
            .await
            .expect("DescribeTimeToLive")
            .time_to_live_description
            .expect("ttl description");
        assert_eq!(
            ttl.attribute_name(),
            ttl_spec["AttributeName"].as_str(),
            "TTL attribute"
        );
        assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    }

    // Items written with the template's key attributes come back from scan_table.
    let mut put = ddb.put_item().table_name(&table);
    for (name, _) in &key_schema {
        put = put.item(name, AttributeValue::S(format!("{name}-value")));
    }
    put.item("extra", AttributeValue::N("42".into()))
        .send()
        .await
        .expect("PutItem");
    let items = template::scan_table(&cfg, &table).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["extra"], AttributeValue::N("42".into()));

    let secret = unique_name("doubles-secret");
    let arn = template::put_secret(&cfg, &secret, r#"{"v":1}"#).await;
    assert!(arn.contains(&secret), "ARN {arn} names the secret");
    assert_eq!(template::get_secret(&cfg, &secret).await, r#"{"v":1}"#);
    template::update_secret(&cfg, &secret, r#"{"v":2}"#).await;
    assert_eq!(template::get_secret(&cfg, &arn).await, r#"{"v":2}"#);
}

#[tokio::test]
async fn moto_stops_on_drop() {
    let moto = Moto::start();
    let endpoint = moto.endpoint();
    let (status, _) = get(&format!("{endpoint}/moto-api/"), None).await;
    assert_eq!(status, 200, "moto answers while running");
    drop(moto);
    let result = http().get(format!("{endpoint}/moto-api/")).send().await;
    assert!(result.is_err(), "moto still answers after drop: {result:?}");
}

fn sample_reviews() -> Vec<Value> {
    // Stored out of order, with UTC offsets that make string order differ from instant order.
    vec![
        review(
            "r2",
            "2026-11-20T08:10:34-08:00",
            5,
            Some("Great"),
            Some("Love it"),
            Some("ann"),
            Some("USA"),
        ), // 16:10:34Z
        review(
            "r4",
            "2026-11-20T23:30:00+09:00",
            1,
            None,
            Some("Crashes"),
            None,
            Some("JPN"),
        ), // 14:30:00Z
        review(
            "r1",
            "2026-11-20T17:00:00+00:00",
            4,
            Some("Nice"),
            None,
            Some("bob"),
            Some("GBR"),
        ), // 17:00:00Z
        review("r5", "2026-11-19T10:00:00Z", 3, None, None, None, None), // 19th
        review(
            "r3",
            "2026-11-20T10:00:00-05:00",
            2,
            Some("Meh"),
            Some("So so"),
            Some("cy"),
            Some("CAN"),
        ), // 15:00:00Z
    ]
}

#[tokio::test]
async fn asc_pages_newest_first_with_absolute_next_links() {
    let asc = AscDouble::start(AscConfig::team());
    asc.set_reviews("123", sample_reviews());
    let token = keys::team_token();

    let mut url = format!(
        "{}/v1/apps/123/customerReviews?sort=-createdDate&limit=2",
        asc.base_url()
    );
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let (status, body) = get(&url, Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        assert_eq!(body["links"]["self"], json!(url));
        assert_eq!(body["meta"]["paging"], json!({"total": 5, "limit": 2}));
        for r in body["data"].as_array().expect("data array") {
            assert_eq!(r["type"], "customerReviews");
            ids.push(r["id"].as_str().unwrap().to_string());
        }
        match body["links"]["next"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{}/v1/apps/123/customerReviews?", asc.base_url())),
                    "next is absolute: {next}"
                );
                assert!(next.contains("cursor=") && next.contains("limit=2"));
                assert!(
                    next.contains("sort=-createdDate"),
                    "next keeps sort: {next}"
                );
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(ids, ["r1", "r2", "r3", "r4", "r5"]);
    assert_eq!(asc.review_list_requests("123"), 3);

    // Ascending order too, and absent attributes are left out.
    let (_, body) = get(
        &format!(
            "{}/v1/apps/123/customerReviews?sort=createdDate&limit=200",
            asc.base_url()
        ),
        Some(&token),
    )
    .await;
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r5", "r4", "r3", "r2", "r1"]);
    assert!(body["links"].get("next").is_none());
    assert_eq!(
        body["data"][0]["attributes"],
        json!({"rating": 3, "createdDate": "2026-11-19T10:00:00Z"})
    );

    // An app set with no reviews is 200 and empty; an unknown app is 404.
    asc.set_reviews("empty", Vec::new());
    let (status, body) = get(
        &format!("{}/v1/apps/empty/customerReviews", asc.base_url()),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["meta"]["paging"]["limit"], 50);
    let (status, body) = get(
        &format!("{}/v1/apps/999/customerReviews", asc.base_url()),
        Some(&token),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "NOT_FOUND");
    assert_eq!(body["errors"][0]["status"], "404");

    let (status, body) = get(
        &format!("{}/v1/apps/123/customerReviews?limit=201", asc.base_url()),
        Some(&token),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "PARAMETER_ERROR.INVALID");

    // App lookup.
    let (status, _) = get(&format!("{}/v1/apps/123", asc.base_url()), Some(&token)).await;
    assert_eq!(status, 404);
    asc.set_app_name("123", "My App");
    let (status, body) = get(&format!("{}/v1/apps/123", asc.base_url()), Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["type"], "apps");
    assert_eq!(body["data"]["attributes"]["name"], "My App");
}

#[tokio::test]
async fn asc_rejects_bad_tokens_with_apples_401() {
    let asc = AscDouble::start(AscConfig::team());
    asc.set_reviews("1", sample_reviews());
    let url = format!("{}/v1/apps/1/customerReviews", asc.base_url());
    let now = keys::now_secs();
    let claims = |iat: i64, exp: i64| json!({"iss": keys::ISSUER_ID, "iat": iat, "exp": exp, "aud": "appstoreconnect-v1"});

    let good = token_with(claims(now, now + 1200));
    let (status, _) = get(&url, Some(&good)).await;
    assert_eq!(status, 200, "a 20-minute token is accepted");

    let other_key = keys::sign_es256(keys::OTHER_KEY_P8, keys::KEY_ID, &claims(now, now + 600));
    let too_long = token_with(claims(now, now + 1201));
    let expired = token_with(claims(now - 700, now - 100));
    let wrong_kid = keys::sign_es256(keys::PRIVATE_KEY_P8, "OTHERKID", &claims(now, now + 600));
    let wrong_aud =
        token_with(json!({"iss": keys::ISSUER_ID, "iat": now, "exp": now + 600, "aud": "other"}));
    let wrong_iss = token_with(
        json!({"iss": "someone-else", "iat": now, "exp": now + 600, "aud": "appstoreconnect-v1"}),
    );
    let no_iat =
        token_with(json!({"iss": keys::ISSUER_ID, "exp": now + 600, "aud": "appstoreconnect-v1"}));
    for (what, token) in [
        ("signed by another key", Some(other_key.as_str())),
        ("exp - iat > 1200", Some(too_long.as_str())),
        ("expired", Some(expired.as_str())),
        ("wrong kid", Some(wrong_kid.as_str())),
        ("wrong aud", Some(wrong_aud.as_str())),
        ("wrong iss", Some(wrong_iss.as_str())),
        ("no iat", Some(no_iat.as_str())),
        ("no token", None),
        ("garbage", Some("not.a.jwt")),
    ] {
        let (status, body) = get(&url, token).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(error_code(&body), "NOT_AUTHORIZED", "{what}");
        assert_eq!(
            body["errors"][0]["title"],
            "Authentication credentials are missing or invalid."
        );
    }

    assert_eq!(asc.accepted_tokens(), std::slice::from_ref(&good));
    let requests = asc.requests();
    assert_eq!(requests.len(), 10);
    assert!(requests[0].auth_ok && requests[0].token.as_deref() == Some(good.as_str()));
    assert_eq!(requests.iter().filter(|r| !r.auth_ok).count(), 9);
    assert!(requests[1].auth_error.is_some());
    assert!(requests[8].token.is_none(), "no token recorded as None");

    // Individual keys: sub "user" and no iss.
    let individual = AscDouble::start(AscConfig::individual());
    individual.set_reviews("1", Vec::new());
    let url = format!("{}/v1/apps/1/customerReviews", individual.base_url());
    let ok = token_with(
        json!({"sub": "user", "iat": now, "exp": now + 600, "aud": "appstoreconnect-v1"}),
    );
    assert_eq!(get(&url, Some(&ok)).await.0, 200);
    assert_eq!(
        get(&url, Some(&good)).await.0,
        401,
        "team token (iss, no sub) refused"
    );
}

#[tokio::test]
async fn asc_fault_switches() {
    let asc = AscDouble::start(AscConfig::team());
    asc.set_reviews("7", sample_reviews());
    let token = keys::team_token();
    let url = format!("{}/v1/apps/7/customerReviews?limit=2", asc.base_url());

    asc.fail_next(
        2,
        429,
        support::asc::error_body(
            429,
            "RATE_LIMIT_EXCEEDED",
            "The request rate limit has been reached.",
            "slow down",
        ),
        vec![("retry-after".into(), "3".into())],
    );
    for _ in 0..2 {
        let resp = http().get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 429);
        assert_eq!(resp.headers()["retry-after"], "3");
    }
    let (status, first) = get(&url, Some(&token)).await;
    assert_eq!(status, 200, "third request succeeds again");

    asc.set_page_override("7", 1, "{not json".to_string());
    let next = first["links"]["next"].as_str().unwrap().to_string();
    let (status, body) = get(&next, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!("{not json"), "raw override served");

    asc.set_next_link_override("7", 0, url.clone());
    let (_, body) = get(&url, Some(&token)).await;
    assert_eq!(body["links"]["next"], json!(url), "forced repeated next");
    assert_eq!(asc.review_list_requests("7"), 5);

    asc.clear_overrides("7");
    let (_, body) = get(&url, Some(&token)).await;
    assert_eq!(body["links"]["next"], json!(next), "real next link again");
    let (status, body) = get(&next, Some(&token)).await;
    assert_eq!(status, 200);
    assert!(body["data"].is_array(), "real page again: {body}");
    let cursor = support::asc::encode_cursor(2);
    assert!(next.contains(cursor.trim_end_matches('=')), "{next}");

    asc.set_delay(Duration::from_millis(300));
    let started = std::time::Instant::now();
    get(&url, Some(&token)).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn asc_includes_replies_when_asked_and_checks_the_query_as_apple_does() {
    let asc = AscDouble::start(AscConfig::team());
    asc.set_reviews("5", sample_reviews());
    asc.set_response("5", "r1", "Thanks, bob!");
    asc.set_response_in_state("5", "r3", "Draft", "PENDING_PUBLISH");
    let token = keys::team_token();
    let list = |query: &str| {
        format!(
            "{}/v1/apps/5/customerReviews?sort=-createdDate{query}",
            asc.base_url()
        )
    };

    // Without `include`, no linkage and no `included`, as before.
    let (status, body) = get(&list(""), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("included").is_none(), "{body}");
    assert!(
        body["data"][0]["relationships"]["response"]
            .get("data")
            .is_none()
    );

    let (status, body) = get(
        &list("&include=response&fields%5BcustomerReviewResponses%5D=responseBody,state"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data[0]["id"], "r1");
    assert_eq!(
        data[0]["relationships"]["response"]["data"],
        json!({"type": "customerReviewResponses", "id": "response-r1"})
    );
    assert!(data[0]["relationships"]["response"]["links"].is_object());
    assert!(data[1]["relationships"]["response"].get("data").is_none());
    let included = body["included"].as_array().unwrap();
    assert_eq!(included.len(), 2, "{body}");
    assert_eq!(included[0]["type"], "customerReviewResponses");
    assert_eq!(included[0]["id"], "response-r1");
    // Only the fields asked for.
    assert_eq!(
        included[0]["attributes"],
        json!({"responseBody": "Thanks, bob!", "state": "PUBLISHED"})
    );
    assert_eq!(included[1]["attributes"]["state"], "PENDING_PUBLISH");
    assert!(included[0].get("relationships").is_none());

    // Every field, and `links.next` keeps `include` so later pages carry replies too.
    let (_, body) = get(&list("&include=response&limit=1"), Some(&token)).await;
    assert_eq!(
        body["included"][0]["attributes"]["lastModifiedDate"],
        support::asc::RESPONSE_DATE
    );
    assert_eq!(
        body["included"][0]["relationships"]["review"]["data"]["id"],
        "r1"
    );
    assert!(
        body["links"]["next"]
            .as_str()
            .unwrap()
            .contains("include=response"),
        "{body}"
    );

    // Apple's 400 for what it does not know.
    for (query, parameter) in [
        ("&include=customerReviews", "include"),
        ("&include=response,author", "include"),
        (
            "&fields%5BcustomerReviewResponses%5D=text",
            "fields[customerReviewResponses]",
        ),
        (
            "&fields%5BcustomerReviews%5D=rating,stars",
            "fields[customerReviews]",
        ),
        ("&expand=response", "expand"),
    ] {
        let (status, body) = get(&list(query), Some(&token)).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(error_code(&body), "PARAMETER_ERROR.INVALID", "{query}");
        assert_eq!(body["errors"][0]["source"]["parameter"], parameter);
    }
    let (_, body) = get(&list("&include=customerReviews"), Some(&token)).await;
    assert_eq!(
        body["errors"][0]["detail"],
        "The relationship 'customerReviews' cannot be included"
    );

    // The app lookup: `fields[apps]` cuts the attributes; unknown parameters are refused.
    asc.set_app_name("5", "Tally");
    let app = |query: &str| format!("{}/v1/apps/5{query}", asc.base_url());
    let (status, body) = get(&app("?fields%5Bapps%5D=name"), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["attributes"], json!({"name": "Tally"}));
    let (_, body) = get(&app(""), Some(&token)).await;
    assert_eq!(body["data"]["attributes"]["bundleId"], "com.example.app5");
    for query in ["?fields%5Bapps%5D=colour", "?sort=name"] {
        let (status, body) = get(&app(query), Some(&token)).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(error_code(&body), "PARAMETER_ERROR.INVALID");
    }
    assert_eq!(asc.app_lookups("5"), 4);
}

#[tokio::test]
async fn receiver_records_and_scripts_statuses() {
    let receiver = Receiver::start();
    receiver.respond_with(vec![200, 200, 500]);
    let client = http();
    let mut statuses = Vec::new();
    for i in 0..4 {
        let resp = client
            .post(receiver.url("hook-a"))
            .header("X-Custom", "yes")
            .json(&json!({"n": i}))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 500, 200]);
    let received = receiver.wait_for(4, Duration::from_secs(5)).await;
    assert_eq!(received[2].json, Some(json!({"n": 2})));
    assert_eq!(received[0].path, "/hook-a");
    assert_eq!(received[0].header("x-custom"), Some("yes"));
    assert!(received[0].headers.iter().any(|(k, _)| k == "content-type"));
    assert!(!received[2].accepted);
    assert_eq!(receiver.accepted().len(), 3);

    receiver.fail_from(6, 429);
    receiver.set_retry_after(Some("7"));
    let resp = client
        .post(receiver.url("b"))
        .body("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "5th still fine");
    let resp = client
        .post(receiver.url("b"))
        .body("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429, "6th fails");
    assert_eq!(resp.headers()["retry-after"], "7");
    let received = receiver.received();
    assert_eq!(received[4].body, "plain");
    assert_eq!(received[4].json, None);
    assert_eq!((received[5].status, received[5].accepted), (429, false));
    assert!(received[4].at <= received[5].at, "arrival times in order");

    receiver.set_error_body(Some("invalid_payload\nmore"));
    let resp = client.post(receiver.url("b")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.text().await.unwrap(), "invalid_payload\nmore");
}

#[tokio::test]
async fn runtime_api_round_trip_with_fake_client() {
    let api = RuntimeApi::start();
    let base = format!("http://{}/2018-06-01/runtime", api.address());

    // A minimal runtime client: next -> response, then next -> error.
    let client = tokio::spawn(async move {
        let http = http();
        let mut seen = Vec::new();
        for round in 0..2 {
            let resp = http
                .get(format!("{base}/invocation/next"))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .unwrap();
            let headers = resp.headers().clone();
            let id = headers["lambda-runtime-aws-request-id"]
                .to_str()
                .unwrap()
                .to_string();
            let deadline: i64 = headers["lambda-runtime-deadline-ms"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(headers["lambda-runtime-invoked-function-arn"], FUNCTION_ARN);
            assert!(
                headers["lambda-runtime-trace-id"]
                    .to_str()
                    .unwrap()
                    .starts_with("Root=1-")
            );
            let event: Value = resp.json().await.unwrap();
            seen.push((id.clone(), deadline, event.clone()));
            let (path, body) = if round == 0 {
                ("response", json!({"echo": event}))
            } else {
                ("error", json!({"errorType": "Boom", "errorMessage": "bad"}))
            };
            let status = http
                .post(format!("{base}/invocation/{id}/{path}"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status.as_u16(), 202);
        }
        seen
    });

    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let first = api
        .invoke(json!({"source": "aws.events"}), Duration::from_secs(30))
        .await;
    assert_eq!(
        first,
        Invocation::Ok(json!({"echo": {"source": "aws.events"}}))
    );
    let second = api.invoke(json!({}), Duration::from_secs(30)).await;
    assert_eq!(
        second,
        Invocation::Err(json!({"errorType": "Boom", "errorMessage": "bad"}))
    );

    let seen = client.await.expect("fake client");
    assert_ne!(seen[0].0, seen[1].0, "request ids differ");
    let deadline = seen[0].1;
    assert!(
        (now_ms + 29_000..=now_ms + 32_000).contains(&deadline),
        "deadline {deadline} ~ now + 30 s ({now_ms})"
    );

    // Unknown ids are refused; init errors are kept.
    let http = http();
    let status = http
        .post(format!(
            "http://{}/2018-06-01/runtime/invocation/nope/response",
            api.address()
        ))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 400);
    assert_eq!(api.init_error(), None);
    http.post(format!(
        "http://{}/2018-06-01/runtime/init/error",
        api.address()
    ))
    .json(&json!({"errorType": "Init", "errorMessage": "no secret"}))
    .send()
    .await
    .unwrap();
    assert_eq!(
        api.init_error(),
        Some(json!({"errorType": "Init", "errorMessage": "no secret"}))
    );
    assert!(matches!(
        api.invoke(json!({}), Duration::from_secs(1)).await,
        Invocation::Err(e) if e["errorType"] == "Init"
    ));
}

#[tokio::test]
async fn asc_takes_answers_as_apples_json_api_keeps_one_per_review_and_deletes_it() {
    let asc = AscDouble::start(AscConfig::team());
    asc.set_reviews(
        "1",
        vec![review(
            "r1",
            "2026-11-20T10:00:00-08:00",
            2,
            None,
            Some("Slow"),
            None,
            None,
        )],
    );
    let now = keys::now_secs();
    let token = token_with(
        json!({"iss": keys::ISSUER_ID, "iat": now, "exp": now + 600, "aud": "appstoreconnect-v1"}),
    );
    let post = |body: Value, token: Option<String>| {
        let mut request = http()
            .post(format!("{}/v1/customerReviewResponses", asc.base_url()))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let resp = request.send().await.expect("POST");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let create = |id: &str, text: &str| {
        json!({"data": {"type": "customerReviewResponses",
            "attributes": {"responseBody": text},
            "relationships": {"review": {"data": {"type": "customerReviews", "id": id}}}}})
    };
    let response_url = format!("{}/v1/customerReviews/r1/response", asc.base_url());

    let (status, _) = post(create("r1", "Hi"), None).await;
    assert_eq!(status, 401, "no token, no answer");
    assert_eq!(get(&response_url, Some(&token)).await.0, 404, "none yet");

    let (status, created) = post(create("r1", "Thanks"), Some(token.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"]["type"], "customerReviewResponses");
    assert_eq!(created["data"]["attributes"]["state"], "PENDING_PUBLISH");
    assert_eq!(created["data"]["attributes"]["responseBody"], "Thanks");
    let (status, again) = post(create("r1", "Thanks again"), Some(token.clone())).await;
    assert_eq!(status, 201);
    assert_ne!(
        again["data"]["id"], created["data"]["id"],
        "a new answer replaces the old"
    );
    let (status, current) = get(&response_url, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        current["data"]["attributes"]["responseBody"],
        "Thanks again"
    );
    assert_eq!(asc.answer_bodies().len(), 2, "bodies past the token check");

    // Not Apple's document: refused with 422, naming the problem; an unknown review is a 409.
    for (body, expected) in [
        (json!({"data": {"type": "other"}}), "data.type"),
        (
            json!({"data": {"type": "customerReviewResponses", "attributes": {"body": "x"},
                "relationships": {"review": {"data": {"type": "customerReviews", "id": "r1"}}}}}),
            "responseBody",
        ),
        (
            json!({"data": {"type": "customerReviewResponses", "attributes": {"responseBody": "x"}}}),
            "relationships.review",
        ),
    ] {
        let (status, refused) = post(body, Some(token.clone())).await;
        assert_eq!(status, 422, "{refused}");
        assert!(
            refused["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{refused}"
        );
    }
    let (status, conflict) = post(create("nope", "x"), Some(token.clone())).await;
    assert_eq!(status, 409);
    assert_eq!(error_code(&conflict), "ENTITY_ERROR.RELATIONSHIP.INVALID");

    // A canned refusal, once.
    asc.fail_answers_next(
        1,
        403,
        support::asc::error_body(403, "FORBIDDEN_ERROR", "Forbidden", "not allowed"),
    );
    assert_eq!(post(create("r1", "x"), Some(token.clone())).await.0, 403);

    let id = again["data"]["id"].as_str().unwrap();
    let delete = |id: String| {
        let request = http()
            .delete(format!(
                "{}/v1/customerReviewResponses/{id}",
                asc.base_url()
            ))
            .bearer_auth(&token);
        async move { request.send().await.expect("DELETE").status().as_u16() }
    };
    assert_eq!(delete(id.to_owned()).await, 204);
    assert_eq!(delete(id.to_owned()).await, 404, "gone");
    assert_eq!(get(&response_url, Some(&token)).await.0, 404);
    assert!(asc.response("1", "r1").is_none());
    assert_eq!(asc.answer_requests().len(), 13);
}
