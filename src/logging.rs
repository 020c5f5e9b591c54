//! Log lines as Lambda's JSON log format reads them.
//!
//! With `LogFormat: JSON` and an application log level, Lambda drops every line below the level
//! and reads a line's level from its `level` field, if the line also has an RFC 3339 `timestamp`;
//! any other line counts as INFO. So each line is one JSON object with an uppercase `level` and a
//! UTC `timestamp` to the millisecond. The metrics line is written beside the logger and carries
//! the same two fields (see [`crate::adapters::metrics`]).

use std::fmt;

use lambda_runtime::tracing::subscriber::filter::LevelFilter;
use lambda_runtime::tracing::subscriber::fmt::MakeWriter;
use lambda_runtime::tracing::subscriber::fmt::format::Writer;
use lambda_runtime::tracing::subscriber::fmt::time::FormatTime;
use lambda_runtime::tracing::subscriber::{self, EnvFilter};
use time::OffsetDateTime;
use time::macros::format_description;
use tracing::Subscriber;

/// This crate's log target (the library's and the binary's).
const OWN_TARGET: &str = "review_relay";

/// Where the logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Serving Lambda invocations: JSON lines on stdout, whatever `AWS_LAMBDA_LOG_FORMAT` says.
    Lambda,
    /// `review-relay invoke`: lines for a person on stderr (stdout holds the summary), JSON
    /// lines when `AWS_LAMBDA_LOG_FORMAT` is `JSON`.
    Cli,
}

/// Installs the logger for the process, its level from the environment (see [`directives`]).
pub fn init(output: Output) {
    let env = |name| std::env::var(name).ok();
    let directives = directives(
        env("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        env("RUST_LOG").as_deref(),
    );
    let json = output == Output::Lambda
        || env("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let logger = match output {
        Output::Lambda => logger(&directives, json, std::io::stdout),
        Output::Cli => logger(&directives, json, std::io::stderr),
    };
    // Only fails if a logger is already installed, and then that one logs.
    let _ = tracing::subscriber::set_global_default(logger);
}

/// The filter: this crate's lines at Lambda's `AWS_LAMBDA_LOG_LEVEL` (set from the template's
/// `LogLevel`), else at a bare level in `RUST_LOG`, else INFO; the Lambda runtime's at that level
/// but INFO at most; every other crate's (the AWS SDK, hyper, rustls) at WARN, so their debug
/// lines neither flood the log nor carry request bodies. `RUST_LOG`'s per-crate directives come last and win
/// (`RUST_LOG=aws_smithy_runtime=debug`).
pub fn directives(lambda_level: Option<&str>, rust_log: Option<&str>) -> String {
    let mut bare = None;
    let mut per_crate = Vec::new();
    let rust_log = rust_log.unwrap_or_default().split(',').map(str::trim);
    // An empty directive would parse as ERROR.
    for directive in rust_log.filter(|d| !d.is_empty()) {
        match level(directive) {
            Some(level) => bare = Some(level),
            None => per_crate.push(directive),
        }
    }
    let level = lambda_level
        .and_then(level)
        .or(bare)
        .unwrap_or(LevelFilter::INFO);
    // The runtime's INFO span names each invocation's request id on every line within it.
    let runtime = level.min(LevelFilter::INFO);
    let mut directives = format!("warn,lambda_runtime={runtime},{OWN_TARGET}={level}");
    for directive in per_crate {
        directives.push(',');
        directives.push_str(directive);
    }
    directives
}

/// A level as Lambda or `RUST_LOG` names it; Lambda's FATAL, which tracing lacks, is ERROR.
fn level(text: &str) -> Option<LevelFilter> {
    if text.is_empty() {
        return None;
    }
    if text.eq_ignore_ascii_case("fatal") {
        return Some(LevelFilter::ERROR);
    }
    text.parse().ok()
}

/// The logger over `directives`, writing JSON lines or lines for a person to `writer`.
pub fn logger<W>(directives: &str, json: bool, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = subscriber::fmt()
        .with_timer(Rfc3339Millis)
        .with_target(false)
        .with_env_filter(EnvFilter::builder().parse_lossy(directives))
        .with_writer(writer);
    if json {
        // `level` is tracing's name for it, uppercase: TRACE, DEBUG, INFO, WARN, ERROR.
        Box::new(builder.json().finish())
    } else {
        Box::new(builder.finish())
    }
}

/// Timestamps as Lambda reads them: `2026-12-03T20:41:00.123Z`.
struct Rfc3339Millis;

impl FormatTime for Rfc3339Millis {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        w.write_str(&timestamp(OffsetDateTime::now_utc()))
    }
}

/// `at` in RFC 3339, UTC, to the millisecond: `2026-12-03T20:41:00.123Z`.
pub fn timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        // Only a year past 9999 cannot be written.
        .unwrap_or_default()
}

