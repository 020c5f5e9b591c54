//! What a run did, app by app: the invocation's answer, its summary log line and its metrics.

use serde::Serialize;

use crate::domain::AppId;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunSummary {
    /// Set by a dry run: reviews were read and formatted; nothing was sent or written.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    pub apps: Vec<AppSummary>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AppSummary {
    /// The App Store app id or the Google Play package name.
    pub app_id: String,
    /// `app_store` or `google_play`.
    pub store: &'static str,
    pub status: AppStatus,
    /// Reviews read from the store.
    pub fetched: usize,
    /// Of those, reviews not delivered before.
    pub new: usize,
    pub delivered: usize,
    /// New reviews left for the next run.
    pub pending: usize,
    pub pages: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set when the overlap window was not read again for late reviews, to spare the store's
    /// request budget (or the time left); a later run with budget to spare does it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rescan_skipped: bool,
    /// When the newest review delivered so far was created (ns), if the app has one.
    #[serde(skip)]
    pub newest_delivered_nanos: Option<i128>,
    /// New reviews that reached every destination wanting them.
    #[serde(skip)]
    pub complete: usize,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AppStatus {
    Ok,
    Failed,
    /// The invocation's time ran short; progress is saved and the rest waits for the next run.
    Deadline,
    /// Another invocation is working on this app right now; it was skipped.
    Locked,
    /// The store's hourly request limit for this app is spent; it is read again next hour.
    Waiting,
}

impl RunSummary {
    /// Every app failed for one cause, before any work.
    pub fn rejected(apps: &[AppId], cause: &str) -> Self {
        let apps = apps
            .iter()
            .map(|app| AppSummary::new(app).failed(cause.to_owned()))
            .collect();
        Self {
            dry_run: false,
            apps,
        }
    }

    /// `Some("app: cause; …")` when any app failed.
    pub fn failure_message(&self) -> Option<String> {
        let failed: Vec<String> = self
            .apps
            .iter()
            .filter(|a| a.status == AppStatus::Failed)
            .map(|a| format!("{}: {}", a.app_id, a.error.as_deref().unwrap_or("failed")))
            .collect();
        (!failed.is_empty()).then(|| {
            format!(
                "{} of {} apps failed: {}",
                failed.len(),
                self.apps.len(),
                failed.join("; ")
            )
        })
    }

    pub fn delivered(&self) -> usize {
        self.apps.iter().map(|a| a.delivered).sum()
    }
}

impl AppSummary {
    pub(crate) fn new(app: &AppId) -> Self {
        Self {
            app_id: app.to_string(),
            store: app.store().code(),
            status: AppStatus::Ok,
            fetched: 0,
            new: 0,
            delivered: 0,
            pending: 0,
            pages: 0,
            error: None,
            rescan_skipped: false,
            newest_delivered_nanos: None,
            complete: 0,
        }
    }

    pub(crate) fn failed(mut self, error: String) -> Self {
        self.status = AppStatus::Failed;
        self.error = Some(error);
        self
    }
}
