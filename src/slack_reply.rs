//! Answering a review from Slack: the Reply button's endpoint (a Function URL that Slack signs
//! every request to) and the work it hands to a later invocation of itself.
//!
//! A click opens the modal at once and hands the store's current answer to a job that fills it
//! in; a submission is checked, handed to a job, and answered within Slack's 3 seconds; the job
//! sends the answer to the store and shows the outcome under the review in the message clicked.
//! Every refusal is logged with its cause and answered so the person sees it; none reaches a store.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::adapters::slack::answered::{answered_line, not_sent_line, with_answer_line};
use crate::adapters::slack::modal::{
    Carried, modal, new_message_key, quote_from_message, sent_notice,
};
use crate::adapters::slack::request::{
    Allowed, ButtonValue, FunctionUrlRequest, InteractionKind, Refused, ResponseUrls,
    parse_interaction, raw_body, verify,
};
use crate::adapters::webhooks::format_of;
use crate::adapters::webhooks::slack::escape;
use crate::config::WebhookFormat;
use crate::domain::{AnswerText, AppId, Store};
use crate::ports::{Jobs, KeptMessages, ReviewAnswers, SlackViews, StateStore};
use crate::relay::test_message::SAMPLE_REVIEW_PREFIX;
use crate::reply::{RawAction, ReplyOptions, ReplyRequest, SlackUser, reply_for};
use crate::secret::SlackApp;

/// A click's `response_url` lasts 30 minutes; an answer sent later cannot update the message.
pub const RESPONSE_URL_SECONDS: i64 = 30 * 60;
/// A submission this close to that end is told the message may not show the answer.
const RESPONSE_URL_MARGIN_SECONDS: i64 = 60;
/// A clicked message bigger than this is not kept (DynamoDB items hold 400 KB); the outcome is
/// then shown to the person alone.
const KEPT_MESSAGE_MAX_BYTES: usize = 350 * 1024;

/// Work handed to a later invocation of the same function: `{"slack_job": …}`. Only an
/// invocation signed by AWS credentials can carry it; a Function URL request never can (its
/// event is the request, with the body inside). Still, everything in it is checked again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// Fill the opened modal in with the answer the store holds, if any.
    Fill {
        view_id: String,
        view: Value,
        review: String,
    },
    /// Send the answer, then show the outcome in the message clicked.
    Answer {
        review: String,
        text: String,
        user_id: String,
        team_id: String,
        #[serde(default)]
        response_url: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
}

impl Job {
    pub fn event(&self) -> Value {
        json!({ JOB_FIELD: self })
    }

    /// The job an event carries, if it is one.
    pub fn from_event(event: &Value) -> Option<Result<Job, String>> {
        let job = event.get(JOB_FIELD)?;
        Some(serde_json::from_value(job.clone()).map_err(|e| format!("not a job ({e})")))
    }
}

const JOB_FIELD: &str = "slack_job";

/// What the endpoint answers Slack, as a Function URL response.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    pub status: u16,
    /// JSON for Slack, or a plain line for a refusal.
    pub body: Option<Value>,
}

impl HttpAnswer {
    fn ok() -> Self {
        Self {
            status: 200,
            body: None,
        }
    }

    fn json(body: Value) -> Self {
        Self {
            status: 200,
            body: Some(body),
        }
    }

    /// The Function URL response (payload format 2.0).
    pub fn to_function_url(&self) -> Value {
        match &self.body {
            None => json!({"statusCode": self.status}),
            Some(Value::String(text)) => json!({
                "statusCode": self.status,
                "headers": {"content-type": "text/plain; charset=utf-8"},
                "body": text,
            }),
            Some(body) => json!({
                "statusCode": self.status,
                "headers": {"content-type": "application/json"},
                "body": body.to_string(),
            }),
        }
    }
}

/// Whether `request` fails only for a signature that does not match `slack_app`'s signing
/// secret (which may have been regenerated since the secret was read).
pub fn signature_mismatch(
    slack_app: &SlackApp,
    request: &FunctionUrlRequest,
    now_secs: i64,
) -> bool {
    raw_body(request).is_ok_and(|body| {
        verify(&slack_app.signing_secret, &request.headers, &body, now_secs)
            == Err(Refused::BadSignature)
    })
}

