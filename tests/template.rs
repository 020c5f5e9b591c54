//! template.yaml and the code must agree: the table's keys and TTL, least-privilege IAM, the
//! parameters' bounds, and the deploy-time properties a user would otherwise find out in AWS (the
//! architecture, the schedule's name, retries, log levels, alarms).

mod support;

use std::collections::HashMap;
use std::process::Command;

use review_relay::adapters::dynamodb::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use review_relay::config::Config;
use review_relay::domain::max_reach_hours;
use serde_norway::Value;
use support::template::{
    literal, parameter, render, resource, table_properties, tagged, template, template_path,
};

fn key_of(props: &Value, key_type: &str) -> String {
    let schema = props["KeySchema"].as_sequence().expect("KeySchema list");
    let entry = schema
        .iter()
        .find(|k| k["KeyType"].as_str() == Some(key_type))
        .unwrap_or_else(|| panic!("no {key_type} key in the template's table"));
    entry["AttributeName"].as_str().unwrap().to_owned()
}

fn attribute_type(props: &Value, name: &str) -> String {
    props["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions list")
        .iter()
        .find(|a| a["AttributeName"].as_str() == Some(name))
        .and_then(|a| a["AttributeType"].as_str())
        .unwrap_or_else(|| panic!("attribute {name} is not defined"))
        .to_owned()
}

