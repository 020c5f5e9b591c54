//! `review-relay preview`: the exact message a review becomes, printed instead of sent. Reads
//! nothing from the environment, the network or AWS.

use std::process::ExitCode;

use serde_json::Value;

use crate::adapters::appstore::model::Resource;
use crate::adapters::webhooks::{ReviewCard, payload_for};
use crate::config::WebhookFormat;
use crate::domain::{AppId, Review};

pub const USAGE: &str = "review-relay preview --format slack|discord|teams|googlechat|json [--app APP_ID] [--interactive] [REVIEW.json]";

/// A review like those App Store Connect sends, for a preview without a file.
const SAMPLE: &str = include_str!("../tests/fixtures/reviews/sample.json");
const SAMPLE_APP: &str = "1234567890";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PreviewError {
    /// The command line is wrong.
    #[error("{0} (usage: {USAGE})")]
    Usage(String),
    /// The review file is wrong.
    #[error("{0}")]
    Input(String),
}

impl PreviewError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Input(_) => 1,
        }
    }
}

/// Sent with a signed `json` message, and not part of its body.
const SIGNATURE_NOTE: &str = "review-relay preview: the body only; a destination with a signing secret also gets X-Review-Relay-Timestamp and X-Review-Relay-Signature headers";

/// Runs the command: the payload on stdout as pretty JSON, or one line on stderr.
pub fn main(args: &[String]) -> ExitCode {
    match run(args) {
        Ok((format, json)) => {
            println!("{json}");
            if format == WebhookFormat::Json {
                eprintln!("{SIGNATURE_NOTE}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("review-relay preview: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The pretty JSON that `args` (what follows `preview`) ask for.
pub fn preview(args: &[String]) -> Result<String, PreviewError> {
    run(args).map(|(_, json)| json)
}

fn run(args: &[String]) -> Result<(WebhookFormat, String), PreviewError> {
    let request = Request::parse(args)?;
    let (text, source) = match &request.file {
        None => (SAMPLE.to_owned(), "the built-in sample".to_owned()),
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| PreviewError::Input(format!("cannot read `{path}`: {e}")))?,
            format!("`{path}`"),
        ),
    };
    let review = parse_review(&text).map_err(|e| PreviewError::Input(format!("{source} {e}")))?;
    let mut card = ReviewCard::new(&request.app, &review);
    if request.interactive {
        card = card.with_reply_button();
    }
    let message = payload_for(request.format, &card);
    let json = serde_json::to_string_pretty(&message)
        .map_err(|e| PreviewError::Input(format!("the message could not be serialised ({e})")))?;
    Ok((request.format, json))
}

struct Request {
    format: WebhookFormat,
    app: AppId,
    /// The message as a destination marked `interactive` sends it: with a Reply button.
    interactive: bool,
    file: Option<String>,
}

impl Request {
    fn parse(args: &[String]) -> Result<Self, PreviewError> {
        let usage = |message: String| PreviewError::Usage(message);
        let mut format = None;
        let mut app = None;
        let mut interactive = false;
        let mut file = None;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next().cloned())
                    .ok_or_else(|| usage(format!("`{name}` needs a value")))
            };
            match flag {
                "--format" => {
                    let raw = value("--format")?;
                    format = Some(WebhookFormat::parse(&raw).ok_or_else(|| {
                        usage(format!(
                            "unknown format `{raw}`; use {}",
                            WebhookFormat::CHOICES
                        ))
                    })?);
                }
                "--app" => {
                    let raw = value("--app")?;
                    app = Some(AppId::parse(&raw).map_err(|e| usage(format!("`--app`: {e}")))?);
                }
                "--interactive" => {
                    if inline.is_some() {
                        return Err(usage("`--interactive` takes no value".to_owned()));
                    }
                    interactive = true;
                }
                flag if flag.starts_with('-') && flag != "-" => {
                    return Err(usage(format!("unknown option `{flag}`")));
                }
                _ if file.is_some() => {
                    return Err(usage(format!("one review file at most; `{arg}` is extra")));
                }
                _ => file = Some(arg.clone()),
            }
        }
        let format = format.ok_or_else(|| usage("`--format` is required".to_owned()))?;
        if interactive && format != WebhookFormat::Slack {
            return Err(usage(
                "`--interactive` shows the Reply button of a Slack destination; use it with `--format slack`"
                    .to_owned(),
            ));
        }
        let app = match app {
            Some(app) => app,
            None => AppId::parse(SAMPLE_APP)
                .map_err(|e| usage(format!("the sample app id is invalid: {e}")))?,
        };
        Ok(Self {
            format,
            app,
            interactive,
            file,
        })
    }
}