/// What the endpoint and its jobs work with, for one invocation.
pub struct Context<'a> {
    pub slack_app: &'a SlackApp,
    /// The apps this deployment relays: no other is answered.
    pub relayed: &'a [AppId],
    pub urls: &'a ResponseUrls,
    pub views: &'a dyn SlackViews,
    pub kept: &'a dyn KeptMessages,
    pub jobs: &'a dyn Jobs,
    pub now_secs: i64,
}

/// The stores' answers and the table, for the jobs.
pub struct Stores<'a> {
    pub app_store: Option<&'a dyn ReviewAnswers>,
    pub google_play: Option<&'a dyn ReviewAnswers>,
    pub state: &'a dyn StateStore,
    pub options: ReplyOptions,
}

/// One request to the endpoint, answered.
pub async fn interaction(ctx: &Context<'_>, request: &FunctionUrlRequest) -> HttpAnswer {
    let checked = raw_body(request).and_then(|body| {
        verify(
            &ctx.slack_app.signing_secret,
            &request.headers,
            &body,
            ctx.now_secs,
        )?;
        parse_interaction(&body, ctx.urls)
    });
    let interaction = match checked {
        Ok(interaction) => interaction,
        Err(refused) => {
            warn!(reason = %refused, status = refused.status(), "a request to the Slack endpoint was refused");
            return HttpAnswer {
                status: refused.status(),
                body: Some(Value::String(refused.to_string())),
            };
        }
    };
    let allowed = Allowed {
        team_ids: ctx.slack_app.allowed_team_ids.clone(),
        user_ids: ctx.slack_app.allowed_user_ids.clone(),
    }
    .check(
        &interaction.team_id,
        interaction.user_team_id.as_deref(),
        &interaction.user_id,
    );
    let who = SlackUser {
        user_id: interaction.user_id.clone(),
        team_id: interaction.team_id.clone(),
    };
    match interaction.kind {
        InteractionKind::Other => HttpAnswer::ok(),
        InteractionKind::Reply {
            trigger_id,
            response_url,
            button,
            message,
        } => {
            let refusal = match allowed {
                Err(refused) => Some(refused.to_string()),
                Ok(()) => not_relayed(ctx, &button.app),
            };
            if let Some(reason) = refusal {
                warn!(reason = %reason, slack_user_id = %who.user_id, slack_team_id = %who.team_id, app_id = %button.app, "a click on Reply was refused");
                tell(ctx, response_url.as_deref(), &reason).await;
                return HttpAnswer::ok();
            }
            if button.review_id.starts_with(SAMPLE_REVIEW_PREFIX) {
                info!(slack_user_id = %who.user_id, slack_team_id = %who.team_id, "a click on the test message's Reply button");
                tell(ctx, response_url.as_deref(), TEST_MESSAGE_CLICKED).await;
                return HttpAnswer::ok();
            }
            clicked(ctx, &trigger_id, response_url, &button, message.as_ref()).await;
            HttpAnswer::ok()
        }
        InteractionKind::Submitted {
            private_metadata,
            text,
            block_id,
        } => submitted(ctx, allowed, &who, &private_metadata, &text, &block_id).await,
    }
}

/// What the person who clicked Reply on the test message sees.
pub const TEST_MESSAGE_CLICKED: &str = "The Reply button works: review-relay got your click and checked its signature, workspace and app. This is the test message, so there is no review to answer.";

/// Why an app is not answered here, when it is not relayed.
fn not_relayed(ctx: &Context<'_>, app: &AppId) -> Option<String> {
    (!ctx.relayed.contains(app)).then(|| {
        format!(
            "{} app {app} is not relayed by this deployment, so it is not answered from here",
            app.store().name()
        )
    })
}

/// Shows `text` to the person who clicked alone (an ephemeral message), when the click gave a
/// `response_url`.
async fn tell(ctx: &Context<'_>, response_url: Option<&str>, text: &str) {
    let Some(url) = response_url else {
        return;
    };
    let body = json!({
        "response_type": "ephemeral",
        "replace_original": false,
        "text": escape(text),
    });
    if let Err(e) = ctx.views.respond(url, &body).await {
        warn!(error = %e, "could not tell the person in Slack");
    }
}

