//! The Reply button end to end, through the release binary in `slack-interactions` mode under
//! the Lambda Runtime API double: Function URL events (payload format 2.0) carrying interaction
//! payloads signed as Slack signs them, the Slack double (`views.open`, `views.update`,
//! `response_url`), the App Store Connect and Google Play doubles receiving the answers, moto for
//! the secret and the table, and the function's asynchronous invocations of itself through
//! Lambda's Invoke API (played by the Runtime API double, SigV4 checked).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::asc::{AscConfig, review};
use support::play::{PlayDouble, play_review, real_now_secs};
use support::runtime_api::{Invocation, LambdaProcess, RuntimeApi};
use support::slack::{
    self, BOT_TOKEN, SIGNING_SECRET, SlackDouble, TEAM, USER, click, form, function_url_event,
    sign, signed_event, submission,
};
use support::world::{INVOKE_TIMEOUT, World, assert_no_leaks, minutes_ago, ok};

const APP: &str = "8202";
const PACKAGE: &str = "com.example.slackreply";
const ANSWER: &str = "Thanks Kim: 2.1 fixes the crash at launch.";
const JOB_WAIT: Duration = Duration::from_secs(60);

fn now() -> i64 {
    real_now_secs()
}

/// The world's secret with one interactive Slack destination (the receiver) and `slack_app`.
fn secret_value(world: &World, play: Option<&PlayDouble>, allowed_users: Option<&[&str]>) -> Value {
    let mut secret = world.secret_json(support::keys::PRIVATE_KEY_P8);
    let url = secret["webhook_url"].take();
    secret.as_object_mut().unwrap().remove("webhook_url");
    secret["destinations"] =
        json!([{"url": url, "format": "slack", "interactive": true, "name": "reviews"}]);
    secret["slack_app"] = slack::slack_app(allowed_users);
    if let Some(play) = play {
        secret["google_service_account"] = play.service_account_json();
    }
    secret
}

async fn set_secret(world: &World, play: Option<&PlayDouble>, allowed_users: Option<&[&str]>) {
    let secret = secret_value(world, play, allowed_users);
    world.set_secret(&secret.to_string()).await;
}

/// A world with one App Store review relayed to the interactive destination, the Slack
/// function started on it, and a click on its Reply button (with a fresh `response_url`)
/// answered: the world, the message, the button's value, the response URL and the function.
async fn one_review_clicked(title: &str) -> Clicked {
    let world = World::new(AscConfig::team()).await;
    world.asc.set_reviews(
        APP,
        vec![review(
            "r1",
            &minutes_ago(40, -8),
            1,
            Some(title),
            None,
            None,
            Some("USA"),
        )],
    );
    set_secret(&world, None, None).await;
    let message = relay_once(&world, None).await.remove(0);
    let value = button(&message, "r1");
    let slack = SlackDouble::start();
    let (api, process) = slack_function(&world, &slack, None);
    let url = slack.response_url();
    post(
        &api,
        signed_event(&click(&value, &slack.trigger(), &url, &message), now()),
    )
    .await;
    Clicked {
        world,
        message,
        value,
        url,
        slack,
        api,
        process,
    }
}

struct Clicked {
    world: World,
    message: Value,
    value: String,
    url: String,
    slack: SlackDouble,
    api: RuntimeApi,
    process: LambdaProcess,
}

fn play_env(play: Option<&PlayDouble>) -> Vec<(String, String)> {
    play.map_or_else(Vec::new, |play| {
        vec![
            ("PLAY_PACKAGES".to_owned(), PACKAGE.to_owned()),
            ("PLAY_BASE_URL".to_owned(), play.base_url()),
        ]
    })
}

/// The relay's scheduled run: the interactive messages the receiver got.
async fn relay_once(world: &World, play: Option<&PlayDouble>) -> Vec<Value> {
    let env = play_env(play);
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (api, _process) = world.lambda_with(APP, &extra);
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    world
        .receiver
        .accepted()
        .into_iter()
        .map(|m| m.json.expect("a Slack message is JSON"))
        .collect()
}

