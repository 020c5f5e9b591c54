//! Answering a review: the use case behind the `reply` command and the manual `reply` event.
//! What can be refused is refused before any request; every answer sent is one audit line.

pub mod cli;

use serde::Serialize;
use tracing::{info, warn};

use crate::domain::{AnswerText, AppId, Store, text_digest};
use crate::ports::{AnswerError, NotedAnswer, PostedAnswer, ReviewAnswers, StateStore};

/// What to do about a review's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Publish this text, replacing any earlier answer.
    Answer(AnswerText),
    /// Remove the answer (App Store only).
    Delete,
    /// Read the answer as the store holds it.
    Show,
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Answer(_) => "answered",
            Action::Delete => "deleted",
            Action::Show => "shown",
        }
    }
}

/// One review's answer to change or read, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRequest {
    pub app: AppId,
    pub review_id: String,
    pub action: Action,
}

/// What a caller asks before it is checked: the text as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawAction {
    Answer(String),
    Delete,
    Show,
}

/// A request that is not sent: the caller's mistake, named. Nothing was sent or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReplyRefused(pub String);

/// Review ids are short in both stores; anything longer is not one.
const MAX_REVIEW_ID_LEN: usize = 200;

impl ReplyRequest {
    /// Checks what can be checked without the store: `app` is one of `relayed` (its store is
    /// known from it), the review id, and the text against the store's limit.
    pub fn new(
        app: &str,
        review_id: &str,
        action: RawAction,
        relayed: &[AppId],
    ) -> Result<Self, ReplyRefused> {
        let app = AppId::parse_any(app).map_err(|e| ReplyRefused(format!("app id: {e}")))?;
        if !relayed.contains(&app) {
            return Err(ReplyRefused(format!(
                "app {app} is not relayed by this deployment: it is not in {}",
                match app.store() {
                    Store::AppStore => "APP_IDS",
                    Store::GooglePlay => "PLAY_PACKAGES",
                }
            )));
        }
        let review_id = review_id.trim();
        if review_id.is_empty()
            || review_id.len() > MAX_REVIEW_ID_LEN
            || review_id.chars().any(char::is_control)
        {
            return Err(ReplyRefused(
                "the review id is empty or not one a store gives: copy it from the review's message (its `id`)".into(),
            ));
        }
        let action = match action {
            RawAction::Answer(text) => Action::Answer(
                AnswerText::parse(app.store(), &text).map_err(|e| ReplyRefused(e.to_string()))?,
            ),
            RawAction::Delete if app.store() == Store::GooglePlay => {
                return Err(ReplyRefused(AnswerError::PlayCannotDelete.to_string()));
            }
            RawAction::Delete => Action::Delete,
            RawAction::Show => Action::Show,
        };
        Ok(Self {
            app,
            review_id: review_id.to_owned(),
            action,
        })
    }
}

/// What was done, as the command prints it and the event answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplySummary {
    pub app_id: String,
    pub store: &'static str,
    pub review_id: String,
    /// `answered`, `deleted` or `shown`.
    pub action: &'static str,
    /// What the store answered: the answer sent, the one deleted, or the one it holds (`null`
    /// when there is none).
    pub answer: Option<PostedAnswer>,
    /// Why it failed; absent when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ReplySummary {
    /// Nothing was done, for `reason`.
    pub fn failed(request: &ReplyRequest, reason: String) -> Self {
        Self {
            app_id: request.app.to_string(),
            store: request.app.store().code(),
            review_id: request.review_id.clone(),
            action: request.action.name(),
            answer: None,
            error: Some(reason),
        }
    }

    pub fn failure_message(&self) -> Option<String> {
        self.error.clone()
    }
}

/// When the answer is noted, and how long the note is kept (as long as delivery records).
#[derive(Debug, Clone, Copy)]
pub struct ReplyOptions {
    pub now_nanos: i128,
    pub keep_until_secs: i64,
}

/// Who asked, when someone in Slack did: their user id and workspace, for the audit line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlackUser {
    pub user_id: String,
    pub team_id: String,
}

/// Does what `request` asks in the review's store, through `answers` (the store's adapter), and
/// notes an answer sent or deleted on the review's item in `state`.
pub async fn reply(
    answers: &dyn ReviewAnswers,
    state: &dyn StateStore,
    request: &ReplyRequest,
    options: ReplyOptions,
) -> ReplySummary {
    reply_for(answers, state, request, options, None).await
}

