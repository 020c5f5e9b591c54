//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout per run, which
//! CloudWatch Logs turns into metrics without an API call or extra permission.
//!
//! Four metrics, one dimension (the function's name) and no per-app dimension: every metric and
//! dimension-value pair is billed as a custom metric each month.

use serde_json::{Value, json};

use crate::logging;
use crate::summary::{AppStatus, RunSummary};

pub const NAMESPACE: &str = "ReviewRelay";

/// The EMF document for one run; `now_nanos` is when it ended.
pub fn document(summary: &RunSummary, function_name: &str, now_nanos: i128) -> Value {
    let pending: usize = summary.apps.iter().map(|a| a.pending).sum();
    let failed = summary
        .apps
        .iter()
        .filter(|a| a.status == AppStatus::Failed)
        .count();
    let newest = summary
        .apps
        .iter()
        .filter_map(|a| a.newest_delivered_nanos)
        .max();

    let mut metrics = vec![
        json!({"Name": "ReviewsDelivered", "Unit": "Count"}),
        json!({"Name": "ReviewsPending", "Unit": "Count"}),
        json!({"Name": "FailedApps", "Unit": "Count"}),
    ];
    let mut doc = json!({
        "FunctionName": function_name,
        "ReviewsDelivered": summary.delivered(),
        "ReviewsPending": pending,
        "FailedApps": failed,
    });
    // Without any delivered review there is no age to report, and EMF has no "absent" value.
    if let Some(newest) = newest {
        let age = ((now_nanos - newest).max(0) / 1_000_000_000) as u64;
        metrics.push(json!({"Name": "NewestReviewAgeSeconds", "Unit": "Seconds"}));
        doc["NewestReviewAgeSeconds"] = json!(age);
    }
    // Printed beside the logger, so it carries the fields Lambda filters log lines by (without
    // them Lambda takes a line as INFO); EMF ignores them, and no metric or dimension has their name.
    doc["level"] = json!("INFO");
    doc["timestamp"] = json!(logging::timestamp_nanos(now_nanos));
    doc["_aws"] = json!({
        "Timestamp": (now_nanos / 1_000_000) as i64,
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": [["FunctionName"]],
            "Metrics": metrics,
        }],
    });
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::AppSummary;

    fn app(
        status: AppStatus,
        delivered: usize,
        pending: usize,
        newest: Option<i128>,
    ) -> AppSummary {
        AppSummary {
            app_id: "1".into(),
            store: "app_store",
            status,
            fetched: delivered + pending,
            new: delivered + pending,
            delivered,
            pending,
            pages: 1,
            error: None,
            rescan_skipped: false,
            newest_delivered_nanos: newest,
            complete: delivered,
        }
    }

    const SECOND: i128 = 1_000_000_000;

    #[test]
    fn sums_across_apps_and_reports_the_freshest_review() {
        let summary = RunSummary {
            dry_run: false,
            apps: vec![
                app(AppStatus::Ok, 3, 0, Some(100 * SECOND)),
                app(AppStatus::Deadline, 1, 4, Some(400 * SECOND)),
                app(AppStatus::Failed, 0, 2, None),
            ],
        };
        let doc = document(&summary, "relay-fn", 1_000 * SECOND);
        assert_eq!(doc["ReviewsDelivered"], 4);
        assert_eq!(doc["ReviewsPending"], 6);
        assert_eq!(doc["FailedApps"], 1);
        assert_eq!(doc["NewestReviewAgeSeconds"], 600);
        assert_eq!(doc["FunctionName"], "relay-fn");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["FunctionName"]]));
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ReviewsDelivered",
                "ReviewsPending",
                "FailedApps",
                "NewestReviewAgeSeconds"
            ]
        );
        // Every declared metric has a value in the document.
        for name in &names {
            assert!(doc[name].is_u64(), "{name}");
        }
        assert_eq!(doc["_aws"]["Timestamp"], 1_000_000);
        // Lambda keeps the line at the levels it is offered (DEBUG, INFO), and dates it.
        assert_eq!(doc["level"], "INFO");
        assert_eq!(doc["timestamp"], "1970-01-01T00:16:40.000Z");
        for field in ["level", "timestamp"] {
            assert!(!names.contains(&field) && field != "FunctionName");
        }
    }

    #[test]
    fn without_a_delivered_review_the_age_is_left_out() {
        let summary = RunSummary {
            dry_run: false,
            apps: vec![app(AppStatus::Ok, 0, 0, None)],
        };
        let doc = document(&summary, "f", 5 * SECOND);
        assert!(doc.get("NewestReviewAgeSeconds").is_none());
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }
}