async fn clicked(
    ctx: &Context<'_>,
    trigger_id: &str,
    response_url: Option<String>,
    button: &ButtonValue,
    message: Option<&Value>,
) {
    let value = ButtonValue::encode(&button.app, &button.review_id);
    let quote = message
        .and_then(|message| quote_from_message(message, &value))
        .unwrap_or_else(|| {
            vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": format!(
                "{} review `{}` of app {}", button.store().name(), escape(&button.review_id), button.app
            )}})]
        });
    // The view opens first: the trigger lives 3 seconds. The message is kept meanwhile.
    let key = new_message_key();
    let carried = Carried {
        review: value.clone(),
        response_url: response_url.clone(),
        message: message.map(|_| key.clone()),
        clicked_at: ctx.now_secs,
    };
    let view = modal(button.store(), quote, &carried, None);
    let opened = ctx.views.open(trigger_id, &view).await;
    let view_id = match opened {
        Ok(view_id) => view_id,
        Err(e) => {
            error!(error = %e, app_id = %button.app, "the Reply modal could not be opened");
            tell(
                ctx,
                response_url.as_deref(),
                &format!("The reply form could not be opened: {e}"),
            )
            .await;
            return;
        }
    };
    if let Some(message) = message {
        let size = message.to_string().len();
        if size > KEPT_MESSAGE_MAX_BYTES {
            warn!(
                bytes = size,
                "the clicked message is too big to keep: the answer's outcome will be shown to the person alone"
            );
        } else if let Err(e) = ctx
            .kept
            .keep(&key, message, ctx.now_secs + RESPONSE_URL_SECONDS)
            .await
        {
            warn!(error = %e, "could not keep the clicked message: the answer's outcome will be shown to the person alone");
        }
    }
    let fill = Job::Fill {
        view_id,
        view,
        review: value,
    };
    if let Err(e) = ctx.jobs.start(&fill.event()).await {
        // The modal works without the store's answer in it.
        warn!(error = %e, "could not hand on filling the modal in with the store's answer");
    }
    info!(app_id = %button.app, review_id = %button.review_id, "the Reply modal was opened");
}

async fn submitted(
    ctx: &Context<'_>,
    allowed: Result<(), Refused>,
    who: &SlackUser,
    metadata: &str,
    text: &str,
    block_id: &str,
) -> HttpAnswer {
    let in_modal = |reason: &str| {
        HttpAnswer::json(json!({
            "response_action": "errors",
            "errors": {block_id: reason},
        }))
    };
    let refused = |reason: String| {
        warn!(reason = %reason, slack_user_id = %who.user_id, slack_team_id = %who.team_id, "an answer from Slack was refused");
        in_modal(&reason)
    };
    if let Err(refusal) = allowed {
        return refused(refusal.to_string());
    }
    let Some(back) = Carried::decode(metadata, ctx.urls) else {
        return refused(
            "this form's data is not one this endpoint wrote: close it and click Reply again"
                .into(),
        );
    };
    if let Some(reason) = not_relayed(ctx, &back.review.app) {
        return refused(reason);
    }
    let text = match AnswerText::parse(back.review.store(), text) {
        Ok(text) => text,
        Err(e) => return refused(e.to_string()),
    };
    let job = Job::Answer {
        review: ButtonValue::encode(&back.review.app, &back.review.review_id),
        text: text.as_str().to_owned(),
        user_id: who.user_id.clone(),
        team_id: who.team_id.clone(),
        response_url: back.response_url.clone(),
        message: back.message.clone(),
    };
    if let Err(e) = ctx.jobs.start(&job.event()).await {
        error!(error = %e, "could not hand on an answer from Slack");
        return in_modal(&format!(
            "The answer could not be handed on ({e}); nothing was sent. Try Send again."
        ));
    }
    info!(app_id = %back.review.app, review_id = %back.review.review_id, slack_user_id = %who.user_id, slack_team_id = %who.team_id, "an answer from Slack was handed on");
    let age = ctx.now_secs - back.clicked_at;
    let why = match &back.response_url {
        None => Some("The review's message cannot show it: Slack gave no way to update it."),
        Some(_) if age > RESPONSE_URL_SECONDS - RESPONSE_URL_MARGIN_SECONDS => Some(
            "The review's message cannot show it: Slack lets a message be updated only within 30 minutes of the click on Reply.",
        ),
        Some(_) => None,
    };
    match why {
        // Closes the modal; the message shows the outcome.
        None => HttpAnswer::ok(),
        Some(why) => HttpAnswer::json(json!({
            "response_action": "update",
            "view": sent_notice(back.review.store(), why),
        })),
    }
}