/// [`reply`], asked by `by` in Slack: the audit line names them.
pub async fn reply_for(
    answers: &dyn ReviewAnswers,
    state: &dyn StateStore,
    request: &ReplyRequest,
    options: ReplyOptions,
    by: Option<&SlackUser>,
) -> ReplySummary {
    let ReplyRequest {
        app,
        review_id,
        action,
    } = request;
    let mut summary = ReplySummary {
        app_id: app.to_string(),
        store: app.store().code(),
        review_id: review_id.clone(),
        action: action.name(),
        answer: None,
        error: None,
    };
    let done = match action {
        Action::Answer(text) => answers.answer(app, review_id, text).await.map(Some),
        Action::Delete => answers.delete(app, review_id).await.map(Some),
        Action::Show => answers.current(app, review_id).await,
    };
    let answer = match done {
        Ok(answer) => answer,
        Err(err) => {
            summary.error = Some(err.to_string());
            return summary;
        }
    };
    let noted = match (action, &answer) {
        (Action::Answer(text), Some(posted)) => {
            audit(app, review_id, "review answered", posted, text.as_str(), by);
            Some(Some(NotedAnswer {
                // What the store keeps (Google strips HTML), or the text sent if it says nothing.
                text: if posted.text.is_empty() {
                    text.as_str().to_owned()
                } else {
                    posted.text.clone()
                },
                digest: text.digest(),
                answered_nanos: options.now_nanos,
            }))
        }
        (Action::Delete, Some(removed)) => {
            audit(app, review_id, "answer deleted", removed, &removed.text, by);
            Some(None)
        }
        _ => None,
    };
    if let Some(note) = noted
        && let Err(err) = state
            .note_answer(app, review_id, note.as_ref(), options.keep_until_secs)
            .await
    {
        // The store has the answer; only a later message about the review will miss it.
        warn!(app_id = %app, review_id = %review_id, error = %err, "could not note the answer in the table");
    }
    summary.answer = answer;
    summary
}

/// The audit line: who answered what, never the text itself.
fn audit(
    app: &AppId,
    review_id: &str,
    message: &str,
    posted: &PostedAnswer,
    text: &str,
    by: Option<&SlackUser>,
) {
    info!(
        slack_user_id = by.map_or("", |u| u.user_id.as_str()),
        slack_team_id = by.map_or("", |u| u.team_id.as_str()),
        audit = true,
        app_id = %app,
        store = app.store().code(),
        review_id,
        answer_id = posted.id.as_deref().unwrap_or(""),
        last_edited = posted.last_modified.as_deref().unwrap_or(""),
        state = posted.state.as_deref().unwrap_or(""),
        length = text.chars().count(),
        digest = %text_digest(text),
        "{message}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relayed() -> Vec<AppId> {
        vec![
            AppId::parse("1").unwrap(),
            AppId::play("com.example.app").unwrap(),
        ]
    }

    fn refusal(app: &str, review: &str, action: RawAction) -> String {
        ReplyRequest::new(app, review, action, &relayed())
            .unwrap_err()
            .0
    }

    #[test]
    fn a_request_is_checked_before_anything_is_sent() {
        let ok = ReplyRequest::new(
            "1",
            " r1 ",
            RawAction::Answer(" Thanks ".into()),
            &relayed(),
        )
        .unwrap();
        assert_eq!(ok.review_id, "r1");
        assert!(matches!(&ok.action, Action::Answer(t) if t.as_str() == "Thanks"));
        assert!(
            refusal("2", "r", RawAction::Show)
                .contains("app 2 is not relayed by this deployment: it is not in APP_IDS")
        );
        assert!(refusal("com.other.app", "r", RawAction::Show).contains("not in PLAY_PACKAGES"));
        assert!(refusal("1", "r", RawAction::Answer("  ".into())).contains("the answer is empty"));
        assert!(
            refusal("com.example.app", "r", RawAction::Answer("x".repeat(351)))
                .contains("Google Play takes at most 350")
        );
        assert!(refusal("com.example.app", "r", RawAction::Delete).contains("no way to delete"));
        assert!(refusal("1", " ", RawAction::Show).contains("review id"));
        assert!(refusal("app", "r", RawAction::Show).contains("app id"));
    }
}
