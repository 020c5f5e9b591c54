//! template.yaml and the code must agree: the table's keys and TTL, and least-privilege IAM.

mod support;

use review_relay::adapters::dynamodb::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use serde_norway::Value;
use support::template::{table_properties, template_path};

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
    let text = std::fs::read_to_string(template_path()).unwrap();
    let doc: Value = serde_norway::from_str(&text).unwrap();
    let mut found = Vec::new();
    resources(&doc, String::new(), &mut found);
    for (path, value) in found {
        let values: Vec<&Value> = match value {
            Value::Sequence(items) => items.iter().collect(),
            other => vec![other],
        };
        assert!(
            values.iter().all(|v| v.as_str() != Some("*")),
            "{path} grants `*`; scope it to the table or the secret"
        );
    }
    // The function's access comes from SAM policy templates scoped to the one table and secret.
    let policies = &doc["Resources"]["RelayFunction"]["Properties"]["Policies"];
    let names: Vec<&str> = policies
        .as_sequence()
        .expect("Policies list")
        .iter()
        .filter_map(|p| p.as_mapping()?.keys().next()?.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "DynamoDBCrudPolicy",
            "AWSSecretsManagerGetSecretValuePolicy"
        ]
    );
}