/// Runs a job handed on by [`interaction`]; what was done, for the invocation's answer.
pub async fn run_job(ctx: &Context<'_>, stores: &Stores<'_>, job: &Job) -> Value {
    match job {
        Job::Fill {
            view_id,
            view,
            review,
        } => {
            let Ok(review) = ButtonValue::parse(review) else {
                return json!({"job": "fill", "error": "not a review"});
            };
            let Some(answers) = answers_of(stores, review.store()) else {
                return json!({"job": "fill", "error": "the store is not relayed"});
            };
            if not_relayed(ctx, &review.app).is_some() {
                return json!({"job": "fill", "error": "the app is not relayed"});
            }
            let current = match answers.current(&review.app, &review.review_id).await {
                Ok(current) => current,
                Err(e) => {
                    warn!(error = %e, app_id = %review.app, "could not read the store's answer to fill the modal in");
                    return json!({"job": "fill", "error": e.to_string()});
                }
            };
            let Some(view) = current.and_then(|answer| {
                crate::adapters::slack::modal::filled(view, review.store(), &answer.text)
            }) else {
                return json!({"job": "fill", "filled": false});
            };
            match ctx.views.update(view_id, &view).await {
                Ok(()) => json!({"job": "fill", "filled": true}),
                Err(e) => {
                    warn!(error = %e, "could not fill the modal in with the store's answer");
                    json!({"job": "fill", "error": e})
                }
            }
        }
        Job::Answer {
            review,
            text,
            user_id,
            team_id,
            response_url,
            message,
        } => {
            let who = SlackUser {
                user_id: user_id.clone(),
                team_id: team_id.clone(),
            };
            let allowed = Allowed {
                team_ids: ctx.slack_app.allowed_team_ids.clone(),
                user_ids: ctx.slack_app.allowed_user_ids.clone(),
            }
            .check(team_id, None, user_id);
            let outcome = match (allowed, ButtonValue::parse(review)) {
                (Err(refused), _) => Err(refused.to_string()),
                (_, Err(refused)) => Err(refused.to_string()),
                (Ok(()), Ok(button)) => answer(ctx, stores, &who, &button, text).await,
            };
            let line = match &outcome {
                Ok((text, state)) => answered_line(user_id, text, state.as_deref()),
                Err(reason) => not_sent_line(user_id, reason),
            };
            let response_url = response_url.as_deref().filter(|u| ctx.urls.allows(u));
            let shown = show(ctx, response_url, message.as_deref(), review, &line).await;
            match outcome {
                Ok(_) => json!({"job": "answer", "answered": true, "shown": shown}),
                Err(reason) => {
                    json!({"job": "answer", "answered": false, "error": reason, "shown": shown})
                }
            }
        }
    }
}

fn answers_of<'a>(stores: &Stores<'a>, store: Store) -> Option<&'a dyn ReviewAnswers> {
    match store {
        Store::AppStore => stores.app_store,
        Store::GooglePlay => stores.google_play,
    }
}

/// Sends the answer; the text as the store kept it and its state, or why it was not sent.
async fn answer(
    ctx: &Context<'_>,
    stores: &Stores<'_>,
    who: &SlackUser,
    button: &ButtonValue,
    text: &str,
) -> Result<(String, Option<String>), String> {
    let request = ReplyRequest::new(
        &button.app.to_string(),
        &button.review_id,
        RawAction::Answer(text.to_owned()),
        ctx.relayed,
    )
    .map_err(|refused| refused.0)?;
    let answers = answers_of(stores, button.store())
        .ok_or_else(|| format!("{} is not relayed here", button.store().name()))?;
    let summary = reply_for(answers, stores.state, &request, stores.options, Some(who)).await;
    if let Some(reason) = summary.error {
        error!(app_id = %button.app, review_id = %button.review_id, slack_user_id = %who.user_id, slack_team_id = %who.team_id, reason = %reason, "an answer from Slack failed");
        return Err(reason);
    }
    let posted = summary.answer.unwrap_or_default();
    Ok((posted.text, posted.state))
}

/// Shortest an answer line is cut to, to keep a full message within Slack's limits.
const SHORT_LINE_CHARS: usize = 200;

