//! Reads the SAM template (for tests/template.rs) and builds the test DynamoDB table from it, so
//! tests use the table shape that is deployed, plus small Secrets Manager / DynamoDB helpers.

use std::collections::HashMap;
use std::path::PathBuf;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ProvisionedThroughput, ScalarAttributeType, TimeToLiveSpecification,
};
use serde_norway::Value;

/// `<repo>/template.yaml`
pub fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("template.yaml")
}

/// `<repo>/template.yaml`, parsed. CloudFormation short tags (`!Ref`, `!Sub`, `!GetAtt`, `!If`,
/// ...) parse as tagged values; `Value::as_str` looks through them, so use [`literal`] and
/// [`tagged`] where a literal and an intrinsic must not be confused.
pub fn template() -> Value {
    let path = template_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("template.yaml is not YAML: {e}"))
}

/// The resource `name` of the template (the whole resource: `Type`, `Properties`, ...).
pub fn resource<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc.get("Resources")
        .and_then(|r| r.get(name))
        .unwrap_or_else(|| panic!("template.yaml has no resource `{name}`"))
}

/// The parameter `name` of the template.
pub fn parameter<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc.get("Parameters")
        .and_then(|p| p.get(name))
        .unwrap_or_else(|| panic!("template.yaml has no parameter `{name}`"))
}

/// A plain (untagged) scalar as text: `"x86_64"`, `"0"`, `"true"`; `None` for an intrinsic,
/// a list or a mapping.
pub fn literal(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The argument of the intrinsic `tag` (`"Ref"`, `"GetAtt"`, `"If"`, ...), if `value` is one.
pub fn tagged<'a>(value: &'a Value, tag: &str) -> Option<&'a Value> {
    match value {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

/// How a value reads in the template, intrinsics included: `!Ref SecretArn`,
/// `!GetAtt StateTable.Arn`, `dynamodb:Query`.
pub fn render(value: &Value) -> String {
    match value {
        Value::Tagged(t) => format!("{} {}", t.tag, render(&t.value)),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Mapping(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", render(k), render(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        other => literal(other).unwrap_or_else(|| "null".into()),
    }
}

/// The `Properties` of the single `AWS::DynamoDB::Table` resource in `<repo>/template.yaml`.
/// CloudFormation short tags (`!Ref`, `!Sub`, `!GetAtt`, ...) parse as tagged values.
pub fn table_properties() -> Value {
    let path = template_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    table_properties_from_str(&text)
}

pub fn table_properties_from_str(yaml: &str) -> Value {
    let doc: Value =
        serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("template.yaml is not YAML: {e}"));
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("template.yaml has no Resources mapping"));
    let tables: Vec<(&Value, &Value)> = resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
        .collect();
    match tables.as_slice() {
        [(_, resource)] => resource
            .get("Properties")
            .cloned()
            .unwrap_or_else(|| panic!("the AWS::DynamoDB::Table resource has no Properties")),
        other => panic!(
            "template.yaml must have exactly one AWS::DynamoDB::Table resource, found {}",
            other.len()
        ),
    }
}

fn plain_str<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str().unwrap_or_else(|| {
        panic!("template.yaml: {what} must be a plain string (intrinsics are not resolved here), got {v:?}")
    })
}

fn plain_seq<'a>(props: &'a Value, key: &str) -> &'a [Value] {
    props
        .get(key)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("template.yaml: table Properties.{key} must be a list"))
}

/// Creates `table_name` in the account `cfg` points at, shaped like the template's table:
/// AttributeDefinitions, KeySchema, BillingMode and TimeToLiveSpecification.
pub async fn create_table_from_template(cfg: &SdkConfig, table_name: &str) {
    create_table_from_properties(cfg, table_name, &table_properties()).await
}

pub async fn create_table_from_properties(cfg: &SdkConfig, table_name: &str, props: &Value) {
    // A template index that the test table silently lacked would make tests lie.
    for unsupported in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
        if props.get(unsupported).is_some() {
            panic!(
                "template.yaml: {unsupported} is not supported by tests/support/template.rs yet"
            );
        }
    }
    let client = aws_sdk_dynamodb::Client::new(cfg);
    let mut req = client.create_table().table_name(table_name);

    for def in plain_seq(props, "AttributeDefinitions") {
        let name = plain_str(
            &def["AttributeName"],
            "AttributeDefinitions[].AttributeName",
        );
        let ty = plain_str(
            &def["AttributeType"],
            "AttributeDefinitions[].AttributeType",
        );
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(ty))
                .build()
                .expect("attribute definition"),
        );
    }
    for key in plain_seq(props, "KeySchema") {
        let name = plain_str(&key["AttributeName"], "KeySchema[].AttributeName");
        let ty = plain_str(&key["KeyType"], "KeySchema[].KeyType");
        req = req.key_schema(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(ty))
                .build()
                .expect("key schema element"),
        );
    }
    // CloudFormation's default is PROVISIONED.
    let billing = props
        .get("BillingMode")
        .map(|v| plain_str(v, "BillingMode"))
        .unwrap_or("PROVISIONED");
    req = req.billing_mode(BillingMode::from(billing));
    if billing == "PROVISIONED" {
        let pt = props.get("ProvisionedThroughput").unwrap_or_else(|| {
            panic!("template.yaml: PROVISIONED table needs ProvisionedThroughput")
        });
        let units = |k: &str| {
            pt.get(k).and_then(Value::as_i64).unwrap_or_else(|| {
                panic!("template.yaml: ProvisionedThroughput.{k} must be a number")
            })
        };
        req = req.provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(units("ReadCapacityUnits"))
                .write_capacity_units(units("WriteCapacityUnits"))
                .build()
                .expect("provisioned throughput"),
        );
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {table_name} failed: {e:?}"));

    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        let attribute = plain_str(
            &ttl["AttributeName"],
            "TimeToLiveSpecification.AttributeName",
        );
        let enabled = ttl["Enabled"].as_bool().unwrap_or_else(|| {
            panic!("template.yaml: TimeToLiveSpecification.Enabled must be a plain boolean")
        });
        client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(enabled)
                    .build()
                    .expect("ttl specification"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("UpdateTimeToLive {table_name} failed: {e:?}"));
    }
}

/// Every item of `table` (all scan pages).
pub async fn scan_table(cfg: &SdkConfig, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(cfg);
    let mut items = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Scan {table} failed: {e:?}"));
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return items,
        }
    }
}

/// CreateSecret with a string value; returns the secret's ARN.
pub async fn put_secret(cfg: &SdkConfig, name: &str, value: &str) -> String {
    aws_sdk_secretsmanager::Client::new(cfg)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateSecret {name} failed: {e:?}"))
        .arn
        .unwrap_or_else(|| panic!("CreateSecret {name} returned no ARN"))
}

/// Stores a new current value for an existing secret (UpdateSecret).
pub async fn update_secret(cfg: &SdkConfig, name: &str, value: &str) {
    aws_sdk_secretsmanager::Client::new(cfg)
        .update_secret()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateSecret {name} failed: {e:?}"));
}

/// The current string value of a secret.
pub async fn get_secret(cfg: &SdkConfig, name: &str) -> String {
    aws_sdk_secretsmanager::Client::new(cfg)
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetSecretValue {name} failed: {e:?}"))
        .secret_string
        .unwrap_or_else(|| panic!("secret {name} has no string value"))
}
