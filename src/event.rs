//! What an invocation's event asks for. Scheduled events (EventBridge Scheduler, EventBridge
//! rules) run every app; a manual event may ask for a subset, a dry run, a replay or a test
//! message, or answer a review (`reply`, alone), and anything else in it is refused before a
//! request is made.

use serde_json::{Map, Value};

use crate::config::Config;
use crate::domain::{AppId, Store, max_reach_hours};
use crate::reply::{RawAction, ReplyRequest};

/// The fields a manual event may hold. A new kind of manual event adds its field here.
pub const MANUAL_FIELDS: &[&str] = &[
    "app_ids",
    "dry_run",
    "backfill_hours",
    "test_message",
    "reply",
];

/// The fields of a manual event's `reply`.
pub const REPLY_FIELDS: &[&str] = &["app_id", "review_id", "text", "delete"];

/// The `source` of the events that schedules send.
pub const SCHEDULED_SOURCES: &[&str] = &["aws.scheduler", "aws.events"];

/// Of the manual fields, those a scheduled event may carry as well (set in a schedule's input,
/// so one schedule can run some apps and another schedule the rest). The others are for runs
/// someone starts by hand; a schedule carrying them is refused.
pub const SCHEDULED_FIELDS: &[&str] = &["app_ids"];

/// An event that cannot be run: the caller's mistake, named. Nothing was sent or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventRefused(pub String);

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub apps: Vec<AppId>,
    pub dry_run: bool,
    /// Replay reviews created in the last N hours that were not delivered.
    pub replay_hours: Option<u32>,
    pub test_message: bool,
    /// Answer a review instead of running: `{"reply": {"app_id", "review_id", "text"}}` (or
    /// `"delete": true`), alone in its event.
    pub reply: Option<ReplyRequest>,
}

impl Request {
    /// Reads an event. A scheduled event's own fields are ignored; a manual event holds only
    /// [`MANUAL_FIELDS`]: `"app_ids": [...]` (a subset of `APP_IDS`), `"dry_run": true`,
    /// `"backfill_hours": N` and `"test_message": true`. `null` reads as `{}`.
    pub fn from_event(event: &Value, config: &Config) -> Result<Self, EventRefused> {
        let empty = Map::new();
        let fields = match event {
            Value::Object(fields) => fields,
            Value::Null => &empty,
            other => {
                return Err(refused(format!(
                    "the event must be a JSON object such as `{{}}` or `{{\"dry_run\": true}}`, not {}",
                    kind_of(other)
                )));
            }
        };
        check_fields(fields)?;
        if let Some(reply) = fields.get("reply") {
            let others: Vec<&str> = fields
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "reply")
                .collect();
            if !others.is_empty() {
                return Err(refused(format!(
                    "event field `reply` cannot be combined with {}: answer a review in an event of its own",
                    quoted(&others)
                )));
            }
            let request = reply_from_event(reply, config)?;
            return Ok(Self {
                apps: vec![request.app.clone()],
                dry_run: false,
                replay_hours: None,
                test_message: false,
                reply: Some(request),
            });
        }

        let flag = |name: &str| match fields.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(refused(format!(
                "event field `{name}` must be true or false, not `{other}`"
            ))),
        };
        let dry_run = flag("dry_run")?;
        let test_message = flag("test_message")?;
        let max_replay = max_reach_hours(config.retention_days);
        let replay_hours = match fields.get("backfill_hours") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let hours = value.as_u64().ok_or_else(|| {
                    refused(format!(
                        "event field `backfill_hours` must be a whole number of hours, not `{value}`"
                    ))
                })?;
                if hours > u64::from(max_replay) {
                    return Err(refused(format!(
                        "event field `backfill_hours` is {hours}, but delivered reviews are \
                         remembered for {} days (DELIVERED_RETENTION_DAYS), so a replay reaches \
                         back at most {max_replay} hours; a longer one could send reviews twice",
                        config.retention_days
                    )));
                }
                Some(hours as u32)
            }
        };
        if test_message && (dry_run || replay_hours.is_some()) {
            return Err(refused(
                "event field `test_message` cannot be combined with `dry_run` or `backfill_hours`"
                    .into(),
            ));
        }
        Ok(Self {
            apps: apps_from_event(fields, &config.app_ids)?,
            dry_run,
            replay_hours,
            test_message,
            reply: None,
        })
    }
}