#[test]
fn the_table_has_the_keys_and_ttl_the_code_writes() {
    let props = table_properties();
    assert_eq!(key_of(&props, "HASH"), PARTITION_KEY);
    assert_eq!(key_of(&props, "RANGE"), SORT_KEY);
    assert_eq!(attribute_type(&props, PARTITION_KEY), "S");
    assert_eq!(attribute_type(&props, SORT_KEY), "S");
    assert_eq!(props["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    let ttl = &props["TimeToLiveSpecification"];
    assert_eq!(ttl["AttributeName"].as_str(), Some(TTL_ATTRIBUTE));
    assert_eq!(ttl["Enabled"].as_bool(), Some(true));
    assert_eq!(
        props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
}

fn function_properties(doc: &Value) -> &Value {
    &resource(doc, "RelayFunction")["Properties"]
}

/// Every `AWS::Serverless::Function` of the template, by name.
fn serverless_functions(doc: &Value) -> Vec<(&str, &Value)> {
    doc["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(name, r)| (name.as_str().expect("resource name"), r))
        .collect()
}

/// A plain number in the template (not an intrinsic).
fn number(value: &Value, what: &str) -> u64 {
    literal(value)
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{what} must be a plain number, got {}", render(value)))
}

fn is_ref(value: &Value, name: &str) -> bool {
    tagged(value, "Ref").and_then(Value::as_str) == Some(name)
}

// --- Architecture -------------------------------------------------------------------------

/// `sam build` reads the functions' `Architectures` (set once, in `Globals`, for both), `sam
/// deploy` never changes it, and the Makefile greps the same line: one literal value, no
/// parameter that could differ at deploy.
#[test]
fn the_architecture_is_one_literal_line_and_no_parameter() {
    let doc = template();
    let parameters = doc["Parameters"].as_mapping().expect("Parameters mapping");
    for name in parameters.keys().filter_map(Value::as_str) {
        assert!(
            !name.to_ascii_lowercase().contains("architecture"),
            "parameter `{name}` would let deploy pick an architecture that `sam build` did not build"
        );
    }
    for (name, function) in serverless_functions(&doc) {
        assert!(
            function["Properties"].get("Architectures").is_none(),
            "{name} sets its own Architectures; set it once, under Globals: Function:"
        );
    }
    let archs = doc["Globals"]["Function"]["Architectures"]
        .as_sequence()
        .expect("Globals: Function: needs Architectures: [x86_64] or [arm64]");
    assert_eq!(archs.len(), 1, "exactly one architecture");
    let arch = literal(&archs[0]).unwrap_or_else(|| {
        panic!(
            "the architecture must be a literal, not {}",
            render(&archs[0])
        )
    });
    assert!(
        ["x86_64", "arm64"].contains(&arch.as_str()),
        "unknown architecture {arch}"
    );

    // The line the Makefile reads (`sed` on `Architectures: [...]`), once in the file.
    let text = std::fs::read_to_string(template_path()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Architectures:"))
        .collect();
    assert_eq!(lines, [format!("Architectures: [{arch}]")]);
}

// --- The schedule and retries -------------------------------------------------------------

/// A fixed schedule name (SAM's default) collides with a second stack in the account and region.
#[test]
fn the_schedule_lets_cloudformation_name_it() {
    let doc = template();
    let schedule = &function_properties(&doc)["Events"]["Schedule"];
    assert_eq!(schedule["Type"].as_str(), Some("ScheduleV2"));
    let props = &schedule["Properties"];
    assert_eq!(props["OmitName"].as_bool(), Some(true), "OmitName: true");
    assert!(props.get("Name").is_none(), "no fixed Name");
}

/// A failed run is not run again (three runs per tick against a webhook answering 4xx) and a
/// delayed event is dropped within a minute: the next tick resumes.
#[test]
fn a_failed_or_late_run_is_left_to_the_next_tick() {
    let doc = template();
    let invoke = &function_properties(&doc)["EventInvokeConfig"];
    assert_eq!(
        number(&invoke["MaximumRetryAttempts"], "MaximumRetryAttempts"),
        0
    );
    // Lambda's minimum is 60 s; a schedule fires at most once a minute.
    assert_eq!(
        number(
            &invoke["MaximumEventAgeInSeconds"],
            "MaximumEventAgeInSeconds"
        ),
        60
    );

    let retry = &function_properties(&doc)["Events"]["Schedule"]["Properties"]["RetryPolicy"];
    assert_eq!(
        number(
            &retry["MaximumRetryAttempts"],
            "RetryPolicy.MaximumRetryAttempts"
        ),
        0
    );
    assert_eq!(
        number(
            &retry["MaximumEventAgeInSeconds"],
            "RetryPolicy.MaximumEventAgeInSeconds"
        ),
        60
    );
}

// --- Logs ---------------------------------------------------------------------------------

/// Lambda drops application log lines below `ApplicationLogLevel`; the metrics line and the
/// `run finished` summary are INFO, so no level above INFO may be offered.
#[test]
fn only_log_levels_that_keep_the_summary_and_the_metrics() {
    let doc = template();
    let level = parameter(&doc, "LogLevel");
    let allowed: Vec<String> = level["AllowedValues"]
        .as_sequence()
        .expect("LogLevel AllowedValues")
        .iter()
        .filter_map(literal)
        .collect();
    assert_eq!(allowed, ["DEBUG", "INFO"]);
    assert_eq!(literal(&level["Default"]).as_deref(), Some("INFO"));
    assert!(is_ref(
        &function_properties(&doc)["LoggingConfig"]["ApplicationLogLevel"],
        "LogLevel"
    ));
}

// --- IAM ----------------------------------------------------------------------------------

/// Everything the function's role allows, on what: the calls the code makes and nothing more.
/// A new call in the code adds its line here (and its statement in template.yaml).
const GRANTS: &[(&str, &str)] = &[
    ("logs:CreateLogStream", "!GetAtt RelayLogGroup.Arn"),
    ("logs:PutLogEvents", "!GetAtt RelayLogGroup.Arn"),
    ("dynamodb:Query", "!GetAtt StateTable.Arn"),
    ("dynamodb:PutItem", "!GetAtt StateTable.Arn"),
    // TransactWriteItems is authorised by its items' actions: updates, and puts (above).
    ("dynamodb:UpdateItem", "!GetAtt StateTable.Arn"),
    // A Google Play edit of a review delivered before the overlap window finds its record by id.
    ("dynamodb:BatchGetItem", "!GetAtt StateTable.Arn"),
    // A reply event that deletes an App Store answer removes its note, `reply#<review id>`.
    ("dynamodb:DeleteItem", "!GetAtt StateTable.Arn"),
    ("secretsmanager:GetSecretValue", "!Ref SecretArn"),
];

/// The role's statements: the plain ones, and those under `!If [condition, statement, NoValue]`.
fn role_statements<'a>(doc: &'a Value, name: &str) -> (Vec<&'a Value>, Vec<(String, &'a Value)>) {
    let role = resource(doc, name);
    assert_eq!(role["Type"].as_str(), Some("AWS::IAM::Role"));
    assert!(
        role["Properties"].get("ManagedPolicyArns").is_none(),
        "no managed policies: they grant more than the code calls"
    );
    let mut plain = Vec::new();
    let mut conditional = Vec::new();
    for policy in role["Properties"]["Policies"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{name} Policies"))
    {
        let statements = policy["PolicyDocument"]["Statement"]
            .as_sequence()
            .expect("Statement list");
        for statement in statements {
            match tagged(statement, "If").and_then(Value::as_sequence) {
                Some(branches) => {
                    let [condition, then, otherwise] = branches.as_slice() else {
                        panic!("!If takes three arguments: {}", render(statement));
                    };
                    assert!(
                        is_ref(otherwise, "AWS::NoValue"),
                        "a conditional statement is either there or not"
                    );
                    conditional.push((literal(condition).expect("condition name"), then));
                }
                None => plain.push(statement),
            }
        }
    }
    (plain, conditional)
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::Sequence(items) => items.iter().filter_map(literal).collect(),
        one => literal(one).into_iter().collect(),
    }
}

#[test]
fn the_function_role_grants_exactly_what_the_code_calls() {
    let doc = template();
    let function = function_properties(&doc);
    assert_eq!(
        tagged(&function["Role"], "GetAtt").and_then(Value::as_str),
        Some("RelayRole.Arn"),
        "the function uses the role defined here"
    );
    assert!(
        function.get("Policies").is_none(),
        "SAM policies would add a second role; grant in RelayRole"
    );

    let (plain, _) = role_statements(&doc, "RelayRole");
    assert_eq!(grants(&plain), expected_grants(GRANTS));
}

/// (action, resource) for each action of each plain, unconditional Allow statement, sorted.
fn grants(statements: &[&Value]) -> Vec<(String, String)> {
    let mut granted: Vec<(String, String)> = Vec::new();
    for statement in statements {
        assert_eq!(statement["Effect"].as_str(), Some("Allow"));
        assert!(
            statement.get("Condition").is_none(),
            "an unconditional grant"
        );
        let resource = render(&statement["Resource"]);
        for action in actions(statement) {
            granted.push((action, resource.clone()));
        }
    }
    granted.sort();
    granted
}

fn expected_grants(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut expected: Vec<(String, String)> = list
        .iter()
        .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
        .collect();
    expected.sort();
    expected
}

#[test]
fn a_customer_managed_key_is_used_only_through_secrets_manager() {
    let doc = template();
    let kms_key = parameter(&doc, "SecretKmsKeyArn");
    assert_eq!(
        literal(&kms_key["Default"]).as_deref(),
        Some(""),
        "off unless asked"
    );
    assert_eq!(
        render(&doc["Conditions"]["HasSecretKmsKey"]),
        "!Not [!Equals [!Ref SecretKmsKeyArn, ]]"
    );

    // Both functions read the secret.
    for role in ["RelayRole", "SlackInteractionsRole"] {
        let (_, conditional) = role_statements(&doc, role);
        let [(condition, statement)] = conditional.as_slice() else {
            panic!("{role}: one conditional statement, the key's");
        };
        assert_eq!(condition, "HasSecretKmsKey");
        assert_eq!(statement["Effect"].as_str(), Some("Allow"));
        assert_eq!(actions(statement), ["kms:Decrypt"]);
        assert!(is_ref(&statement["Resource"], "SecretKmsKeyArn"));
        assert_eq!(
            render(&statement["Condition"]),
            "{StringEquals: {kms:ViaService: !Sub secretsmanager.${AWS::Region}.amazonaws.com}}"
        );
    }
}

/// Every `Resource` value anywhere in the template, with where it was found.
fn resources<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                let name = key.as_str().unwrap_or("?");
                let here = format!("{path}/{name}");
                if name == "Resource" {
                    out.push((here.clone(), child));
                }
                resources(child, here, out);
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                resources(child, format!("{path}[{i}]"), out);
            }
        }
        Value::Tagged(tagged) => resources(&tagged.value, path, out),
        _ => {}
    }
}