/// [`timestamp`] of an instant in nanoseconds since the epoch.
pub fn timestamp_nanos(nanos: i128) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(timestamp)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io;
    use std::sync::{Arc, Mutex};
    use time::format_description::well_known::Rfc3339;
    use time::macros::datetime;
    use tracing::{debug, error, info, info_span, warn};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    /// What `emit` logs through the logger over `directives`.
    fn logged(directives: &str, json: bool, emit: impl FnOnce()) -> Vec<String> {
        let capture = Capture::default();
        let writer = capture.clone();
        let logger = logger(directives, json, move || writer.clone());
        tracing::subscriber::with_default(logger, emit);
        capture.lines()
    }

    fn emit_one_of_each() {
        let span = info_span!("app", app_id = "123");
        let _entered = span.enter();
        debug!(
            payload = "a \"quoted\" body\nwith a line break",
            "dry run: message"
        );
        info!(delivered = 3, "run finished");
        warn!("a warning");
        error!(cause = "the cause", "run finished with failures");
        info!(target: "aws_smithy_runtime::client", "an SDK detail");
        warn!(target: "hyper::proto", "an SDK warning");
    }

    #[test]
    fn every_line_is_json_with_an_uppercase_level_and_a_millisecond_utc_timestamp() {
        let lines = logged(&directives(Some("DEBUG"), None), true, emit_one_of_each);
        let parsed: Vec<Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        let levels: Vec<&str> = parsed
            .iter()
            .map(|l| l["level"].as_str().unwrap())
            .collect();
        // The SDK's INFO line is below WARN, the level of other crates.
        assert_eq!(levels, ["DEBUG", "INFO", "WARN", "ERROR", "WARN"]);
        for line in &parsed {
            let stamp = line["timestamp"].as_str().unwrap();
            assert_eq!(stamp.len(), "2026-12-03T20:41:00.123Z".len(), "{stamp}");
            assert!(
                stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
                "{stamp}"
            );
            OffsetDateTime::parse(stamp, &Rfc3339).unwrap();
        }
        assert_eq!(parsed[1]["fields"]["message"], "run finished");
        assert_eq!(parsed[1]["fields"]["delivered"], 3);
        assert_eq!(parsed[1]["span"]["app_id"], "123");
        assert_eq!(
            parsed[0]["fields"]["payload"],
            "a \"quoted\" body\nwith a line break"
        );
    }

    #[test]
    fn the_level_comes_from_lambda_then_rust_log_then_info() {
        assert_eq!(
            directives(None, None),
            "warn,lambda_runtime=info,review_relay=info"
        );
        assert_eq!(
            directives(Some("DEBUG"), None),
            "warn,lambda_runtime=info,review_relay=debug"
        );
        assert_eq!(
            directives(Some("INFO"), Some("debug")),
            "warn,lambda_runtime=info,review_relay=info"
        );
        assert_eq!(
            directives(None, Some("debug")),
            "warn,lambda_runtime=info,review_relay=debug"
        );
        assert_eq!(
            directives(Some("FATAL"), Some("hyper=info, review_relay::relay=trace")),
            "warn,lambda_runtime=error,review_relay=error,hyper=info,review_relay::relay=trace"
        );
        assert_eq!(
            directives(Some("loud"), None),
            "warn,lambda_runtime=info,review_relay=info"
        );
        assert_eq!(
            directives(Some(""), Some("")),
            "warn,lambda_runtime=info,review_relay=info"
        );

        let at_info = logged(&directives(Some("INFO"), None), true, emit_one_of_each);
        assert_eq!(at_info.len(), 4, "{at_info:?}");
        assert!(!at_info.iter().any(|l| l.contains("dry run: message")));
        let at_error = logged(&directives(Some("ERROR"), None), true, emit_one_of_each);
        // Other crates stay at WARN: a lower level for this crate does not quiet them.
        assert_eq!(at_error.len(), 2, "{at_error:?}");
    }

    #[test]
    fn lines_for_a_person_carry_the_same_timestamp() {
        let lines = logged(&directives(None, None), false, || info!("run finished"));
        assert_eq!(lines.len(), 1, "{lines:?}");
        let (stamp, rest) = lines[0].split_once(' ').unwrap();
        OffsetDateTime::parse(stamp, &Rfc3339).unwrap();
        assert!(rest.trim_start().starts_with("INFO run finished"), "{rest}");
    }

    #[test]
    fn timestamps_are_utc_to_the_millisecond() {
        assert_eq!(
            timestamp(datetime!(2026-12-03 21:41:00.123_987 +01:00)),
            "2026-12-03T20:41:00.123Z"
        );
        assert_eq!(
            timestamp_nanos(1_000_000_000_000_000_000),
            "2001-09-09T01:46:40.000Z"
        );
    }
}