/// `{"app_id": "...", "review_id": "...", "text": "..."}` or `{..., "delete": true}`, checked
/// against the deployment as the `reply` command checks its arguments.
fn reply_from_event(value: &Value, config: &Config) -> Result<ReplyRequest, EventRefused> {
    let Value::Object(fields) = value else {
        return Err(refused(
            "event field `reply` must be an object such as `{\"app_id\": \"123\", \"review_id\": \"abc\", \"text\": \"Thanks!\"}`".into(),
        ));
    };
    let unknown: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|k| !REPLY_FIELDS.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(refused(format!(
            "`reply` holds {} it does not know: it may hold {}",
            quoted(&unknown),
            quoted(REPLY_FIELDS)
        )));
    }
    let string = |name: &str| match fields.get(name) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if name == "app_id" => Ok(Some(n.to_string())),
        None | Some(Value::Null) => Ok(None),
        // The value is not repeated: it may be the answer's text.
        Some(other) => Err(refused(format!(
            "`reply.{name}` must be a string, not {}",
            kind_of(other)
        ))),
    };
    let app = string("app_id")?.ok_or_else(|| refused("`reply.app_id` is missing".into()))?;
    let review_id =
        string("review_id")?.ok_or_else(|| refused("`reply.review_id` is missing".into()))?;
    let delete = match fields.get("delete") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => {
            return Err(refused(format!(
                "`reply.delete` must be true or false, not `{other}`"
            )));
        }
    };
    let action = match (string("text")?, delete) {
        (Some(_), true) => {
            return Err(refused(
                "`reply` holds both `text` and `delete`: give the text to answer, or `\"delete\": true` to remove the answer".into(),
            ));
        }
        (Some(text), false) => RawAction::Answer(text),
        (None, true) => RawAction::Delete,
        (None, false) => {
            return Err(refused(
                "`reply` needs `text` (the answer) or `\"delete\": true`".into(),
            ));
        }
    };
    ReplyRequest::new(&app, &review_id, action, &config.app_ids)
        .map_err(|e| refused(format!("`reply`: {e}")))
}

fn refused(message: String) -> EventRefused {
    EventRefused(format!("{message}; nothing was sent or written"))
}

/// Refuses a manual event holding a field outside [`MANUAL_FIELDS`], or a scheduled event
/// holding a manual-only field.
fn check_fields(fields: &Map<String, Value>) -> Result<(), EventRefused> {
    let source = fields.get("source").and_then(Value::as_str);
    if let Some(source) = source.filter(|s| SCHEDULED_SOURCES.contains(s)) {
        let manual_only: Vec<&str> = fields
            .keys()
            .map(String::as_str)
            .filter(|k| MANUAL_FIELDS.contains(k) && !SCHEDULED_FIELDS.contains(k))
            .collect();
        if !manual_only.is_empty() {
            return Err(refused(format!(
                "{} for runs started by hand; a scheduled event (source `{source}`) may carry only {}",
                fields_are(&manual_only),
                quoted(SCHEDULED_FIELDS)
            )));
        }
        return Ok(());
    }
    let unknown: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|k| !MANUAL_FIELDS.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let hints: Vec<String> = unknown
        .iter()
        .filter_map(|field| nearest(field).map(|known| format!("`{field}` → `{known}`")))
        .collect();
    let hint = if hints.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", hints.join(", "))
    };
    Err(refused(format!(
        "{} not known{hint}: a manual event may hold {}, and a scheduled one has `source` `{}`",
        fields_are(&unknown),
        quoted(MANUAL_FIELDS),
        SCHEDULED_SOURCES.join("` or `")
    )))
}

fn fields_are(fields: &[&str]) -> String {
    match fields {
        [one] => format!("event field `{one}` is"),
        many => format!("event fields {} are", quoted(many)),
    }
}

fn quoted(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The allowed field a mistyped one most likely meant: the same but for case and separators,
/// the start of one, or a letter or two away.
fn nearest(field: &str) -> Option<&'static str> {
    let plain = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let typed = plain(field);
    if typed.is_empty() {
        return None;
    }
    MANUAL_FIELDS
        .iter()
        .map(|known| {
            let candidate = plain(known);
            let score = if candidate == typed {
                0
            } else if candidate.starts_with(&typed) && typed.len() >= 4 {
                1
            } else {
                1 + edit_distance(&typed, &candidate)
            };
            (score, *known)
        })
        .filter(|(score, _)| *score <= 3)
        .min_by_key(|(score, _)| *score)
        .map(|(_, known)| known)
}