/// The `slack-interactions` function: the release binary, its Lambda Invoke API on the same
/// Runtime API double.
fn slack_function(
    world: &World,
    slack: &SlackDouble,
    play: Option<&PlayDouble>,
) -> (RuntimeApi, LambdaProcess) {
    let api = RuntimeApi::start();
    let mut env = world.env(APP);
    env.extend(play_env(play));
    env.extend([
        ("RELAY_MODE".to_owned(), "slack-interactions".to_owned()),
        ("SLACK_API_URL".to_owned(), slack.api_url()),
        ("AWS_ENDPOINT_URL_LAMBDA".to_owned(), api.invoke_endpoint()),
    ]);
    let process = LambdaProcess::spawn(&api.address(), &env);
    (api, process)
}

/// Sends a Function URL event; the response Slack would get.
async fn post(api: &RuntimeApi, event: Value) -> Value {
    ok(api.invoke(event, Duration::from_secs(30)).await)
}

fn response_body(response: &Value) -> Value {
    match response["body"].as_str() {
        None => Value::Null,
        Some(body) => serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into())),
    }
}

/// The Reply button's value on the review `review_id` in `message`.
fn button(message: &Value, review_id: &str) -> String {
    message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().clone())
        .map(|e| e["value"].as_str().unwrap_or_default().to_owned())
        .find(|v| v.ends_with(&format!(":{review_id}")))
        .unwrap_or_else(|| panic!("no Reply button for {review_id} in {message}"))
}