#[test]
fn no_iam_statement_grants_every_resource() {
    let doc = template();
    let mut found = Vec::new();
    resources(&doc, String::new(), &mut found);
    assert!(!found.is_empty());
    for (path, value) in found {
        let values: Vec<&Value> = match value {
            Value::Sequence(items) => items.iter().collect(),
            other => vec![other],
        };
        assert!(
            values.iter().all(|v| literal(v).as_deref() != Some("*")),
            "{path} grants `*`; scope it to the table or the secret"
        );
    }
}

// --- Parameters the code also checks ------------------------------------------------------

fn config_with(extra: &[(&str, &str)]) -> Result<Config, String> {
    let mut vars: HashMap<String, String> = [
        ("APP_IDS", "123"),
        ("SECRET_ID", "review-relay"),
        ("TABLE_NAME", "relay"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_vars(&vars).map_err(|e| e.to_string())
}

/// A parameter's bounds are exactly what the code accepts in its variable: a deploy the
/// template allows never stops the function at start, and the template refuses nothing the code
/// takes.
#[test]
fn hour_parameters_have_the_codes_bounds() {
    let doc = template();
    let env = &function_properties(&doc)["Environment"]["Variables"];
    // The template leaves the retention at the code's default.
    assert!(env.get("DELIVERED_RETENTION_DAYS").is_none());
    let retention = config_with(&[]).unwrap().retention_days;

    for (name, var) in [
        ("BackfillHours", "BACKFILL_HOURS"),
        ("OverlapHours", "OVERLAP_HOURS"),
    ] {
        assert!(is_ref(&env[var], name), "{var} comes from {name}");
        let param = parameter(&doc, name);
        let min = number(&param["MinValue"], "MinValue");
        let max = number(&param["MaxValue"], "MaxValue");
        let default = number(&param["Default"], "Default");
        assert_eq!(min, 0, "{name}");
        assert_eq!(max, u64::from(max_reach_hours(retention)), "{name}");
        for ok in [min, default, max] {
            config_with(&[(var, &ok.to_string())])
                .unwrap_or_else(|e| panic!("{name} allows {ok} but the code refuses it: {e}"));
        }
        let over = (max + 1).to_string();
        assert!(
            config_with(&[(var, &over)]).is_err(),
            "{name} refuses {over}, and so must the code"
        );
    }
}

/// Whether each sample matches the CloudFormation `AllowedPattern` (a Java regex matched against
/// the whole value; Python's `re.fullmatch` agrees on the constructs used here).
fn pattern_matches(pattern: &str, samples: &[&str]) -> Vec<bool> {
    let script = "import re, sys\nfor s in sys.argv[2:]: print(int(re.fullmatch(sys.argv[1], s) is not None))";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(pattern)
        .args(samples)
        .output()
        .expect("python3 runs the template's patterns");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l == "1")
        .collect()
}

fn allowed_pattern(doc: &Value, name: &str) -> String {
    literal(&parameter(doc, name)["AllowedPattern"])
        .unwrap_or_else(|| panic!("{name} has an AllowedPattern"))
}

#[test]
fn app_ids_pattern_takes_what_the_code_takes() {
    let doc = template();
    let pattern = allowed_pattern(&doc, "AppIds");
    let samples = [
        "1234567890",
        "123,456",
        "123, 456",
        "123 ,456, 789",
        " 123 ",
        "",
        "abc",
        "123;456",
        "12 34",
        "123,abc",
        "-5",
    ];
    let by_template = pattern_matches(&pattern, &samples);
    for (sample, allowed) in samples.iter().zip(by_template) {
        // With a Play app beside it, as the template's rule requires of an empty AppIds.
        let by_code =
            config_with(&[("APP_IDS", sample), ("PLAY_PACKAGES", "com.example.app")]).is_ok();
        assert_eq!(
            allowed, by_code,
            "AppIds `{sample}`: the template says {allowed}, the code {by_code}"
        );
    }
}

#[test]
fn play_packages_pattern_takes_what_the_code_takes() {
    let doc = template();
    let pattern = allowed_pattern(&doc, "PlayPackages");
    let samples = [
        "com.example.app",
        "com.example.app,org.x_y.App2",
        " com.example.app , a.b ",
        "",
        "app",
        "com..app",
        "com.1app",
        "com.exa-mple",
        "com.example.app;a.b",
        "123",
        ".com.app",
    ];
    let by_template = pattern_matches(&pattern, &samples);
    for (sample, allowed) in samples.iter().zip(by_template) {
        let by_code = config_with(&[("PLAY_PACKAGES", sample)]).is_ok();
        assert_eq!(
            allowed, by_code,
            "PlayPackages `{sample}`: the template says {allowed}, the code {by_code}"
        );
    }
    let env = &function_properties(&doc)["Environment"]["Variables"];
    assert!(is_ref(&env["PLAY_PACKAGES"], "PlayPackages"));
    assert!(is_ref(
        &env["PLAY_TRANSLATION_LANGUAGE"],
        "PlayTranslationLanguage"
    ));
    for name in ["AppIds", "PlayPackages", "PlayTranslationLanguage"] {
        assert_eq!(
            literal(&parameter(&doc, name)["Default"]).as_deref(),
            Some(""),
            "{name} may be left empty"
        );
    }
}

/// Both app lists may be empty in the parameters, so a rule refuses a stack with neither, as the
/// code would refuse to start.
#[test]
fn a_stack_needs_an_app_in_either_store() {
    let doc = template();
    let rule =
        serde_json::to_string(&serde_json::to_value(&doc["Rules"]["AtLeastOneApp"]).unwrap())
            .unwrap();
    for needed in ["AppIds", "PlayPackages", "Or", "Not", "Equals"] {
        assert!(rule.contains(needed), "the rule names {needed}: {rule}");
    }
    assert!(
        config_with(&[("APP_IDS", ""), ("PLAY_PACKAGES", "")]).is_err(),
        "the code refuses neither list too"
    );
}

#[test]
fn kms_key_pattern_takes_a_key_arn_or_nothing() {
    let doc = template();
    let pattern = allowed_pattern(&doc, "SecretKmsKeyArn");
    let samples = [
        "",
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:eu-west-1:123456789012:alias/review-relay",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
    ];
    assert_eq!(
        pattern_matches(&pattern, &samples),
        [true, true, false, false]
    );
}

// --- Outputs and alarms -------------------------------------------------------------------

#[test]
fn the_dead_letter_queue_is_an_output() {
    let doc = template();
    let outputs = doc["Outputs"].as_mapping().expect("Outputs");
    assert!(
        outputs
            .values()
            .any(|o| is_ref(&o["Value"], "ScheduleDeadLetterQueue")),
        "an output gives the dead-letter queue's URL"
    );
}

fn alarms(doc: &Value) -> Vec<(String, &Value)> {
    doc["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(name, r)| (name.as_str().unwrap().to_owned(), &r["Properties"]))
        .collect()
}

fn notifies(actions: &Value) -> bool {
    actions
        .as_sequence()
        .is_some_and(|a| a.iter().any(|t| is_ref(t, "AlarmTopic")))
}

/// Each alarm says when it fires and when it is over.
#[test]
fn every_alarm_notifies_when_it_fires_and_when_it_clears() {
    let doc = template();
    let alarms = alarms(&doc);
    assert!(alarms.len() >= 3);
    for (name, props) in alarms {
        assert!(notifies(&props["AlarmActions"]), "{name} AlarmActions");
        assert!(notifies(&props["OKActions"]), "{name} OKActions");
    }
}

/// CloudWatch evaluates at most 7 days: 168 one-hour periods.
const LONGEST_EVALUATION_SECONDS: u64 = 7 * 24 * 3_600;

/// Silence is the condition, so the alarm cannot wait for a data point: with `missing`, a range
/// with no invocation at all goes to INSUFFICIENT_DATA, which notifies; a new alarm starts there,
/// so nothing is sent before the first run (`breaching` would fire at every deploy).
#[test]
fn not_running_alarm_tolerates_the_chosen_silence_and_waits_for_the_first_run() {
    let doc = template();
    let hours = parameter(&doc, "NotRunningAlarmHours");
    assert_eq!(literal(&hours["Type"]).as_deref(), Some("Number"));
    assert_eq!(number(&hours["MinValue"], "MinValue"), 1);
    assert_eq!(number(&hours["Default"], "Default"), 2);
    let max = number(&hours["MaxValue"], "MaxValue");

    let alarm = &resource(&doc, "NotRunningAlarm")["Properties"];
    let period = number(&alarm["Period"], "Period");
    assert_eq!(
        period, 3_600,
        "one-hour periods: the parameter counts hours"
    );
    assert_eq!(
        max * period,
        LONGEST_EVALUATION_SECONDS,
        "the longest silence CloudWatch can evaluate"
    );
    assert!(is_ref(&alarm["EvaluationPeriods"], "NotRunningAlarmHours"));
    assert!(is_ref(&alarm["DatapointsToAlarm"], "NotRunningAlarmHours"));

    assert_eq!(alarm["Namespace"].as_str(), Some("AWS/Lambda"));
    assert_eq!(alarm["MetricName"].as_str(), Some("Invocations"));
    let dimension = &alarm["Dimensions"][0];
    assert_eq!(dimension["Name"].as_str(), Some("FunctionName"));
    assert!(is_ref(&dimension["Value"], "RelayFunction"));

    assert_eq!(
        literal(&alarm["TreatMissingData"]).as_deref(),
        Some("missing")
    );
    assert!(
        notifies(&alarm["InsufficientDataActions"]),
        "the silence (INSUFFICIENT_DATA) is what notifies"
    );
}

// --- The Slack Reply button ---------------------------------------------------------------

const SLACK_CONDITION: &str = "HasSlackReplyButton";

fn slack_function(doc: &Value) -> &Value {
    &resource(doc, "SlackInteractionsFunction")["Properties"]
}

/// Every resource the Reply button adds, and what it is.
const SLACK_RESOURCES: &[(&str, &str)] = &[
    ("SlackInteractionsFunction", "AWS::Serverless::Function"),
    ("SlackInteractionsFunctionUrl", "AWS::Lambda::Url"),
    ("SlackInteractionsUrlPermission", "AWS::Lambda::Permission"),
    (
        "SlackInteractionsUrlInvokePermission",
        "AWS::Lambda::Permission",
    ),
    ("SlackInteractionsRole", "AWS::IAM::Role"),
    ("SlackInteractionsInvokeSelf", "AWS::IAM::Policy"),
    ("SlackInteractionsLogGroup", "AWS::Logs::LogGroup"),
];

/// No public URL unless asked: the parameter is off by default, and everything the button adds
/// (the output included) exists only with it.
#[test]
fn the_reply_button_endpoint_exists_only_when_asked() {
    let doc = template();
    let switch = parameter(&doc, "SlackReplyButton");
    let allowed: Vec<String> = switch["AllowedValues"]
        .as_sequence()
        .expect("SlackReplyButton AllowedValues")
        .iter()
        .filter_map(literal)
        .collect();
    assert_eq!(allowed, ["true", "false"]);
    assert_eq!(literal(&switch["Default"]).as_deref(), Some("false"));
    assert_eq!(
        render(&doc["Conditions"][SLACK_CONDITION]),
        "!Equals [!Ref SlackReplyButton, true]"
    );

    let named: Vec<&str> = doc["Resources"]
        .as_mapping()
        .expect("Resources")
        .keys()
        .filter_map(Value::as_str)
        .filter(|name| name.starts_with("Slack"))
        .collect();
    let mut expected: Vec<&str> = SLACK_RESOURCES.iter().map(|(name, _)| *name).collect();
    let mut found = named.clone();
    found.sort_unstable();
    expected.sort_unstable();
    assert_eq!(found, expected, "the Reply button's resources");
    for (name, kind) in SLACK_RESOURCES {
        let r = resource(&doc, name);
        assert_eq!(r["Type"].as_str(), Some(*kind), "{name}");
        assert_eq!(
            literal(&r["Condition"]).as_deref(),
            Some(SLACK_CONDITION),
            "{name} exists only with SlackReplyButton=true"
        );
    }

    let output = &doc["Outputs"]["SlackInteractionsUrl"];
    assert_eq!(
        literal(&output["Condition"]).as_deref(),
        Some(SLACK_CONDITION)
    );
    assert_eq!(
        render(&output["Value"]),
        "!GetAtt SlackInteractionsFunctionUrl.FunctionUrl"
    );
}

/// The same binary as the relay, told apart by `RELAY_MODE`, reading the same secret, table and
/// apps; the relay itself runs in its default mode.
#[test]
fn the_reply_button_runs_the_relays_binary_in_its_own_mode() {
    let doc = template();
    let relay = resource(&doc, "RelayFunction");
    let slack = resource(&doc, "SlackInteractionsFunction");
    assert_eq!(slack["Metadata"], relay["Metadata"], "the same build");
    for key in ["CodeUri", "Handler", "Runtime"] {
        assert_eq!(
            slack["Properties"][key], relay["Properties"][key],
            "the same {key}"
        );
    }

    let env = &slack_function(&doc)["Environment"]["Variables"];
    assert_eq!(
        literal(&env["RELAY_MODE"]).as_deref(),
        Some("slack-interactions")
    );
    let relay_env = &function_properties(&doc)["Environment"]["Variables"];
    assert!(
        relay_env.get("RELAY_MODE").is_none(),
        "the relay runs in the default mode"
    );
    for var in ["SECRET_ID", "TABLE_NAME", "APP_IDS", "PLAY_PACKAGES"] {
        assert_eq!(env[var], relay_env[var], "{var} as the relay's");
    }
    assert!(
        env.get("SLACK_API_URL").is_none(),
        "Slack's own API, the code's default"
    );

    let props = slack_function(&doc);
    assert_eq!(number(&props["MemorySize"], "MemorySize"), 128);
    // Above a store request's own timeout (ASC_TIMEOUT_SECONDS, 30 by default).
    assert_eq!(number(&props["Timeout"], "Timeout"), 60);
    assert_eq!(
        render(&props["ReservedConcurrentExecutions"]),
        "!If [HasSlackReservedConcurrency, !Ref SlackReservedConcurrency, !Ref AWS::NoValue]"
    );
    // New accounts may reserve none: by default nothing is reserved.
    let concurrency = parameter(&doc, "SlackReservedConcurrency");
    assert_eq!(literal(&concurrency["Default"]).as_deref(), Some("-1"));
    assert_eq!(literal(&concurrency["MinValue"]).as_deref(), Some("-1"));
    assert_eq!(
        render(&doc["Conditions"]["HasSlackReservedConcurrency"]),
        "!Not [!Equals [!Ref SlackReservedConcurrency, -1]]"
    );
}

/// Lambda's Function URL: public (Slack signs every request; the function checks), with both
/// resource-policy statements AWS requires of URLs created since October 2025: without the
/// second, every request is answered 403.
#[test]
fn the_reply_button_url_is_public_through_both_permissions() {
    let doc = template();
    assert!(
        slack_function(&doc).get("FunctionUrlConfig").is_none(),
        "the URL and its permissions are written out; SAM's FunctionUrlConfig would add more"
    );
    let url = &resource(&doc, "SlackInteractionsFunctionUrl")["Properties"];
    assert_eq!(literal(&url["AuthType"]).as_deref(), Some("NONE"));
    assert_eq!(
        render(&url["TargetFunctionArn"]),
        "!GetAtt SlackInteractionsFunction.Arn"
    );
    assert!(url.get("Cors").is_none(), "Slack calls from its servers");

    // Every permission on the function, whatever its resource is called: its other properties,
    // in name order.
    let mut permissions: Vec<String> = doc["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Lambda::Permission"))
        .map(|r| &r["Properties"])
        .filter(|p| is_ref(&p["FunctionName"], "SlackInteractionsFunction"))
        .map(|p| {
            let mut fields: Vec<String> = p
                .as_mapping()
                .expect("Properties mapping")
                .iter()
                .filter(|(key, _)| key.as_str() != Some("FunctionName"))
                .map(|(key, value)| format!("{}: {}", render(key), render(value)))
                .collect();
            fields.sort();
            fields.join(", ")
        })
        .collect();
    permissions.sort();
    assert_eq!(
        permissions,
        [
            "Action: lambda:InvokeFunction, InvokedViaFunctionUrl: true, Principal: *",
            "Action: lambda:InvokeFunctionUrl, FunctionUrlAuthType: NONE, Principal: *",
        ]
    );
}

/// What answering from Slack calls: the clicked message kept and read back (PutItem, GetItem),
/// the answer noted or removed under `reply#…` (PutItem, DeleteItem), the secret, its logs.
const SLACK_GRANTS: &[(&str, &str)] = &[
    (
        "logs:CreateLogStream",
        "!GetAtt SlackInteractionsLogGroup.Arn",
    ),
    ("logs:PutLogEvents", "!GetAtt SlackInteractionsLogGroup.Arn"),
    ("dynamodb:GetItem", "!GetAtt StateTable.Arn"),
    ("dynamodb:PutItem", "!GetAtt StateTable.Arn"),
    ("dynamodb:DeleteItem", "!GetAtt StateTable.Arn"),
    ("secretsmanager:GetSecretValue", "!Ref SecretArn"),
];

#[test]
fn the_reply_button_role_grants_exactly_what_answering_calls() {
    let doc = template();
    let function = slack_function(&doc);
    assert_eq!(
        render(&function["Role"]),
        "!GetAtt SlackInteractionsRole.Arn"
    );
    assert!(
        function.get("Policies").is_none(),
        "SAM policies would add a second role; grant in SlackInteractionsRole"
    );
    let role = resource(&doc, "SlackInteractionsRole");
    assert!(
        role["Properties"].get("ManagedPolicyArns").is_none(),
        "no managed policies: they grant more than the code calls"
    );
    let (plain, _) = role_statements(&doc, "SlackInteractionsRole");
    assert_eq!(grants(&plain), expected_grants(SLACK_GRANTS));

    // Invoking itself, in a policy of its own: the role cannot name the function that needs it.
    let policies: Vec<&Value> = doc["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::IAM::Policy"))
        .map(|r| &r["Properties"])
        .collect();
    let [policy] = policies.as_slice() else {
        panic!("one AWS::IAM::Policy, SlackInteractionsInvokeSelf");
    };
    assert_eq!(render(&policy["Roles"]), "[!Ref SlackInteractionsRole]");
    let statements: Vec<&Value> = policy["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("Statement list")
        .iter()
        .collect();
    assert_eq!(
        grants(&statements),
        expected_grants(&[(
            "lambda:InvokeFunction",
            "!GetAtt SlackInteractionsFunction.Arn"
        )])
    );
}

/// The asynchronous invocations are the store calls; the function reports a failure in the
/// Slack message itself, and a retry would answer the store again.
#[test]
fn a_failed_answer_is_not_sent_again() {
    let doc = template();
    let invoke = &slack_function(&doc)["EventInvokeConfig"];
    assert_eq!(
        number(&invoke["MaximumRetryAttempts"], "MaximumRetryAttempts"),
        0
    );
    let age = number(
        &invoke["MaximumEventAgeInSeconds"],
        "MaximumEventAgeInSeconds",
    );
    // Lambda takes 60 to 21,600 s; well inside the 30 minutes Slack's response_url lasts.
    assert_eq!(age, 300);
}

#[test]
fn the_reply_button_logs_like_the_relay_into_its_own_group() {
    let doc = template();
    let logging = &slack_function(&doc)["LoggingConfig"];
    let relay_logging = &function_properties(&doc)["LoggingConfig"];
    for key in ["LogFormat", "ApplicationLogLevel", "SystemLogLevel"] {
        assert_eq!(logging[key], relay_logging[key], "{key} as the relay's");
    }
    assert!(is_ref(&logging["LogGroup"], "SlackInteractionsLogGroup"));
    assert!(is_ref(
        &resource(&doc, "SlackInteractionsLogGroup")["Properties"]["RetentionInDays"],
        "LogRetentionDays"
    ));
}

// --- The Slack app manifest ---------------------------------------------------------------

fn manifest() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("slack/manifest.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("slack/manifest.yaml: {e}"))
}

/// The app the README has you create: interactivity on (its Request URL is the stack output),
/// an incoming webhook to post with, and a bot user for the bot token `views.open` and
/// `views.update` take (they need no scope of their own).
#[test]
fn the_slack_app_manifest_turns_interactivity_on_with_the_scopes_needed() {
    let doc = manifest();
    assert!(
        literal(&doc["display_information"]["name"])
            .is_some_and(|n| !n.is_empty() && n.len() <= 35),
        "an app name of at most 35 characters"
    );
    assert!(
        literal(&doc["features"]["bot_user"]["display_name"]).is_some(),
        "a bot user, for the bot token"
    );
    let scopes: Vec<String> = doc["oauth_config"]["scopes"]["bot"]
        .as_sequence()
        .expect("oauth_config.scopes.bot")
        .iter()
        .filter_map(literal)
        .collect();
    assert_eq!(scopes, ["incoming-webhook"]);
    assert!(
        doc["oauth_config"]["scopes"].get("user").is_none(),
        "no user scopes"
    );

    let settings = &doc["settings"];
    let interactivity = &settings["interactivity"];
    assert_eq!(interactivity["is_enabled"].as_bool(), Some(true));
    let url = literal(&interactivity["request_url"]).expect("interactivity.request_url");
    assert!(url.starts_with("https://"), "{url}");
    assert_eq!(settings["socket_mode_enabled"].as_bool(), Some(false));
    assert_eq!(settings["token_rotation_enabled"].as_bool(), Some(false));
    assert!(
        settings.get("event_subscriptions").is_none(),
        "the endpoint answers interactions, not events"
    );

    // The README tells you to replace the placeholder with the template's output.
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    assert!(readme.contains(&url), "README names the placeholder {url}");
    assert!(template()["Outputs"].get("SlackInteractionsUrl").is_some());
    assert!(readme.contains("SlackInteractionsUrl"));
}
