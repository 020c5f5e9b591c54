//! `review-relay reply`: its command line, and the run that prints what the store answered.

use std::process::ExitCode;

use crate::handler::Relay;

use super::RawAction;

pub const USAGE: &str = "review-relay reply --app APP_ID REVIEW_ID (--text TEXT | --text-file FILE | --delete | --show)";

/// The command line, read but not yet checked against the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyArgs {
    pub app: String,
    pub review_id: String,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Text(String),
    TextFile(String),
    Delete,
    Show,
}

/// `--app APP_ID REVIEW_ID` and exactly one of `--text`, `--text-file`, `--delete`, `--show`,
/// in any order; `Err` says what is wrong with the command line.
pub fn parse(args: &[String]) -> Result<ReplyArgs, String> {
    let mut app = None;
    let mut review_id = None;
    let mut what = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let chosen = match arg.as_str() {
            "--app" if app.is_none() => {
                app = Some(value("--app")?);
                continue;
            }
            "--text" => What::Text(value("--text")?),
            "--text-file" => What::TextFile(value("--text-file")?),
            "--delete" => What::Delete,
            "--show" => What::Show,
            other if !other.starts_with("--") && review_id.is_none() => {
                review_id = Some(other.to_owned());
                continue;
            }
            other => return Err(format!("`{other}` is not expected here")),
        };
        if what.replace(chosen).is_some() {
            return Err("give one of --text, --text-file, --delete and --show, not several".into());
        }
    }
    Ok(ReplyArgs {
        app: app.ok_or("--app APP_ID is missing")?,
        review_id: review_id.ok_or("the review id is missing")?,
        what: what.ok_or("give one of --text, --text-file, --delete or --show")?,
    })
}

/// Reads the answer's text from `--text-file` if given; `Err` is the reason in words.
pub fn raw_action(what: &What) -> Result<RawAction, String> {
    Ok(match what {
        What::Text(text) => RawAction::Answer(text.clone()),
        What::TextFile(path) => RawAction::Answer(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the answer from `{path}`: {e}"))?,
        ),
        What::Delete => RawAction::Delete,
        What::Show => RawAction::Show,
    })
}

/// Checks the request against the deployment, does it, prints the summary as JSON on stdout.
/// 0 when done; 1 when refused or failed, the reason logged on stderr.
pub async fn run(relay: &Relay, args: &ReplyArgs) -> ExitCode {
    let request = raw_action(&args.what)
        .and_then(|action| {
            relay
                .reply_request(&args.app, &args.review_id, action)
                .map_err(|refused| refused.to_string())
        })
        .inspect_err(|reason| tracing::error!("{reason}; nothing was sent or written"));
    let Ok(request) = request else {
        return ExitCode::FAILURE;
    };
    let summary = relay.reply(&request).await;
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    match summary.failure_message() {
        None => ExitCode::SUCCESS,
        Some(reason) => {
            tracing::error!("{reason}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(raw: &[&str]) -> Result<ReplyArgs, String> {
        parse(&raw.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn reads_the_app_the_review_and_one_action_in_any_order() {
        assert_eq!(
            args(&["--app", "1", "r1", "--text", "Thanks"]),
            Ok(ReplyArgs {
                app: "1".into(),
                review_id: "r1".into(),
                what: What::Text("Thanks".into()),
            })
        );
        assert_eq!(
            args(&["--show", "r1", "--app", "1"]).unwrap().what,
            What::Show
        );
        assert_eq!(
            args(&["--app", "1", "r1", "--text-file", "a.txt"])
                .unwrap()
                .what,
            What::TextFile("a.txt".into())
        );
    }

    #[test]
    fn a_wrong_command_line_says_what_is_wrong() {
        for (raw, expected) in [
            (&["--app", "1", "r1"][..], "give one of"),
            (
                &["--app", "1", "r1", "--text", "a", "--delete"][..],
                "not several",
            ),
            (&["r1", "--show"][..], "--app APP_ID is missing"),
            (&["--app", "1", "--show"][..], "review id is missing"),
            (
                &["--app", "1", "r1", "r2", "--show"][..],
                "`r2` is not expected",
            ),
            (&["--app", "1", "r1", "--text"][..], "--text needs a value"),
            (
                &["--app", "1", "r1", "--force"][..],
                "`--force` is not expected",
            ),
        ] {
            let err = args(raw).unwrap_err();
            assert!(err.contains(expected), "{raw:?}: {err}");
        }
    }
}