/// One `customerReviews` resource as App Store Connect returns it, alone or as the `data` of a
/// document, read with the App Store adapter's own model.
pub fn parse_review(text: &str) -> Result<Review, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("is not JSON ({e})"))?;
    let resource = match value {
        Value::Object(mut document) if document.contains_key("data") => {
            match document.remove("data") {
                Some(Value::Array(mut list)) if list.len() == 1 => list.remove(0),
                Some(Value::Array(list)) => {
                    return Err(format!(
                        "holds {} reviews in `data`; keep the one to preview",
                        list.len()
                    ));
                }
                Some(resource) => resource,
                None => Value::Null,
            }
        }
        other => other,
    };
    match resource.get("type").and_then(Value::as_str) {
        Some("customerReviews") | None => {}
        Some(other) => {
            return Err(format!("holds a `{other}` resource, not `customerReviews`"));
        }
    }
    let resource: Resource = serde_json::from_value(resource).map_err(|e| {
        format!("is not a customerReviews resource like {{\"type\": \"customerReviews\", \"id\": …, \"attributes\": {{…}}}} ({e})")
    })?;
    resource.into_review().map_err(|e| format!("holds a {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_sample_parses() {
        let review = parse_review(SAMPLE).unwrap();
        assert_eq!(review.rating, Some(4));
        assert_eq!(review.territory.as_deref(), Some("GBR"));
    }

    #[test]
    fn a_document_or_a_bare_resource_both_work() {
        let resource: Value = serde_json::from_str(SAMPLE).unwrap();
        let document = serde_json::json!({"data": resource, "links": {"self": "x"}});
        let page = serde_json::json!({"data": [resource]});
        for text in [document.to_string(), page.to_string()] {
            assert_eq!(parse_review(&text).unwrap(), parse_review(SAMPLE).unwrap());
        }
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let cases = [
            ("{", "is not JSON"),
            (r#"{"type": "apps", "id": "1"}"#, "`apps` resource"),
            (r#"{"data": []}"#, "holds 0 reviews"),
            (
                r#"{"type": "customerReviews"}"#,
                "not a customerReviews resource",
            ),
            (
                r#"{"type": "customerReviews", "id": "r", "attributes": {}}"#,
                "review r has no createdDate",
            ),
            (
                r#"{"id": "r", "attributes": {"createdDate": "yesterday"}}"#,
                "not an RFC 3339 date-time",
            ),
        ];
        for (text, expected) in cases {
            let message = parse_review(text).unwrap_err();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }

    #[test]
    fn usage_errors_are_exit_code_2() {
        for (list, expected) in [
            (&[][..], "`--format` is required"),
            (&["--format", "irc"][..], "unknown format `irc`"),
            (&["--format"][..], "`--format` needs a value"),
            (
                &["--format=json", "--verbose"][..],
                "unknown option `--verbose`",
            ),
            (
                &["--format=json", "a.json", "b.json"][..],
                "`b.json` is extra",
            ),
            (&["--format=json", "--app", "x"][..], "`--app`"),
            (
                &["--format=discord", "--interactive"][..],
                "use it with `--format slack`",
            ),
            (
                &["--format=slack", "--interactive=yes"][..],
                "`--interactive` takes no value",
            ),
        ] {
            let err = preview(&args(list)).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        }
        let err = preview(&args(&["--format", "json", "/nonexistent/review.json"])).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(
            err.to_string()
                .starts_with("cannot read `/nonexistent/review.json`")
        );
    }

    #[test]
    fn an_interactive_slack_preview_ends_with_the_reply_button() {
        let plain: Value =
            serde_json::from_str(&preview(&args(&["--format=slack", "--app=42"])).unwrap())
                .unwrap();
        let out = preview(&args(&["--interactive", "--format", "slack", "--app=42"])).unwrap();
        let value: Value = serde_json::from_str(&out).unwrap();
        let blocks = value["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), plain["blocks"].as_array().unwrap().len() + 1);
        let button = &blocks.last().unwrap()["elements"][0];
        assert_eq!(button["action_id"], "reply");
        assert_eq!(
            button["value"],
            "app_store:42:00000000-0000-0000-0000-000000000001"
        );
    }

    #[test]
    fn the_json_preview_is_the_body_that_would_be_sent() {
        let out = preview(&args(&["--format=json", "--app=42"])).unwrap();
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["reviews"][0]["app_id"], "42");
        assert_eq!(
            value["reviews"][0]["id"],
            "00000000-0000-0000-0000-000000000001"
        );
    }
}