/// Levenshtein distance over bytes (the fields are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The apps to run: all of `APP_IDS`, or the subset an event names in `"app_ids"` (strings or
/// numbers). Naming an app outside `APP_IDS`, or none, is refused.
pub fn apps_from_event(
    fields: &Map<String, Value>,
    configured: &[AppId],
) -> Result<Vec<AppId>, EventRefused> {
    let Some(requested) = fields.get("app_ids") else {
        return Ok(configured.to_vec());
    };
    let Some(requested) = requested.as_array() else {
        return Err(refused(
            "event field `app_ids` must be a list of app ids".into(),
        ));
    };
    if requested.is_empty() {
        return Err(refused(
            "event field `app_ids` is empty; leave it out to run every app in APP_IDS".into(),
        ));
    }
    let mut apps = Vec::new();
    for value in requested {
        let raw = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(refused(format!(
                    "event field `app_ids` holds `{other}`, not an app id"
                )));
            }
        };
        let app =
            AppId::parse_any(&raw).map_err(|e| refused(format!("event field `app_ids`: {e}")))?;
        if !configured.contains(&app) {
            return Err(refused(format!(
                "event field `app_ids` names app {app}, which is not in {}",
                match app.store() {
                    Store::AppStore => "APP_IDS",
                    Store::GooglePlay => "PLAY_PACKAGES",
                }
            )));
        }
        if !apps.contains(&app) {
            apps.push(app);
        }
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Config {
        let vars = [
            ("APP_IDS", "1,2"),
            ("SECRET_ID", "s"),
            ("TABLE_NAME", "t"),
            ("DELIVERED_RETENTION_DAYS", "10"),
            ("OVERLAP_HOURS", "48"),
        ];
        Config::from_vars(
            &vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn ids(raw: &[&str]) -> Vec<AppId> {
        raw.iter().map(|r| AppId::parse(r).unwrap()).collect()
    }

    fn refusal(event: Value) -> String {
        Request::from_event(&event, &config()).unwrap_err().0
    }

    #[test]
    fn manual_events_ask_for_a_dry_run_a_replay_or_a_test_message() {
        let config = config();
        let plain = Request::from_event(&json!({"source": "aws.scheduler"}), &config).unwrap();
        assert_eq!(
            plain,
            Request {
                apps: ids(&["1", "2"]),
                dry_run: false,
                replay_hours: None,
                test_message: false,
                reply: None
            }
        );
        let dry = Request::from_event(
            &json!({"dry_run": true, "backfill_hours": 238, "app_ids": ["2"]}),
            &config,
        )
        .unwrap();
        assert_eq!((dry.dry_run, dry.replay_hours), (true, Some(238)));
        assert_eq!(dry.apps, ids(&["2"]));
        let test = Request::from_event(&json!({"test_message": true}), &config).unwrap();
        assert!(test.test_message);
    }

    #[test]
    fn manual_events_that_cannot_be_run_say_why() {
        let cases = [
            (json!({"dry_run": "yes"}), "`dry_run` must be true or false"),
            (json!({"backfill_hours": -1}), "whole number of hours"),
            (json!({"backfill_hours": 2.5}), "whole number of hours"),
            (json!({"backfill_hours": 239}), "at most 238 hours"),
            (
                json!({"test_message": true, "dry_run": true}),
                "cannot be combined",
            ),
            (json!([1]), "must be a JSON object"),
            (json!("run"), "not a string"),
        ];
        for (event, expected) in cases {
            let message = refusal(event.clone());
            assert!(message.contains(expected), "{event}: {message}");
            assert!(
                message.ends_with("nothing was sent or written"),
                "{message}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_refused_with_the_nearest_allowed_one() {
        for (field, meant) in [
            ("dryrun", "dry_run"),
            ("dryRun", "dry_run"),
            ("DRY-RUN", "dry_run"),
            ("backfill", "backfill_hours"),
            ("backfil_hours", "backfill_hours"),
            ("app_id", "app_ids"),
            ("appIds", "app_ids"),
            ("test", "test_message"),
            ("testmessage", "test_message"),
        ] {
            let message = refusal(json!({ field: true }));
            assert!(
                message.contains(&format!(
                    "event field `{field}` is not known (did you mean `{field}` → `{meant}`?)"
                )),
                "{field}: {message}"
            );
            for allowed in MANUAL_FIELDS {
                assert!(message.contains(&format!("`{allowed}`")), "{message}");
            }
        }
    }

    #[test]
    fn the_consoles_sample_event_is_refused_naming_every_field() {
        let message = refusal(json!({"key1": "value1", "key2": "value2", "key3": "value3"}));
        assert!(
            message.starts_with("event fields `key1`, `key2`, `key3` are not known: a manual event may hold `app_ids`, `dry_run`, `backfill_hours`, `test_message`"),
            "{message}"
        );
        assert!(!message.contains("did you mean"), "{message}");
    }

    #[test]
    fn a_reply_event_is_checked_and_stands_alone() {
        let config = config();
        let request = Request::from_event(
            &json!({"reply": {"app_id": 2, "review_id": "r1", "text": " Thanks "}}),
            &config,
        )
        .unwrap();
        assert_eq!(request.apps, ids(&["2"]));
        let reply = request.reply.unwrap();
        assert_eq!(reply.review_id, "r1");
        assert!(
            matches!(reply.action, crate::reply::Action::Answer(ref t) if t.as_str() == "Thanks")
        );
        let delete = Request::from_event(
            &json!({"reply": {"app_id": "1", "review_id": "r1", "delete": true}}),
            &config,
        )
        .unwrap();
        assert_eq!(delete.reply.unwrap().action, crate::reply::Action::Delete);
        let cases = [
            (
                json!({"reply": {"app_id": "1", "review_id": "r", "text": "x"}, "dry_run": true}),
                "event field `reply` cannot be combined with `dry_run`",
            ),
            (json!({"reply": "x"}), "must be an object"),
            (
                json!({"reply": {"app_id": "1", "review_id": "r", "txt": "x"}}),
                "`reply` holds `txt` it does not know",
            ),
            (
                json!({"reply": {"review_id": "r", "text": "x"}}),
                "`reply.app_id` is missing",
            ),
            (
                json!({"reply": {"app_id": "1", "review_id": "r"}}),
                "needs `text` (the answer) or",
            ),
            (
                json!({"reply": {"app_id": "1", "review_id": "r", "text": "x", "delete": true}}),
                "both `text` and `delete`",
            ),
            (
                json!({"reply": {"app_id": "1", "review_id": "r", "text": 5}}),
                "`reply.text` must be a string, not a number",
            ),
            (
                json!({"reply": {"app_id": "3", "review_id": "r", "text": "x"}}),
                "app 3 is not relayed by this deployment",
            ),
            (
                json!({"reply": {"app_id": "1", "review_id": "r", "text": " "}}),
                "the answer is empty",
            ),
            (
                json!({"source": "aws.scheduler", "reply": {}}),
                "event field `reply` is for runs started by hand",
            ),
        ];
        for (event, expected) in cases {
            let message = refusal(event);
            assert!(message.contains(expected), "{message}");
            assert!(
                message.ends_with("nothing was sent or written"),
                "{message}"
            );
        }
    }

    #[test]
    fn the_sample_reply_event_answers_a_review() {
        let vars = [
            ("APP_IDS", "1234567890"),
            ("SECRET_ID", "s"),
            ("TABLE_NAME", "t"),
        ];
        let config = Config::from_vars(
            &vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap();
        let event: Value = serde_json::from_str(include_str!("../events/reply.json")).unwrap();
        let reply = Request::from_event(&event, &config).unwrap().reply.unwrap();
        assert_eq!(reply.app, AppId::parse("1234567890").unwrap());
        assert!(matches!(reply.action, crate::reply::Action::Answer(_)));
    }

    #[test]
    fn scheduled_events_ignore_their_own_fields_and_may_carry_app_ids_only() {
        let config = config();
        for event in [
            json!({"source": "aws.scheduler", "scheduled_time": "x", "execution_id": "y"}),
            json!({"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        ] {
            let request = Request::from_event(&event, &config).unwrap();
            assert_eq!(request.apps, ids(&["1", "2"]));
        }
        let subset = Request::from_event(
            &json!({"source": "aws.scheduler", "app_ids": ["2"]}),
            &config,
        )
        .unwrap();
        assert_eq!(subset.apps, ids(&["2"]));
        let message = refusal(json!({"source": "aws.scheduler", "dry_run": true}));
        assert!(
            message.contains("event field `dry_run` is for runs started by hand; a scheduled event (source `aws.scheduler`) may carry only `app_ids`"),
            "{message}"
        );
        // Another source is not a schedule: its fields are checked as a manual event's.
        let message = refusal(json!({"source": "my.app"}));
        assert!(
            message.contains("event field `source` is not known"),
            "{message}"
        );
    }

    #[test]
    fn empty_and_null_events_run_every_app() {
        let config = config();
        for event in [json!({}), json!(null)] {
            assert_eq!(
                Request::from_event(&event, &config).unwrap().apps,
                ids(&["1", "2"])
            );
        }
    }

    #[test]
    fn a_manual_event_runs_a_subset() {
        let config = config();
        let event = json!({"app_ids": ["2", 1, "2"]});
        assert_eq!(
            Request::from_event(&event, &config).unwrap().apps,
            ids(&["2", "1"])
        );
    }

    #[test]
    fn unknown_empty_or_malformed_app_ids_are_refused_with_the_reason() {
        let cases = [
            (json!({"app_ids": "1"}), "must be a list"),
            (json!({"app_ids": []}), "`app_ids` is empty"),
            (json!({"app_ids": [true]}), "not an app id"),
            (
                json!({"app_ids": ["abc"]}),
                "neither a numeric App Store app id nor a Google Play package name",
            ),
            (json!({"app_ids": ["3"]}), "not in APP_IDS"),
            (
                json!({"app_ids": ["com.example.app"]}),
                "not in PLAY_PACKAGES",
            ),
        ];
        for (event, expected) in cases {
            let message = refusal(event);
            assert!(message.contains(expected), "{message}");
        }
    }
}