/// `message` with `line` under the review; the line cut short when the whole would pass Slack's
/// limits for a message (its text in all), `None` when even that does not fit.
fn within_slacks_limits(message: &Value, review: &str, line: &str) -> Option<Value> {
    let slack = format_of(WebhookFormat::Slack);
    let updated = with_answer_line(message, review, line)?;
    if slack.fits(&updated) {
        return Some(updated);
    }
    let short = if line.chars().count() > SHORT_LINE_CHARS {
        let mut cut: String = line.chars().take(SHORT_LINE_CHARS - 1).collect();
        // Never half an escape (`&amp;`).
        if let Some(amp) = cut.rfind('&')
            && !cut[amp..].contains(';')
        {
            cut.truncate(amp);
        }
        cut + "…"
    } else {
        line.to_owned()
    };
    with_answer_line(message, review, &short).filter(|updated| slack.fits(updated))
}

/// Shows `line` under the review in the message clicked, or to the person alone when the
/// message was not kept; whether Slack took it.
async fn show(
    ctx: &Context<'_>,
    response_url: Option<&str>,
    message: Option<&str>,
    review: &str,
    line: &str,
) -> bool {
    let Some(url) = response_url else {
        info!("the answer's outcome cannot be shown in Slack: the click gave no response_url");
        return false;
    };
    let kept = match message {
        None => None,
        Some(key) => match ctx.kept.kept(key, ctx.now_secs).await {
            Ok(kept) => kept,
            Err(e) => {
                warn!(error = %e, "could not read the kept message");
                None
            }
        },
    };
    let body = kept
        .and_then(|message| within_slacks_limits(&message, review, line))
        .unwrap_or_else(|| {
            json!({
                "response_type": "ephemeral",
                "replace_original": false,
                "text": line,
            })
        });
    match ctx.views.respond(url, &body).await {
        Ok(()) => true,
        Err(e) => {
            warn!(error = %e, "the answer's outcome could not be shown in Slack");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use secrecy::SecretString;

    use super::*;
    use crate::ports::StateError;

    const SECRET: &str = "signing-secret";
    const NOW: i64 = 1_764_864_000;

    #[derive(Default)]
    struct Fakes {
        opened: Mutex<Vec<(String, Value)>>,
        open_fails: bool,
        responded: Mutex<Vec<(String, Value)>>,
        kept: Mutex<HashMap<String, (Value, i64)>>,
        jobs: Mutex<Vec<Value>>,
    }

    #[async_trait]
    impl SlackViews for Fakes {
        async fn open(&self, trigger_id: &str, view: &Value) -> Result<String, String> {
            if self.open_fails {
                return Err("the click is too old to open a modal; click Reply again".into());
            }
            self.opened
                .lock()
                .unwrap()
                .push((trigger_id.into(), view.clone()));
            Ok("V1".into())
        }
        async fn update(&self, _: &str, _: &Value) -> Result<(), String> {
            Ok(())
        }
        async fn respond(&self, url: &str, body: &Value) -> Result<(), String> {
            self.responded
                .lock()
                .unwrap()
                .push((url.into(), body.clone()));
            Ok(())
        }
    }

    #[async_trait]
    impl KeptMessages for Fakes {
        async fn keep(&self, key: &str, message: &Value, until: i64) -> Result<(), StateError> {
            self.kept
                .lock()
                .unwrap()
                .insert(key.into(), (message.clone(), until));
            Ok(())
        }
        async fn kept(&self, key: &str, now: i64) -> Result<Option<Value>, StateError> {
            Ok(self
                .kept
                .lock()
                .unwrap()
                .get(key)
                .filter(|(_, until)| *until > now)
                .map(|(m, _)| m.clone()))
        }
    }

    #[async_trait]
    impl Jobs for Fakes {
        async fn start(&self, job: &Value) -> Result<(), String> {
            self.jobs.lock().unwrap().push(job.clone());
            Ok(())
        }
    }

    fn app() -> SlackApp {
        SlackApp {
            signing_secret: SecretString::from(SECRET),
            bot_token: SecretString::from("xoxb-1"),
            allowed_team_ids: vec!["T1".into()],
            allowed_user_ids: None,
        }
    }

    fn request(payload: &Value, now: i64) -> FunctionUrlRequest {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, format!("v0:{now}:{body}").as_bytes());
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        FunctionUrlRequest {
            headers: HashMap::from([
                ("x-slack-request-timestamp".into(), now.to_string()),
                ("x-slack-signature".into(), format!("v0={hex}")),
            ]),
            body: Some(body),
            is_base64_encoded: false,
        }
    }

    const URL: &str = "https://hooks.slack.com/actions/T1/1/x";

    fn click(value: &str) -> Value {
        json!({
            "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"},
            "trigger_id": "1.2.3", "response_url": URL,
            "actions": [{"action_id": "reply", "value": value}],
            "message": {"blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "★☆☆☆☆  *Broken*"}},
                {"type": "actions", "elements": [{"type": "button", "action_id": "reply", "value": value}]},
            ]},
        })
    }

    async fn with_context<T>(fakes: &Fakes, run: impl AsyncFnOnce(&Context<'_>) -> T) -> T {
        let app = app();
        let relayed = [AppId::parse("1").unwrap()];
        let urls = ResponseUrls::new(&url::Url::parse("https://slack.com/api").unwrap());
        let ctx = Context {
            slack_app: &app,
            relayed: &relayed,
            urls: &urls,
            views: fakes,
            kept: fakes,
            jobs: fakes,
            now_secs: NOW,
        };
        run(&ctx).await
    }

    #[tokio::test]
    async fn a_click_opens_the_modal_keeps_the_message_and_hands_on_the_filling_in() {
        let fakes = Fakes::default();
        let answer = with_context(&fakes, async |ctx| {
            interaction(ctx, &request(&click("app_store:1:r1"), NOW)).await
        })
        .await;
        assert_eq!(answer, HttpAnswer::ok());
        let opened = fakes.opened.lock().unwrap().clone();
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].0, "1.2.3");
        assert_eq!(opened[0].1["blocks"][0]["text"]["text"], "★☆☆☆☆  *Broken*");
        let carried: Value =
            serde_json::from_str(opened[0].1["private_metadata"].as_str().unwrap()).unwrap();
        assert_eq!(carried["response_url"], URL);
        assert_eq!(carried["clicked_at"], NOW);
        let key = carried["message"].as_str().unwrap();
        let kept = fakes.kept.lock().unwrap().get(key).cloned().unwrap();
        assert_eq!(kept.1, NOW + RESPONSE_URL_SECONDS);
        assert_eq!(kept.0, click("app_store:1:r1")["message"]);
        let jobs = fakes.jobs.lock().unwrap().clone();
        assert_eq!(
            Job::from_event(&jobs[0]).unwrap().unwrap(),
            Job::Fill {
                view_id: "V1".into(),
                view: opened[0].1.clone(),
                review: "app_store:1:r1".into()
            }
        );
    }

    #[tokio::test]
    async fn a_click_on_the_test_messages_button_says_the_button_works_and_opens_nothing() {
        let fakes = Fakes::default();
        with_context(&fakes, async |ctx| {
            interaction(
                ctx,
                &request(&click("app_store:1:review-relay-test-1764864000000"), NOW),
            )
            .await
        })
        .await;
        assert!(fakes.opened.lock().unwrap().is_empty());
        assert!(fakes.jobs.lock().unwrap().is_empty());
        let told = fakes.responded.lock().unwrap().clone();
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].1["text"], TEST_MESSAGE_CLICKED);
    }

    #[tokio::test]
    async fn a_modal_that_cannot_open_is_explained_to_the_person_and_nothing_is_handed_on() {
        let fakes = Fakes {
            open_fails: true,
            ..Fakes::default()
        };
        with_context(&fakes, async |ctx| {
            interaction(ctx, &request(&click("app_store:1:r1"), NOW)).await
        })
        .await;
        let told = fakes.responded.lock().unwrap().clone();
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].1["response_type"], "ephemeral");
        assert!(
            told[0].1["text"]
                .as_str()
                .unwrap()
                .contains("click Reply again")
        );
        assert!(fakes.jobs.lock().unwrap().is_empty());
        assert!(fakes.kept.lock().unwrap().is_empty());
    }

    fn submission(carried: &Carried, text: &str) -> Value {
        json!({
            "type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"},
            "view": {"callback_id": "reply", "private_metadata": carried.encode(),
                "state": {"values": {"answer-current": {"text": {"value": text}}}}},
        })
    }

    fn carried(clicked_at: i64) -> Carried {
        Carried {
            review: "app_store:1:r1".into(),
            response_url: Some(URL.into()),
            message: Some("0123456789abcdef0123456789abcdef".into()),
            clicked_at,
        }
    }

    #[tokio::test]
    async fn a_submission_is_handed_on_and_the_modal_closes_or_says_the_message_cannot_show_it() {
        let fakes = Fakes::default();
        let closed = with_context(&fakes, async |ctx| {
            interaction(
                ctx,
                &request(&submission(&carried(NOW - 60), " Thanks!\n"), NOW),
            )
            .await
        })
        .await;
        assert_eq!(closed, HttpAnswer::ok());
        let jobs = fakes.jobs.lock().unwrap().clone();
        assert_eq!(
            Job::from_event(&jobs[0]).unwrap().unwrap(),
            Job::Answer {
                review: "app_store:1:r1".into(),
                text: "Thanks!".into(),
                user_id: "U1".into(),
                team_id: "T1".into(),
                response_url: Some(URL.into()),
                message: Some("0123456789abcdef0123456789abcdef".into()),
            }
        );
        let late = with_context(&fakes, async |ctx| {
            interaction(
                ctx,
                &request(&submission(&carried(NOW - 30 * 60), "Thanks!"), NOW),
            )
            .await
        })
        .await;
        let body = late.body.unwrap();
        assert_eq!(body["response_action"], "update");
        assert!(body["view"].to_string().contains("within 30 minutes"));
        assert_eq!(fakes.jobs.lock().unwrap().len(), 2, "the answer still goes");
    }

    #[tokio::test]
    async fn a_refused_submission_is_answered_under_the_input_it_came_from() {
        let fakes = Fakes::default();
        let mut other_app = carried(NOW);
        other_app.review = "app_store:2:r1".into();
        for (payload, expected) in [
            (submission(&carried(NOW), "   "), "the answer is empty"),
            (submission(&other_app, "Hi"), "app 2 is not relayed"),
            (
                json!({"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1"},
                    "view": {"callback_id": "reply", "private_metadata": "{}",
                        "state": {"values": {"answer": {"text": {"value": "Hi"}}}}}}),
                "close it and click Reply again",
            ),
        ] {
            let answer = with_context(&fakes, async |ctx| {
                interaction(ctx, &request(&payload, NOW)).await
            })
            .await;
            let body = answer.body.unwrap();
            assert_eq!(body["response_action"], "errors");
            let errors = body["errors"].as_object().unwrap();
            assert_eq!(errors.len(), 1);
            let (block, reason) = errors.iter().next().unwrap();
            assert!(block == "answer" || block == "answer-current");
            assert!(reason.as_str().unwrap().contains(expected), "{reason}");
        }
        assert!(fakes.jobs.lock().unwrap().is_empty());
    }

    #[test]
    fn an_answer_line_is_cut_short_when_the_message_would_pass_slacks_limits() {
        let value = "app_store:1:r1";
        let message = |text_chars: usize| {
            json!({"text": "t", "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(text_chars)}},
                {"type": "actions", "elements": [{"type": "button", "action_id": "reply", "value": value}]},
            ]})
        };
        let line = format!("Answered by <@U1>: {}", "&amp;".repeat(390));
        let roomy = within_slacks_limits(&message(1_000), value, &line).unwrap();
        assert_eq!(roomy["blocks"][2]["elements"][0]["text"], line.as_str());
        let tight = within_slacks_limits(&message(11_000), value, &line).unwrap();
        let short = tight["blocks"][2]["elements"][0]["text"].as_str().unwrap();
        assert!(short.chars().count() <= SHORT_LINE_CHARS, "{short}");
        assert!(short.ends_with("&amp;…"), "{short}");
        assert_eq!(within_slacks_limits(&message(11_950), value, &line), None);
    }

    #[test]
    fn function_url_responses_carry_the_status_and_the_body_as_a_string() {
        assert_eq!(
            HttpAnswer::ok().to_function_url(),
            json!({"statusCode": 200})
        );
        let refused = HttpAnswer {
            status: 401,
            body: Some("not signed".into()),
        };
        assert_eq!(refused.to_function_url()["body"], "not signed");
        let errors = HttpAnswer::json(json!({"response_action": "errors"}));
        assert_eq!(
            errors.to_function_url()["body"],
            "{\"response_action\":\"errors\"}"
        );
        assert_eq!(
            errors.to_function_url()["headers"]["content-type"],
            "application/json"
        );
    }
}
