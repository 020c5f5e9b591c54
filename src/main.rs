use std::process::ExitCode;

use lambda_runtime::{service_fn, tracing};
use review_relay::config::{Config, Mode};
use review_relay::handler::Relay;
use review_relay::logging::{self, Output};
use review_relay::reply::cli as reply;

const USAGE: &str = "usage:
  review-relay                      serve Lambda invocations (when AWS_LAMBDA_RUNTIME_API is set)
  review-relay invoke [--deadline SECONDS] EVENT.json
                                    run once on that event: summary on stdout, logs on stderr;
                                    it stops starting work SECONDS after it starts (default 840,
                                    under the 15 minutes a Lambda run and its lease last)
  review-relay preview --format F [--interactive] [REVIEW.json]
                                    print the message a review becomes (F: slack, discord, teams,
                                    googlechat, json; --interactive: with Slack's Reply button);
                                    no AWS, no network
  review-relay reply --app APP_ID REVIEW_ID (--text TEXT | --text-file FILE | --delete | --show)
                                    answer a review in its store (App Store: at most 5,970
                                    characters, --delete removes the answer; Google Play: at most
                                    350, no --delete), or --show the answer it holds; prints what
                                    the store answered as JSON; exit 1 refused or failed";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            logging::init(Output::Lambda);
            serve().await
        }
        [command, rest @ ..] if command == "invoke" => {
            let Some((event, deadline)) = invoke_args(rest) else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            logging::init(Output::Cli);
            invoke(event, deadline).await
        }
        [command, rest @ ..] if command == "preview" => review_relay::preview::main(rest),
        [command, rest @ ..] if command == "reply" => {
            let args = match reply::parse(rest) {
                Ok(args) => args,
                Err(wrong) => {
                    eprintln!("{wrong}\n{USAGE}");
                    return ExitCode::from(2);
                }
            };
            logging::init(Output::Cli);
            let Some(relay) = relay().await else {
                return ExitCode::FAILURE;
            };
            reply::run(&relay, &args).await
        }
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
        .inspect_err(|e| tracing::error!("{e}"))
        .ok()
}

async fn serve() -> ExitCode {
    let Some(relay) = relay().await else {
        return ExitCode::FAILURE;
    };
    let relay = &relay;
    let served = match relay.mode() {
        Mode::Schedule => {
            lambda_runtime::run(service_fn(move |event| relay.handle_lambda(event))).await
        }
        Mode::SlackInteractions => {
            lambda_runtime::run(service_fn(move |event| relay.handle_slack(event))).await
        }
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("Lambda runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The default `--deadline`: under Lambda's 15 minutes, so a local run's leases (its deadline
/// plus a few seconds) lapse like a Lambda run's, and a run started by hand against the deployed
/// table never outlasts its lease while the scheduled function waits.
const INVOKE_DEADLINE_SECONDS: u64 = 840;
/// A run by hand may take longer than a Lambda run; its leases last as long.
const INVOKE_DEADLINE_MAX_SECONDS: u64 = 6 * 3_600;

/// `[--deadline SECONDS] EVENT.json`, in either order.
fn invoke_args(args: &[String]) -> Option<(&str, u64)> {
    let mut event = None;
    let mut deadline = INVOKE_DEADLINE_SECONDS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--deadline" {
            deadline = args
                .next()?
                .parse()
                .ok()
                .filter(|s| (1..=INVOKE_DEADLINE_MAX_SECONDS).contains(s))
                .or_else(|| {
                    eprintln!(
                        "--deadline takes a whole number of seconds from 1 to {INVOKE_DEADLINE_MAX_SECONDS}"
                    );
                    None
                })?;
        } else if event.is_none() && !arg.starts_with("--") {
            event = Some(arg.as_str());
        } else {
            return None;
        }
    }
    Some((event?, deadline))
}

async fn invoke(path: &str, deadline_seconds: u64) -> ExitCode {
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
    let deadline_ms = review_relay::handler::unix_ms() + (deadline_seconds * 1_000) as i64;
    let Ok(summary) = relay.handle(&event, deadline_ms, holder).await else {
        // Refused, and logged with the reason.
        return ExitCode::FAILURE;
    };
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
