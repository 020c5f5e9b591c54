//! Answering reviews through the release binary: the `reply` command and the manual `reply`
//! event (under the Lambda Runtime API double), against the App Store Connect and Google Play
//! doubles, moto and a webhook receiver.

mod support;

use std::process::Output;

use serde_json::{Value, json};
use support::asc::{AscConfig, error_body, review};
use support::play::{self, Denial, PlayDouble, play_review, real_now_secs};
use support::runtime_api::{Invocation, LambdaProcess};
use support::world::{INVOKE_TIMEOUT, World, assert_no_leaks, minutes_ago, ok};

const APP: &str = "8101";
const PACKAGE: &str = "com.example.answers";
const ANSWER: &str = "Thank you for telling us: version 2.1 fixes the crash at launch.";

/// `review-relay reply ARGS` in a child process, with the world's environment and `extra`.
fn reply_cli(world: &World, apps: &str, extra: &[(&str, String)], args: &[&str]) -> Output {
    std::process::Command::new(LambdaProcess::binary_path())
        .arg("reply")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(world.env(apps))
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run review-relay reply")
}

fn stdout(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            stderr(output)
        )
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn exit(output: &Output) -> Option<i32> {
    output.status.code()
}

/// The item of `pk` with sort key `sk`, if the table holds one.
async fn item(world: &World, pk: &str, sk: &str) -> Option<Value> {
    world.state_items().await.into_iter().find_map(|item| {
        let same = item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            == Some(pk)
            && item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some(sk);
        same.then(|| {
            let mut fields = serde_json::Map::new();
            for (name, value) in item {
                let value = match (value.as_s(), value.as_n()) {
                    (Ok(s), _) => json!(s),
                    (_, Ok(n)) => json!(n),
                    _ => Value::Null,
                };
                fields.insert(name, value);
            }
            Value::Object(fields)
        })
    })
}

fn play_env(play: &PlayDouble) -> Vec<(&'static str, String)> {
    vec![
        ("PLAY_PACKAGES", PACKAGE.to_owned()),
        ("PLAY_BASE_URL", play.base_url()),
    ]
}

