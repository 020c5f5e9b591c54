use std::process::ExitCode;

use lambda_runtime::{service_fn, tracing};
use review_relay::config::Config;
use review_relay::handler::Relay;

const USAGE: &str = "usage:
  review-relay                      serve Lambda invocations (when AWS_LAMBDA_RUNTIME_API is set)
  review-relay invoke EVENT.json    run once on that event: summary on stdout, logs on stderr
  review-relay preview --format F [REVIEW.json]
                                    print the message a review becomes (F: slack, discord, teams,
                                    googlechat, json); no AWS, no network";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            tracing::init_default_subscriber();
            serve().await
        }
        [command, event] if command == "invoke" => {
            tracing::init_default_subscriber_with_writer(std::io::stderr);
            invoke(event).await
        }
        [command, rest @ ..] if command == "preview" => review_relay::preview::main(rest),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn relay() -> Option<Relay> {
    let config = Config::from_env()
        .inspect_err(|e| tracing::error!("configuration error: {e}"))
        .ok()?;
    Relay::new(config)
        .await
        .inspect_err(|e| tracing::error!("cannot build the HTTP client: {e}"))
        .ok()
}

async fn serve() -> ExitCode {
    let Some(relay) = relay().await else {
        return ExitCode::FAILURE;
    };
    let relay = &relay;
    match lambda_runtime::run(service_fn(move |event| relay.handle_lambda(event))).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("Lambda runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn invoke(path: &str) -> ExitCode {
    let event = match std::fs::read_to_string(path).map(|text| serde_json::from_str(&text)) {
        Ok(Ok(event)) => event,
        Ok(Err(e)) => {
            tracing::error!("event file `{path}` is not JSON: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            tracing::error!("cannot read event file `{path}`: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(relay) = relay().await else {
        return ExitCode::FAILURE;
    };
    let holder = format!(
        "invoke-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let summary = relay.handle(&event, None, holder).await;
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    if summary.failure_message().is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
