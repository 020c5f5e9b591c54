//! The HTTPS client, directly and as the AWS SDK's, against a real HTTPS server on 127.0.0.1 whose certificate a test CA issued:
//! trusted with that CA as an extra root (as `EXTRA_CA_CERTS` gives it), refused at TLS without.

mod support;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::config::{Credentials, Region};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use review_relay::adapters::aws_http::sdk_http_client;
use review_relay::adapters::trust::TrustRoots;
use review_relay::adapters::{describe_http_error, http_client};
use support::https::{self, HttpsServer};

fn with_test_ca() -> TrustRoots {
    TrustRoots::load(Some(&https::fixtures().join("ca.pem"))).unwrap()
}

/// Mozilla's roots alone, as without `EXTRA_CA_CERTS`.
fn without_test_ca() -> TrustRoots {
    TrustRoots::load(None).unwrap()
}

#[tokio::test]
async fn reqwest_trusts_an_extra_ca() {
    let server = HttpsServer::start();
    let response = http_client(&with_test_ca())
        .unwrap()
        .get(format!("{}/hello", server.url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_http_error(e)));
    assert_eq!(response.status().as_u16(), https::STATUS);
    assert_eq!(response.text().await.unwrap(), https::BODY);
}

#[tokio::test]
async fn reqwest_refuses_a_certificate_from_an_unknown_ca() {
    let server = HttpsServer::start();
    let err = http_client(&without_test_ca())
        .unwrap()
        .get(format!("{}/hello", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let text = describe_http_error(err);
    assert!(
        text.contains("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
}

/// A Secrets Manager client over the HTTPS client that `roots` builds, at the server.
async fn secrets_manager(
    roots: &TrustRoots,
    server: &HttpsServer,
) -> aws_sdk_secretsmanager::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(sdk_http_client(http_client(roots).unwrap()))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(server.url())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

/// The test server answers every request with an error, so a call always fails; how it fails
/// says whether TLS let it through.
async fn get_secret(
    client: &aws_sdk_secretsmanager::Client,
) -> SdkError<GetSecretValueError, HttpResponse> {
    client
        .get_secret_value()
        .secret_id("s")
        .send()
        .await
        .unwrap_err()
}

#[tokio::test]
async fn the_aws_sdk_trusts_an_extra_ca() {
    let server = HttpsServer::start();
    let err = get_secret(&secrets_manager(&with_test_ca(), &server).await).await;
    // Through TLS and HTTP: the server's answer, parsed.
    match &err {
        SdkError::ServiceError(service) => {
            assert!(
                service.err().is_resource_not_found_exception(),
                "{}",
                DisplayErrorContext(&err)
            );
        }
        _ => panic!(
            "expected the server's error, got {}",
            DisplayErrorContext(&err)
        ),
    }
}

#[tokio::test]
async fn the_aws_sdk_refuses_a_certificate_from_an_unknown_ca() {
    let server = HttpsServer::start();
    let err = get_secret(&secrets_manager(&without_test_ca(), &server).await).await;
    let text = DisplayErrorContext(&err).to_string();
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{text}");
    assert!(
        text.contains("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
}