/// What no output or response may hold: the bot token, the signing secret, the world's secrets.
fn assert_nothing_secret(world: &World, outputs: &[&str]) {
    assert_no_leaks(world, outputs);
    for output in outputs {
        assert!(
            !output.contains(BOT_TOKEN),
            "the bot token leaks:\n{output}"
        );
        assert!(
            !output.contains(SIGNING_SECRET),
            "the signing secret leaks:\n{output}"
        );
        assert!(
            !output.contains("/actions/"),
            "a response_url leaks:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_opens_the_modal_filled_with_the_stores_answer_and_a_submission_answers_and_updates_the_message()
 {
    let world = World::new(AscConfig::team()).await;
    world.asc.set_reviews(
        APP,
        vec![
            review(
                "r1",
                &minutes_ago(50, -8),
                5,
                Some("Love it"),
                Some("Great"),
                Some("ana"),
                Some("USA"),
            ),
            review(
                "r2",
                &minutes_ago(40, -8),
                1,
                Some("Crashes"),
                Some("At launch"),
                Some("kim"),
                Some("GBR"),
            ),
        ],
    );
    set_secret(&world, None, None).await;
    let messages = relay_once(&world, None).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = messages[0].clone();
    let value = button(&message, "r2");
    assert_eq!(value, format!("app_store:{APP}:r2"));
    // Apple holds an earlier answer to r2 (published after the message went out).
    world
        .asc
        .set_response_in_state(APP, "r2", "An earlier answer", "PUBLISHED");

    let slack = SlackDouble::start();
    let (api, process) = slack_function(&world, &slack, None);
    let response_url = slack.response_url();
    let clicked = post(
        &api,
        signed_event(
            &click(&value, &slack.trigger(), &response_url, &message),
            now(),
        ),
    )
    .await;
    assert_eq!(clicked["statusCode"], 200, "{clicked}");
    let opened = slack.opened();
    assert_eq!(opened.len(), 1, "refused: {:?}", slack.refused());
    let view = &opened[0];
    let shown = view.to_string();
    assert!(
        shown.contains("Crashes") && shown.contains("At launch"),
        "the review is quoted: {shown}"
    );
    assert!(
        !shown.contains("Love it"),
        "only the review clicked: {shown}"
    );
    let input = view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "input")
        .unwrap();
    assert_eq!(input["element"]["max_length"], 3_000);
    assert!(view["private_metadata"].as_str().unwrap().len() < 600);

    // The job fills the modal in with Apple's answer, after the click was answered.
    let jobs = api.wait_async(1, JOB_WAIT).await;
    assert!(matches!(jobs[0].1, Invocation::Ok(_)), "{jobs:?}");
    let updated = slack.updated();
    assert_eq!(updated.len(), 1, "refused: {:?}", slack.refused());
    let filled = updated[0].1["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "input")
        .unwrap()
        .clone();
    assert_eq!(filled["element"]["initial_value"], "An earlier answer");
    let filled_view = updated[0].1.clone();

    let submitted = post(
        &api,
        signed_event(&submission(&filled_view, &format!(" {ANSWER}\n")), now()),
    )
    .await;
    assert_eq!(submitted["statusCode"], 200, "{submitted}");
    assert_eq!(
        response_body(&submitted),
        Value::Null,
        "the modal closes: {submitted}"
    );
    let jobs = api.wait_async(2, JOB_WAIT).await;
    assert!(
        matches!(&jobs[1].1, Invocation::Ok(done) if done["answered"] == true && done["shown"] == true),
        "{jobs:?}"
    );

    let (_, text, state) = world.asc.response(APP, "r2").expect("Apple has the answer");
    assert_eq!((text.as_str(), state.as_str()), (ANSWER, "PENDING_PUBLISH"));
    assert_eq!(world.asc.answer_bodies().len(), 1);
    assert!(world.asc.response(APP, "r1").is_none());

    // The message keeps both reviews; under r2, who answered what.
    let updates = slack.responses(&response_url);
    assert_eq!(updates.len(), 1, "{:?}", slack.responses_refused());
    let update = &updates[0];
    assert_eq!(update["replace_original"], true);
    let blocks = update["blocks"].as_array().unwrap();
    assert_eq!(
        blocks.len(),
        message["blocks"].as_array().unwrap().len() + 1
    );
    let at = blocks
        .iter()
        .position(|b| b["type"] == "actions" && b.to_string().contains(&value))
        .unwrap();
    let line = blocks[at + 1]["elements"][0]["text"].as_str().unwrap();
    assert_eq!(
        line,
        format!("Answered by <@{USER}> (PENDING_PUBLISH): {ANSWER}")
    );
    assert!(
        update.to_string().contains("Love it"),
        "the other review stays"
    );

    // The audit line names the Slack user and workspace; the text is not logged.
    process.wait_for_output("review answered", JOB_WAIT).await;
    let output = process.output();
    let audit = output
        .lines()
        .find(|l| l.contains("review answered"))
        .unwrap();
    for expected in [APP, "r2", USER, TEAM, "audit"] {
        assert!(audit.contains(expected), "{expected} missing: {audit}");
    }
    assert!(!output.contains(ANSWER), "the answer's text is not logged");
    let noted = world
        .item(APP, "reply#r2")
        .await
        .expect("the answer is noted");
    assert_eq!(noted["text"].as_s().unwrap(), ANSWER);
    assert_nothing_secret(
        &world,
        &[&output, &clicked.to_string(), &submitted.to_string()],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_play_answer_is_held_to_350_characters_and_a_store_refusal_is_shown_in_the_message()
 {
    let world = World::new(AscConfig::team()).await;
    world.asc.set_reviews(APP, vec![]);
    let play = world
        .add_play(support::play::PlayConfig::fixture(), PACKAGE)
        .await;
    play.set_reviews(
        PACKAGE,
        vec![play_review(
            "gp:AOqpTOr1",
            "Ana",
            "Slow\tToo slow",
            2,
            real_now_secs() - 600,
            "en",
        )],
    );
    set_secret(&world, Some(&play), None).await;
    let messages = relay_once(&world, Some(&play)).await;
    assert_eq!(messages.len(), 1);
    let value = button(&messages[0], "gp:AOqpTOr1");
    assert_eq!(value, format!("google_play:{PACKAGE}:gp:AOqpTOr1"));

    let slack = SlackDouble::start();
    let (api, process) = slack_function(&world, &slack, Some(&play));
    let response_url = slack.response_url();
    post(
        &api,
        signed_event(
            &click(&value, &slack.trigger(), &response_url, &messages[0]),
            now(),
        ),
    )
    .await;
    let opened = slack.opened();
    assert_eq!(opened.len(), 1, "refused: {:?}", slack.refused());
    let input = opened[0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "input")
        .unwrap()
        .clone();
    assert_eq!(input["element"]["max_length"], 350);
    let jobs = api.wait_async(1, JOB_WAIT).await;
    assert!(
        matches!(&jobs[0].1, Invocation::Ok(done) if done["filled"] == false),
        "no answer yet: {jobs:?}"
    );

    // Over Google's limit: said in the modal, under the input; nothing handed on or sent.
    let long = "ü".repeat(351);
    let refused = post(&api, signed_event(&submission(&opened[0], &long), now())).await;
    let body = response_body(&refused);
    assert_eq!(body["response_action"], "errors", "{refused}");
    assert!(
        body["errors"]["answer"].as_str().unwrap().contains("350"),
        "{body}"
    );
    assert!(play.reply_bodies().is_empty());

    // Google refuses (no permission): the message says so under the review.
    play.deny(PACKAGE, support::play::Denial::NoPermission);
    let sent = post(
        &api,
        signed_event(&submission(&opened[0], "Thanks, Ana!"), now()),
    )
    .await;
    assert_eq!(sent["statusCode"], 200);
    let jobs = api.wait_async(2, JOB_WAIT).await;
    assert!(
        matches!(&jobs[1].1, Invocation::Ok(done) if done["answered"] == false),
        "{jobs:?}"
    );
    let updates = slack.responses(&response_url);
    assert_eq!(updates.len(), 1, "{:?}", slack.responses_refused());
    let line = updates[0].to_string();
    assert!(
        line.contains(&format!("Answer by <@{USER}> not sent"))
            && line.contains("Reply to reviews"),
        "{line}"
    );

    play.allow(PACKAGE);
    post(
        &api,
        signed_event(&submission(&opened[0], "Thanks, Ana!"), now()),
    )
    .await;
    let jobs = api.wait_async(3, JOB_WAIT).await;
    assert!(
        matches!(&jobs[2].1, Invocation::Ok(done) if done["answered"] == true),
        "{jobs:?}"
    );
    assert_eq!(
        play.reply_text(PACKAGE, "gp:AOqpTOr1").as_deref(),
        Some("Thanks, Ana!")
    );
    let updates = slack.responses(&response_url);
    assert_eq!(updates.len(), 2);
    let blocks = updates[1]["blocks"].as_array().unwrap();
    let answered: Vec<&Value> = blocks
        .iter()
        .filter(|b| b.to_string().contains("Answered by"))
        .collect();
    assert_eq!(
        answered.len(),
        1,
        "the line replaces the failure: {blocks:?}"
    );
    assert!(!updates[1].to_string().contains("not sent"));
    assert_nothing_secret(&world, &[&process.output()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_reach_no_store_and_each_says_why() {
    let world = World::new(AscConfig::team()).await;
    world.asc.set_reviews(
        APP,
        vec![review(
            "r1",
            &minutes_ago(40, -8),
            1,
            Some("Crashes"),
            Some("At launch"),
            Some("kim"),
            Some("USA"),
        )],
    );
    set_secret(&world, None, Some(&[USER])).await;
    let messages = relay_once(&world, None).await;
    let message = messages[0].clone();
    let value = button(&message, "r1");
    let slack = SlackDouble::start();
    let (api, process) = slack_function(&world, &slack, None);
    let t = now();

    // A valid click, to submit against.
    let url = slack.response_url();
    post(
        &api,
        signed_event(&click(&value, &slack.trigger(), &url, &message), t),
    )
    .await;
    let opened = slack.opened().pop().expect("the modal opened");
    api.wait_async(1, JOB_WAIT).await;
    // The job read Apple's answer to fill the modal in; from here on nothing may reach Apple.
    world.asc.clear_requests();

    let good_click = |trigger: String| click(&value, &trigger, &url, &message);
    let body = form(&good_click(slack.trigger()));
    let header = |ts: i64, signature: String| {
        vec![
            ("X-Slack-Request-Timestamp", ts.to_string()),
            ("X-Slack-Signature", signature),
        ]
    };
    let mut other_team = good_click(slack.trigger());
    other_team["team"]["id"] = "T0OTHER9".into();
    other_team["user"]["team_id"] = "T0OTHER9".into();
    let mut guest = good_click(slack.trigger());
    guest["user"]["team_id"] = "T0OTHER9".into();
    let mut other_user = submission(&opened, ANSWER);
    other_user["user"]["id"] = "U0SOMEONE".into();
    let mut not_relayed = good_click(slack.trigger());
    not_relayed["actions"][0]["value"] = "app_store:9999:r1".into();
    let huge = vec![b'a'; 1024 * 1024 + 1];

    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "a bad signature",
            function_url_event(&body, &header(t, sign("another secret", t, &body))),
            401,
            "signature does not match",
        ),
        (
            "no signature",
            function_url_event(&body, &[]),
            401,
            "not signed",
        ),
        (
            "a stale timestamp",
            function_url_event(
                &body,
                &header(t - 301, sign(SIGNING_SECRET, t - 301, &body)),
            ),
            401,
            "more than the 300 s",
        ),
        (
            "a future timestamp",
            function_url_event(
                &body,
                &header(t + 400, sign(SIGNING_SECRET, t + 400, &body)),
            ),
            401,
            "more than the 300 s",
        ),
        (
            "an hour-old replay",
            function_url_event(
                &body,
                &header(t - 3_600, sign(SIGNING_SECRET, t - 3_600, &body)),
            ),
            401,
            "replayed",
        ),
        (
            "a malformed payload",
            {
                let body = b"payload=%7Bnot+json".to_vec();
                function_url_event(&body, &header(t, sign(SIGNING_SECRET, t, &body)))
            },
            400,
            "malformed",
        ),
        (
            "an oversized body",
            function_url_event(&huge, &header(t, sign(SIGNING_SECRET, t, &huge))),
            413,
            "more than the 1048576",
        ),
        (
            "a team not allowed",
            signed_event(&other_team, t),
            200,
            "workspace is not allowed",
        ),
        (
            "a guest of another team",
            signed_event(&guest, t),
            200,
            "workspace is not allowed",
        ),
        (
            "an app not relayed",
            signed_event(&not_relayed, t),
            200,
            "app 9999 is not relayed",
        ),
        (
            "a user not allowed",
            signed_event(&other_user, t),
            200,
            "user is not allowed",
        ),
        (
            "an answer over the limit",
            signed_event(&submission(&opened, &"a".repeat(5_971)), t),
            200,
            "at most 5970",
        ),
        (
            "an empty answer",
            signed_event(&submission(&opened, "   "), t),
            200,
            "empty",
        ),
    ];
    let before = slack.all_responses().len();
    let logged_before = process.output().matches(" was refused").count();
    for (refusals_logged, (what, event, status, reason)) in (logged_before..).zip(cases) {
        let told_before = slack.all_responses().len();
        let response = post(&api, event).await;
        assert_eq!(response["statusCode"], status, "{what}: {response}");
        let said = response.to_string()
            + &slack.all_responses()[told_before..]
                .iter()
                .map(Value::to_string)
                .collect::<String>();
        if status == 200 {
            assert!(
                said.contains(reason),
                "{what}: the person is told ({reason}): {said}"
            );
        } else {
            assert!(
                response_body(&response)
                    .as_str()
                    .unwrap_or_default()
                    .contains(reason),
                "{what}: {response}"
            );
        }
        // Logged with its cause (the log is read from the process's pipes: allow a moment).
        let logged = |output: String| output.matches(" was refused").count();
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while logged(process.output()) <= refusals_logged && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            logged(process.output()),
            refusals_logged + 1,
            "{what}: one log line"
        );
        assert_nothing_secret(&world, &[&response.to_string()]);
    }
    // Ephemeral answers only for clicks; nothing replaced the message.
    assert!(
        slack.all_responses()[before..]
            .iter()
            .all(|r| r["response_type"] == "ephemeral")
    );
    assert_eq!(slack.opened().len(), 1, "no modal for a refused click");
    assert_eq!(api.async_answers().len(), 1, "nothing handed on");
    assert!(
        world.asc.answer_requests().is_empty(),
        "no store got an answer"
    );
    let output = process.output();
    for line in [
        "a request to the Slack endpoint was refused",
        "a click on Reply was refused",
        "an answer from Slack was refused",
    ] {
        assert!(output.contains(line), "{line}: {output}");
    }
    assert_nothing_secret(&world, &[&output]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_sent_after_the_messages_30_minutes_reaches_the_store_and_the_modal_says_so() {
    let Clicked {
        world,
        message,
        value,
        url,
        slack,
        api,
        process,
    } = one_review_clicked("Crashes").await;
    let mut opened = slack.opened().pop().expect("opened");
    api.wait_async(1, JOB_WAIT).await;

    // Slack sends the submission 31 minutes after the click: its response_url has expired.
    let mut carried: Value =
        serde_json::from_str(opened["private_metadata"].as_str().unwrap()).unwrap();
    carried["clicked_at"] = (now() - 31 * 60).into();
    opened["private_metadata"] = carried.to_string().into();
    slack.expire(&url);
    let sent = post(&api, signed_event(&submission(&opened, ANSWER), now())).await;
    let body = response_body(&sent);
    assert_eq!(body["response_action"], "update", "{sent}");
    assert!(
        body["view"].to_string().contains("within 30 minutes"),
        "{body}"
    );
    let jobs = api.wait_async(2, JOB_WAIT).await;
    assert!(
        matches!(&jobs[1].1, Invocation::Ok(done) if done["answered"] == true && done["shown"] == false),
        "{jobs:?}"
    );
    assert_eq!(
        world.asc.response(APP, "r1").map(|r| r.1).as_deref(),
        Some(ANSWER)
    );
    assert_eq!(
        slack.responses_refused().len(),
        1,
        "Slack refused the expired URL"
    );
    assert!(process.output().contains("could not be shown in Slack"));

    // A trigger older than Slack's 3 seconds: Slack refuses the modal, the person is told.
    let url = slack.response_url();
    post(
        &api,
        signed_event(
            &click(
                &value,
                &slack.old_trigger(Duration::from_secs(4)),
                &url,
                &message,
            ),
            now(),
        ),
    )
    .await;
    assert_eq!(
        slack.refused().last().map(|r| r.1.as_str()),
        Some("expired_trigger_id")
    );
    let told = slack.responses(&url);
    assert_eq!(told.len(), 1);
    assert!(
        told[0]["text"]
            .as_str()
            .unwrap()
            .contains("click Reply again"),
        "{told:?}"
    );
    assert_nothing_secret(&world, &[&process.output()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regenerated_signing_secret_works_from_the_first_click_after_it_is_stored() {
    let Clicked {
        world,
        message,
        value,
        url,
        slack,
        api,
        process,
    } = one_review_clicked("Nice").await;
    assert_eq!(slack.opened().len(), 1, "the secret is read and kept");

    // The Slack app's signing secret is regenerated and stored; the function still holds the
    // old one, and reads the secret again on the first signature that does not match.
    const NEW_SECRET: &str = "regenerated-5ecret-0a1b2c3d4e5f";
    let mut secret = secret_value(&world, None, None);
    secret["slack_app"]["signing_secret"] = NEW_SECRET.into();
    world.set_secret(&secret.to_string()).await;
    let clicked = post(
        &api,
        slack::signed_event_with(
            NEW_SECRET,
            &click(&value, &slack.trigger(), &url, &message),
            now(),
        ),
    )
    .await;
    assert_eq!(clicked["statusCode"], 200, "{clicked}");
    assert_eq!(slack.opened().len(), 2);
    // The old secret no longer opens anything, and the secret is not read again for it.
    let old = post(
        &api,
        signed_event(&click(&value, &slack.trigger(), &url, &message), now()),
    )
    .await;
    assert_eq!(old["statusCode"], 401);
    assert_eq!(slack.opened().len(), 2);
    let output = process.output();
    assert!(!output.contains(NEW_SECRET));
    assert_nothing_secret(&world, &[&output]);
}