/// No line of the Play key, no access token, no JWT.
fn assert_no_play_leaks(outputs: &[&str]) {
    let key_lines: Vec<String> = play::private_key_pem()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_owned)
        .collect();
    for output in outputs {
        for line in &key_lines {
            assert!(!output.contains(line.as_str()), "output leaks the Play key");
        }
        assert!(!output.contains("ya29."), "output leaks an access token");
        assert!(!output.contains("eyJ"), "output leaks a JWT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_store_review_is_answered_shown_noted_shown_again_with_its_edit_and_deleted() {
    let world = World::new(AscConfig::team()).await;
    let created = minutes_ago(30, -8);
    let first = review(
        "r1",
        &created,
        1,
        Some("Crashes"),
        Some("At launch"),
        Some("kim"),
        Some("USA"),
    );
    world.asc.set_reviews(APP, vec![first]);
    let slack = [("WEBHOOK_FORMAT", "slack")];
    let (api, process) = world.lambda_with(APP, &slack);
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    assert_eq!(world.receiver.accepted().len(), 1);

    let answered = reply_cli(
        &world,
        APP,
        &[],
        &["--app", APP, "r1", "--text", &format!("  {ANSWER}\n")],
    );
    assert_eq!(exit(&answered), Some(0), "{}", stderr(&answered));
    let printed = stdout(&answered);
    let (id, body, state) = world
        .asc
        .response(APP, "r1")
        .expect("the double keeps the answer");
    assert_eq!((body.as_str(), state.as_str()), (ANSWER, "PENDING_PUBLISH"));
    assert_eq!(
        printed,
        json!({"app_id": APP, "store": "app_store", "review_id": "r1", "action": "answered",
            "answer": {"id": id, "text": ANSWER, "state": "PENDING_PUBLISH",
                "last_modified": support::asc::RESPONSE_DATE}})
    );
    assert_eq!(
        world.asc.answer_bodies(),
        vec![json!({"data": {"type": "customerReviewResponses",
            "attributes": {"responseBody": ANSWER},
            "relationships": {"review": {"data": {"type": "customerReviews", "id": "r1"}}}}})]
    );
    // The audit line: the app, the store, the review, Apple's id, the length and a digest.
    let log = stderr(&answered);
    let audit = log
        .lines()
        .find(|l| l.contains("review answered"))
        .unwrap_or_else(|| panic!("no audit line: {log}"));
    for expected in [
        APP,
        "app_store",
        "r1",
        id.as_str(),
        &format!("length={}", ANSWER.chars().count()),
    ] {
        assert!(audit.contains(expected), "{expected} missing: {audit}");
    }
    assert!(!log.contains(ANSWER), "the text is not logged: {log}");
    let noted = item(&world, &format!("app#{APP}"), "reply#r1")
        .await
        .expect("noted");
    assert_eq!(noted["text"], ANSWER);
    assert_eq!(noted["length"], ANSWER.chars().count().to_string());
    let digest = noted["digest"].as_str().unwrap();
    assert_eq!(digest.len(), 16);
    assert!(audit.contains(digest), "{audit}");
    assert!(noted["expires_at"].as_str().is_some());

    let shown = reply_cli(&world, APP, &[], &["--show", "r1", "--app", APP]);
    assert_eq!(exit(&shown), Some(0), "{}", stderr(&shown));
    assert_eq!(stdout(&shown)["answer"]["text"], ANSWER);
    assert_eq!(stdout(&shown)["action"], "shown");

    // The reviewer edits the review while Apple has not yet published the answer (the list
    // leaves pending answers out): the message about the edit shows the answer all the same.
    let edited = review(
        "r1",
        &created,
        3,
        Some("Crashes"),
        Some("Better now"),
        Some("kim"),
        Some("USA"),
    );
    world.asc.set_reviews(APP, vec![edited]);
    ok(api.invoke(json!({}), INVOKE_TIMEOUT).await);
    let messages = world.receiver.accepted();
    assert_eq!(messages.len(), 2);
    assert!(
        !messages[0].body.contains("version 2.1"),
        "{}",
        messages[0].body
    );
    assert!(
        messages[1].body.contains("version 2.1 fixes the crash"),
        "{}",
        messages[1].body
    );
    assert!(
        messages[1].body.contains("Better now"),
        "{}",
        messages[1].body
    );

    // Deleted through the manual event.
    let deleted = ok(api
        .invoke(
            json!({"reply": {"app_id": APP, "review_id": "r1", "delete": true}}),
            INVOKE_TIMEOUT,
        )
        .await);
    assert_eq!(deleted["action"], "deleted", "{deleted}");
    assert_eq!(deleted["answer"]["text"], ANSWER, "{deleted}");
    assert!(world.asc.response(APP, "r1").is_none());
    assert!(
        item(&world, &format!("app#{APP}"), "reply#r1")
            .await
            .is_none()
    );
    process
        .wait_for_output("answer deleted", INVOKE_TIMEOUT)
        .await;
    let gone = reply_cli(&world, APP, &[], &["--app", APP, "r1", "--show"]);
    assert_eq!(exit(&gone), Some(0));
    assert_eq!(stdout(&gone)["answer"], Value::Null);

    let outputs = [answered, shown, gone]
        .iter()
        .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(o)))
        .collect::<Vec<_>>();
    let mut all: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let lambda_output = process.output();
    all.push(&lambda_output);
    assert!(
        !lambda_output.contains(ANSWER),
        "the Lambda's logs hold no answer text"
    );
    assert_no_leaks(&world, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apples_refusals_are_explained_roles_for_403_and_apples_detail_for_409_and_422() {
    let world = World::new(AscConfig::team()).await;
    world.asc.set_reviews(
        APP,
        vec![review(
            "r1",
            &minutes_ago(30, 0),
            2,
            None,
            Some("Meh"),
            None,
            None,
        )],
    );
    let answer = |review: &str| {
        reply_cli(
            &world,
            APP,
            &[],
            &["--app", APP, review, "--text", "Thanks"],
        )
    };

    world.asc.fail_answers_next(
        1,
        403,
        error_body(
            403,
            "FORBIDDEN_ERROR",
            "This request is forbidden for security reasons",
            "The API key in use does not allow this request",
        ),
    );
    let forbidden = answer("r1");
    assert_eq!(exit(&forbidden), Some(1));
    let log = stderr(&forbidden);
    assert!(
        log.contains("Account Holder, Admin, App Manager or Customer Support"),
        "{log}"
    );
    assert!(
        log.contains("some team keys with the Customer Support role have been refused"),
        "{log}"
    );
    assert!(
        stdout(&forbidden)["error"]
            .as_str()
            .unwrap()
            .contains("403")
    );

    for (status, code, detail) in [
        (409, "ENTITY_ERROR", "The review was removed by Apple"),
        (
            422,
            "ENTITY_UNPROCESSABLE",
            "The response body contains a link",
        ),
    ] {
        world
            .asc
            .fail_answers_next(1, status, error_body(status, code, "Refused", detail));
        let refused = answer("r1");
        assert_eq!(exit(&refused), Some(1));
        let log = stderr(&refused);
        assert!(
            log.contains(&format!("({status} {code}): {detail}")),
            "{log}"
        );
    }
    // An id Apple does not know: its own 409, explained from its body.
    let unknown = answer("no-such-review");
    assert_eq!(exit(&unknown), Some(1));
    assert!(
        stderr(&unknown).contains("There is no customerReviews resource with id 'no-such-review'"),
        "{}",
        stderr(&unknown)
    );
    assert!(
        world.asc.response(APP, "r1").is_none(),
        "nothing was answered"
    );
    assert!(
        item(&world, &format!("app#{APP}"), "reply#r1")
            .await
            .is_none()
    );
    assert_no_leaks(&world, &[&stderr(&forbidden), &stderr(&unknown)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_sent_is_refused_and_nothing_reaches_either_store() {
    let (world, play) = World::with_play().await;
    world.asc.set_reviews(
        APP,
        vec![review("r1", &minutes_ago(30, 0), 2, None, None, None, None)],
    );
    play.set_reviews(
        PACKAGE,
        vec![play_review(
            "gp:1",
            "Ana",
            "Slow",
            2,
            real_now_secs() - 600,
            "en",
        )],
    );
    let env = play_env(&play);
    let text_file = std::env::temp_dir().join(format!("answer-{}.txt", std::process::id()));
    std::fs::write(&text_file, "é".repeat(351)).unwrap();
    let text_file = text_file.to_string_lossy().into_owned();
    let over = "x".repeat(351);
    for (args, code, expected) in [
        (
            vec!["--app", "9999", "r1", "--text", "Hi"],
            1,
            "app 9999 is not relayed by this deployment: it is not in APP_IDS",
        ),
        (
            vec!["--app", "com.other.app", "gp:1", "--text", "Hi"],
            1,
            "not in PLAY_PACKAGES",
        ),
        (
            vec!["--app", APP, "r1", "--text", " \n "],
            1,
            "the answer is empty",
        ),
        (
            vec!["--app", PACKAGE, "gp:1", "--text", &over],
            1,
            "Google Play takes at most 350",
        ),
        (
            vec!["--app", PACKAGE, "gp:1", "--text-file", &text_file],
            1,
            "the answer is 351 characters",
        ),
        (
            vec!["--app", PACKAGE, "gp:1", "--delete"],
            1,
            "no way to delete a reply through its API",
        ),
        (
            vec!["--app", APP, "r1", "--text-file", "/no/such/file"],
            1,
            "cannot read the answer from `/no/such/file`",
        ),
        (
            vec!["--app", APP, "r1"],
            2,
            "give one of --text, --text-file, --delete or --show",
        ),
        (
            vec!["--app", APP, "r1", "--text", "a", "--delete"],
            2,
            "not several",
        ),
    ] {
        let output = reply_cli(&world, APP, &env, &args);
        assert_eq!(exit(&output), Some(code), "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
    assert!(
        world.asc.requests().is_empty(),
        "nothing reached App Store Connect"
    );
    assert!(play.requests().is_empty(), "nothing reached Google");
    assert!(world.state_items().await.is_empty(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_play_review_is_answered_by_a_manual_event_and_refusals_send_nothing() {
    let (world, play) = World::with_play().await;
    world.asc.set_reviews(APP, vec![]);
    play.set_reviews(
        PACKAGE,
        vec![play_review(
            "gp:r1",
            "Ana",
            "Slow\tToo slow",
            2,
            real_now_secs() - 600,
            "en",
        )],
    );
    let env = play_env(&play);
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (api, process) = world.lambda_with(APP, &extra);

    let sent = "Thanks <b>Ana</b>, 1.3 is faster";
    let answered = ok(api
        .invoke(
            json!({"reply": {"app_id": PACKAGE, "review_id": "gp:r1", "text": sent}}),
            INVOKE_TIMEOUT,
        )
        .await);
    let kept = "Thanks Ana, 1.3 is faster";
    assert_eq!(answered["store"], "google_play", "{answered}");
    assert_eq!(
        answered["answer"]["text"], kept,
        "Google strips HTML: {answered}"
    );
    assert!(
        answered["answer"]["last_modified"].as_str().is_some(),
        "{answered}"
    );
    assert!(
        answered["answer"].get("id").is_none(),
        "Google gives no id: {answered}"
    );
    assert_eq!(play.reply_bodies(), vec![json!({"replyText": sent})]);
    assert_eq!(play.reply_text(PACKAGE, "gp:r1").as_deref(), Some(kept));
    let noted = item(&world, &format!("play#{PACKAGE}"), "reply#gp:r1")
        .await
        .expect("noted");
    assert_eq!(noted["text"], kept);
    process
        .wait_for_output("review answered", INVOKE_TIMEOUT)
        .await;

    // Refused before anything is sent: combined with a run, over Google's limit, an app this
    // deployment does not relay.
    let over = "x".repeat(351);
    for (event, expected) in [
        (
            json!({"reply": {"app_id": PACKAGE, "review_id": "gp:r1", "text": "Hi"}, "dry_run": true}),
            "event field `reply` cannot be combined with `dry_run`",
        ),
        (
            json!({"reply": {"app_id": PACKAGE, "review_id": "gp:r1", "text": over}}),
            "Google Play takes at most 350",
        ),
        (
            json!({"reply": {"app_id": "com.other.app", "review_id": "gp:r1", "text": "Hi"}}),
            "not in PLAY_PACKAGES",
        ),
    ] {
        match api.invoke(event, INVOKE_TIMEOUT).await {
            Invocation::Err(err) => {
                assert_eq!(err["errorType"], "InvalidEvent", "{err}");
                assert!(
                    err["errorMessage"].as_str().unwrap().contains(expected),
                    "{err}"
                );
            }
            Invocation::Ok(answer) => panic!("accepted: {answer}"),
        }
    }
    assert_eq!(play.reply_bodies().len(), 1, "the refusals sent nothing");

    // The service account without "Reply to reviews".
    play.deny(PACKAGE, Denial::NoPermission);
    match api
        .invoke(
            json!({"reply": {"app_id": PACKAGE, "review_id": "gp:r1", "text": "Again"}}),
            INVOKE_TIMEOUT,
        )
        .await
    {
        Invocation::Err(err) => {
            assert_eq!(err["errorType"], "RunFailed", "{err}");
            let message = err["errorMessage"].as_str().unwrap();
            assert!(
                message.contains("give it the permission \"Reply to reviews\""),
                "{message}"
            );
        }
        Invocation::Ok(answer) => panic!("accepted: {answer}"),
    }
    assert_eq!(
        play.reply_text(PACKAGE, "gp:r1").as_deref(),
        Some(kept),
        "unchanged"
    );
    play.allow(PACKAGE);

    let shown = reply_cli(&world, APP, &env, &["--app", PACKAGE, "gp:r1", "--show"]);
    assert_eq!(exit(&shown), Some(0), "{}", stderr(&shown));
    assert_eq!(stdout(&shown)["answer"]["text"], kept);

    let output = process.output();
    assert!(
        !output.contains(kept) && !output.contains("Ana</b>"),
        "no answer text in the logs"
    );
    assert_no_play_leaks(&[&output, &stderr(&shown)]);
}
