//! Environment → [`Config`], validated once per cold start. Every error names its variable.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::domain::{AppId, AppIdError, COVERAGE_MARGIN_HOURS, Store, max_reach_hours};

pub const DEFAULT_ASC_BASE_URL: &str = "https://api.appstoreconnect.apple.com";
pub const DEFAULT_PLAY_BASE_URL: &str = "https://androidpublisher.googleapis.com";
pub const DEFAULT_BACKFILL_HOURS: u32 = 24;
pub const DEFAULT_DEADLINE_MARGIN_SECONDS: u64 = 5;
/// A backfill longer than a year is almost certainly a typo (minutes? days?).
const MAX_BACKFILL_HOURS: u32 = 24 * 366;

#[derive(Debug, Clone)]
pub struct Config {
    /// Every app relayed: the App Store ids of `APP_IDS`, then the packages of `PLAY_PACKAGES`.
    pub app_ids: Vec<AppId>,
    pub secret_id: String,
    pub table_name: String,
    /// Without a trailing slash.
    pub asc_base_url: Url,
    /// `PLAY_BASE_URL`, without a trailing slash: the Google Play Developer API.
    pub play_base_url: Url,
    /// `PLAY_TRANSLATION_LANGUAGE`: Google translates reviews into it when set.
    pub play_translation_language: Option<String>,
    pub backfill_hours: u32,
    /// How far before the newest delivered review a late-published review is still delivered.
    pub overlap_hours: u32,
    /// How long delivered review ids are remembered (TTL of their items).
    pub retention_days: u32,
    pub webhook_format: Option<WebhookFormat>,
    /// No delivery starts with less than this left before the invocation's deadline.
    pub deadline_margin: Duration,
    pub webhook_retry: RetryPolicy,
    pub asc_retry: RetryPolicy,
    /// Whether a Lambda invocation writes its CloudWatch metrics (Embedded Metric Format).
    pub emit_metrics: bool,
    /// `EXTRA_CA_CERTS`: a PEM file of root certificates to trust besides Mozilla's; read and
    /// checked when the HTTP client is built.
    pub extra_ca_certs: Option<PathBuf>,
    /// `RELAY_MODE`: what this function is.
    pub mode: Mode,
    /// `SLACK_API_URL`, without a trailing slash: Slack's Web API, for the Reply button's modal.
    pub slack_api_url: Url,
}

/// What a function of the deployment does, from `RELAY_MODE`: both run the same binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `schedule` (or unset): relays reviews when the schedule (or a person) invokes it.
    #[default]
    Schedule,
    /// `slack-interactions`: the endpoint of the Slack app's Reply button (a Function URL), and
    /// the answers it hands to itself.
    SlackInteractions,
}

/// Slack's Web API.
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";

/// How often and how patiently a failed HTTP call is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The wait before the second try; it doubles each time, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// The longest a `Retry-After` header is obeyed.
    pub retry_after_max: Duration,
    /// How long one try may take.
    pub request_timeout: Duration,
}

/// How a destination's messages are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Slack,
    Discord,
    Teams,
    GoogleChat,
    Json,
}

impl WebhookFormat {
    pub const ALL: [Self; 5] = [
        Self::Slack,
        Self::Discord,
        Self::Teams,
        Self::GoogleChat,
        Self::Json,
    ];

    /// What a configuration may say, for error messages: "`slack`, `discord`, … or `json`".
    pub const CHOICES: &str = "`slack`, `discord`, `teams`, `googlechat` or `json`";

    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        Self::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(raw))
    }

    /// The format a URL implies when none is configured: by the host, never the path.
    pub fn infer(url: &Url) -> Self {
        let Some(host) = url.host_str() else {
            return Self::Json;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let under = |domain: &str| {
            host == domain
                || host
                    .strip_suffix(domain)
                    .is_some_and(|rest| rest.ends_with('.'))
        };
        if under("hooks.slack.com") {
            Self::Slack
        } else if under("discord.com") || under("discordapp.com") {
            Self::Discord
        } else if under("logic.azure.com")
            || under("powerplatform.com")
            || under("webhook.office.com")
        {
            // Teams Workflows (Power Automate) and the older Office 365 connectors.
            Self::Teams
        } else if under("chat.googleapis.com") {
            Self::GoogleChat
        } else {
            Self::Json
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Teams => "teams",
            Self::GoogleChat => "googlechat",
            Self::Json => "json",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable `{0}` is required but not set")]
    Missing(&'static str),
    #[error("environment variable `{var}`: {cause}")]
    AppId {
        var: &'static str,
        cause: AppIdError,
    },
    #[error(
        "neither `APP_IDS` nor `PLAY_PACKAGES` lists an app; set `APP_IDS` to App Store app ids like `1234567890,987654321`, `PLAY_PACKAGES` to Google Play package names like `com.example.app`, or both"
    )]
    NoApps,
    #[error("environment variable `{var}`: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// How one list of apps is read.
type ParseApp = fn(&str) -> Result<AppId, AppIdError>;

impl Config {
    /// Whether any app of `store` is relayed.
    pub fn relays(&self, store: Store) -> bool {
        self.app_ids.iter().any(|app| app.store() == store)
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let mut app_ids = Vec::new();
        let lists: [(&'static str, ParseApp); 2] =
            [("APP_IDS", AppId::parse), ("PLAY_PACKAGES", AppId::play)];
        for (var, parse) in lists {
            for part in get(var)
                .unwrap_or_default()
                .split(',')
                .filter(|p| !p.trim().is_empty())
            {
                let id = parse(part).map_err(|cause| ConfigError::AppId { var, cause })?;
                if !app_ids.contains(&id) {
                    app_ids.push(id);
                }
            }
        }
        if app_ids.is_empty() {
            return Err(ConfigError::NoApps);
        }
        let play_base_url = get("PLAY_BASE_URL").unwrap_or(DEFAULT_PLAY_BASE_URL);
        let play_base_url =
            parse_base_url(play_base_url).map_err(|reason| ConfigError::Invalid {
                var: "PLAY_BASE_URL",
                reason,
            })?;
        let play_translation_language = get("PLAY_TRANSLATION_LANGUAGE")
            .map(|raw| {
                let tag = raw
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    && raw.len() <= 35;
                if tag {
                    Ok(raw.to_owned())
                } else {
                    Err(ConfigError::Invalid {
                        var: "PLAY_TRANSLATION_LANGUAGE",
                        reason: format!(
                            "`{}` is not a language tag like `en` or `pt-BR`",
                            raw.chars().take(40).collect::<String>()
                        ),
                    })
                }
            })
            .transpose()?;

        let asc_base_url = get("ASC_BASE_URL").unwrap_or(DEFAULT_ASC_BASE_URL);
        let asc_base_url = parse_base_url(asc_base_url).map_err(|reason| ConfigError::Invalid {
            var: "ASC_BASE_URL",
            reason,
        })?;

        let number = |var: &'static str, default: u64, max: u64, unit: &str| match get(var) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| ConfigError::Invalid {
                    var,
                    reason: format!("`{raw}` is not a whole number of {unit} between 0 and {max}"),
                }),
        };
        let at_least_one = |var: &'static str, value: u64| {
            if value == 0 {
                Err(ConfigError::Invalid {
                    var,
                    reason: "must be at least 1".into(),
                })
            } else {
                Ok(value)
            }
        };

        let webhook_format = get("WEBHOOK_FORMAT")
            .map(|raw| {
                WebhookFormat::parse(raw).ok_or_else(|| ConfigError::Invalid {
                    var: "WEBHOOK_FORMAT",
                    reason: format!("unknown format `{raw}`; use {}", WebhookFormat::CHOICES),
                })
            })
            .transpose()?;

        let webhook_retry = RetryPolicy {
            attempts: at_least_one(
                "WEBHOOK_MAX_ATTEMPTS",
                number("WEBHOOK_MAX_ATTEMPTS", 5, 20, "attempts")?,
            )? as u32,
            first_delay: Duration::from_millis(number(
                "RETRY_BASE_MS",
                500,
                60_000,
                "milliseconds",
            )?),
            max_delay: Duration::from_millis(number(
                "RETRY_MAX_MS",
                8_000,
                300_000,
                "milliseconds",
            )?),
            retry_after_max: Duration::from_secs(number(
                "RETRY_AFTER_MAX_SECONDS",
                60,
                900,
                "seconds",
            )?),
            request_timeout: Duration::from_secs(at_least_one(
                "WEBHOOK_TIMEOUT_SECONDS",
                number("WEBHOOK_TIMEOUT_SECONDS", 10, 300, "seconds")?,
            )?),
        };
        let asc_retry = RetryPolicy {
            attempts: at_least_one(
                "ASC_MAX_ATTEMPTS",
                number("ASC_MAX_ATTEMPTS", 4, 20, "attempts")?,
            )? as u32,
            request_timeout: Duration::from_secs(at_least_one(
                "ASC_TIMEOUT_SECONDS",
                number("ASC_TIMEOUT_SECONDS", 30, 300, "seconds")?,
            )?),
            ..webhook_retry
        };

        let retention_days = at_least_one(
            "DELIVERED_RETENTION_DAYS",
            number("DELIVERED_RETENTION_DAYS", 30, 365, "days")?,
        )? as u32;
        let backfill_hours = number(
            "BACKFILL_HOURS",
            DEFAULT_BACKFILL_HOURS.into(),
            MAX_BACKFILL_HOURS.into(),
            "hours",
        )? as u32;
        let overlap_hours = number("OVERLAP_HOURS", 72, 24 * 30, "hours")? as u32;
        for (var, hours) in [
            ("OVERLAP_HOURS", overlap_hours),
            ("BACKFILL_HOURS", backfill_hours),
        ] {
            within_records(var, hours, retention_days)?;
        }
        let secret_id = required("SECRET_ID")?.to_owned();
        if let (Some(secret_region), Some(region)) = (arn_region(&secret_id), get("AWS_REGION"))
            && secret_region != region
        {
            return Err(ConfigError::Invalid {
                var: "SECRET_ID",
                reason: format!(
                    "the secret is in region `{secret_region}` but the function runs in \
                     `{region}`; Secrets Manager secrets are regional: create the secret in \
                     `{region}` (or deploy the stack to `{secret_region}`)"
                ),
            });
        }

        Ok(Self {
            backfill_hours,
            overlap_hours,
            retention_days,
            deadline_margin: Duration::from_secs(number(
                "DEADLINE_MARGIN_SECONDS",
                DEFAULT_DEADLINE_MARGIN_SECONDS,
                900,
                "seconds",
            )?),
            webhook_retry,
            asc_retry,
            app_ids,
            secret_id,
            table_name: required("TABLE_NAME")?.to_owned(),
            asc_base_url,
            play_base_url,
            play_translation_language,
            webhook_format,
            emit_metrics: flag(get("EMIT_METRICS"), "EMIT_METRICS", true)?,
            extra_ca_certs: get("EXTRA_CA_CERTS")
                .map(str::trim)
                .filter(|path| !path.is_empty())
                .map(PathBuf::from),
            mode: match get("RELAY_MODE") {
                None | Some("schedule") => Mode::Schedule,
                Some("slack-interactions") => Mode::SlackInteractions,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        var: "RELAY_MODE",
                        reason: format!(
                            "`{}` is not a mode; use `schedule` or `slack-interactions`",
                            other.chars().take(40).collect::<String>()
                        ),
                    });
                }
            },
            slack_api_url: parse_base_url(get("SLACK_API_URL").unwrap_or(DEFAULT_SLACK_API_URL))
                .map_err(|reason| ConfigError::Invalid {
                    var: "SLACK_API_URL",
                    reason,
                })?,
        })
    }
}

/// Refuses a window reaching reviews whose delivery records may already be gone (see
/// [`crate::domain::coverage_floor`]): they could be sent twice.
fn within_records(var: &'static str, hours: u32, retention_days: u32) -> Result<(), ConfigError> {
    let max = max_reach_hours(retention_days);
    if hours > max {
        return Err(ConfigError::Invalid {
            var,
            reason: format!(
                "{hours} hours reaches reviews whose delivery records may be gone: they are kept \
                 {retention_days} days (DELIVERED_RETENTION_DAYS), so it must be below \
                 {retention_days} × 24 − {COVERAGE_MARGIN_HOURS} hours, at most {max}; lower it \
                 or raise DELIVERED_RETENTION_DAYS"
            ),
        });
    }
    Ok(())
}

/// The region of a Secrets Manager ARN (`arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:…`);
/// `None` for a plain secret name.
fn arn_region(secret_id: &str) -> Option<&str> {
    let mut parts = secret_id.splitn(6, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_), Some("secretsmanager"), Some(region)) if !region.is_empty() => {
            Some(region)
        }
        _ => None,
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), any case; `default` when unset.
fn flag(raw: Option<&str>, var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::Invalid {
            var,
            reason: format!("`{other}` is not `true` or `false`"),
        }),
    }
}

fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url =
        Url::parse(raw.trim_end_matches('/')).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
    require_secure(&url)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{raw}` must not carry a query or fragment"));
    }
    Ok(url)
}

/// `https://` everywhere; plain `http://` only to this machine (local test services).
/// The reason never repeats the URL: webhook URLs are credentials.
pub fn require_secure(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err("plain http:// is accepted only for loopback hosts; use https://".into()),
        other => Err(format!("the scheme must be https://, not `{other}:`")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut all: HashMap<String, String> = [
            ("APP_IDS", "123,456"),
            ("SECRET_ID", "review-relay/key"),
            ("TABLE_NAME", "relay"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in pairs {
            all.insert((*k).to_owned(), (*v).to_owned());
        }
        all
    }

    #[test]
    fn the_mode_and_slacks_api_are_read_and_a_wrong_one_named() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(config.mode, Mode::Schedule);
        assert_eq!(config.slack_api_url.as_str(), "https://slack.com/api");
        let config = Config::from_vars(&vars(&[
            ("RELAY_MODE", "slack-interactions"),
            ("SLACK_API_URL", "http://127.0.0.1:9/api/"),
        ]))
        .unwrap();
        assert_eq!(config.mode, Mode::SlackInteractions);
        assert_eq!(config.slack_api_url.as_str(), "http://127.0.0.1:9/api");
        let err = Config::from_vars(&vars(&[("RELAY_MODE", "slack")])).unwrap_err();
        assert!(
            err.to_string().contains("RELAY_MODE")
                && err.to_string().contains("slack-interactions"),
            "{err}"
        );
        let err =
            Config::from_vars(&vars(&[("SLACK_API_URL", "http://slack.com/api")])).unwrap_err();
        assert!(err.to_string().contains("SLACK_API_URL"), "{err}");
    }

    #[test]
    fn metrics_are_on_unless_switched_off() {
        assert!(Config::from_vars(&vars(&[])).unwrap().emit_metrics);
        assert!(
            !Config::from_vars(&vars(&[("EMIT_METRICS", "False")]))
                .unwrap()
                .emit_metrics
        );
        let err = Config::from_vars(&vars(&[("EMIT_METRICS", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("EMIT_METRICS"), "{err}");
    }

    #[test]
    fn defaults() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(config.app_ids.len(), 2);
        assert_eq!(
            config.asc_base_url.as_str(),
            "https://api.appstoreconnect.apple.com/"
        );
        assert_eq!(config.backfill_hours, 24);
        assert_eq!(config.webhook_format, None);
        assert_eq!(config.overlap_hours, 72);
        assert_eq!(config.retention_days, 30);
        assert_eq!(config.deadline_margin, Duration::from_secs(5));
        assert_eq!(
            config.webhook_retry,
            RetryPolicy {
                attempts: 5,
                first_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(8),
                retry_after_max: Duration::from_secs(60),
                request_timeout: Duration::from_secs(10),
            }
        );
        assert_eq!(config.asc_retry.attempts, 4);
        assert_eq!(config.extra_ca_certs, None);
    }

    #[test]
    fn app_ids_are_trimmed_and_deduplicated() {
        let config = Config::from_vars(&vars(&[("APP_IDS", " 1, 2 ,1,,")])).unwrap();
        let ids: Vec<_> = config.app_ids.iter().map(AppId::as_str).collect();
        assert_eq!(ids, ["1", "2"]);
    }

    #[test]
    fn errors_name_the_variable() {
        let cases = [
            (vars(&[("APP_IDS", "123,my-app")]), "APP_IDS"),
            (vars(&[("APP_IDS", " , ")]), "APP_IDS"),
            (vars(&[("BACKFILL_HOURS", "-1")]), "BACKFILL_HOURS"),
            (vars(&[("BACKFILL_HOURS", "1e3")]), "BACKFILL_HOURS"),
            (vars(&[("WEBHOOK_FORMAT", "msteams")]), "WEBHOOK_FORMAT"),
            (vars(&[("OVERLAP_HOURS", "lots")]), "OVERLAP_HOURS"),
            (
                vars(&[("WEBHOOK_MAX_ATTEMPTS", "0")]),
                "WEBHOOK_MAX_ATTEMPTS",
            ),
            (
                vars(&[("DELIVERED_RETENTION_DAYS", "0")]),
                "DELIVERED_RETENTION_DAYS",
            ),
            (vars(&[("RETRY_BASE_MS", "99999999")]), "RETRY_BASE_MS"),
            (
                vars(&[("ASC_BASE_URL", "http://api.example.com")]),
                "ASC_BASE_URL",
            ),
            (vars(&[("ASC_BASE_URL", "ftp://127.0.0.1")]), "ASC_BASE_URL"),
            (vars(&[("ASC_BASE_URL", "not a url")]), "ASC_BASE_URL"),
        ];
        for (vars, name) in cases {
            let err = Config::from_vars(&vars).unwrap_err().to_string();
            assert!(err.contains(name), "{err} should name {name}");
        }
        for name in ["SECRET_ID", "TABLE_NAME"] {
            let mut v = vars(&[]);
            v.remove(name);
            assert_eq!(
                Config::from_vars(&v).unwrap_err(),
                ConfigError::Missing(name)
            );
        }
        let mut none = vars(&[]);
        none.remove("APP_IDS");
        assert_eq!(Config::from_vars(&none).unwrap_err(), ConfigError::NoApps);
        let err = Config::from_vars(&vars(&[("PLAY_PACKAGES", "com.example.app,123")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PLAY_PACKAGES") && err.contains("`123` is not a Google Play package"),
            "{err}"
        );
        for bad in ["http://play.example.com", "not a url"] {
            let err = Config::from_vars(&vars(&[("PLAY_BASE_URL", bad)])).unwrap_err();
            assert!(err.to_string().contains("PLAY_BASE_URL"), "{err}");
        }
        let err = Config::from_vars(&vars(&[("PLAY_TRANSLATION_LANGUAGE", "en;x")])).unwrap_err();
        assert!(
            err.to_string().contains("PLAY_TRANSLATION_LANGUAGE"),
            "{err}"
        );
    }

    #[test]
    fn both_stores_apps_are_relayed_and_either_list_may_be_empty() {
        let both = Config::from_vars(&vars(&[
            ("APP_IDS", "1, 2"),
            ("PLAY_PACKAGES", "com.example.app , org.x.y,com.example.app"),
            ("PLAY_TRANSLATION_LANGUAGE", "en"),
        ]))
        .unwrap();
        let apps: Vec<(Store, &str)> = both
            .app_ids
            .iter()
            .map(|a| (a.store(), a.as_str()))
            .collect();
        assert_eq!(
            apps,
            [
                (Store::AppStore, "1"),
                (Store::AppStore, "2"),
                (Store::GooglePlay, "com.example.app"),
                (Store::GooglePlay, "org.x.y"),
            ]
        );
        assert_eq!(both.play_translation_language.as_deref(), Some("en"));
        assert_eq!(
            both.play_base_url.as_str(),
            "https://androidpublisher.googleapis.com/"
        );
        let play_only =
            Config::from_vars(&vars(&[("APP_IDS", ""), ("PLAY_PACKAGES", "a.b")])).unwrap();
        assert!(play_only.relays(Store::GooglePlay) && !play_only.relays(Store::AppStore));
    }

    #[test]
    fn windows_must_stay_inside_what_the_delivery_records_cover() {
        let ok = Config::from_vars(&vars(&[
            ("OVERLAP_HOURS", "718"),
            ("BACKFILL_HOURS", "718"),
        ]))
        .unwrap();
        assert_eq!((ok.overlap_hours, ok.backfill_hours), (718, 718));
        for (var, value, retention) in [
            ("OVERLAP_HOURS", "719", "30"),
            ("BACKFILL_HOURS", "720", "30"),
            ("OVERLAP_HOURS", "72", "2"),
            ("BACKFILL_HOURS", "47", "2"),
        ] {
            let overlap = if var == "OVERLAP_HOURS" { value } else { "24" };
            let err = Config::from_vars(&vars(&[
                ("OVERLAP_HOURS", overlap),
                (var, value),
                ("DELIVERED_RETENTION_DAYS", retention),
            ]))
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with(&format!("environment variable `{var}`: {value} hours reaches reviews whose delivery records may be gone")),
                "{err}"
            );
            assert!(err.contains("DELIVERED_RETENTION_DAYS"), "{err}");
        }
    }

    #[test]
    fn a_secret_arn_in_another_region_is_refused_naming_both() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:review-relay-AbCdEf";
        let err = Config::from_vars(&vars(&[("SECRET_ID", arn), ("AWS_REGION", "us-east-1")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "environment variable `SECRET_ID`: the secret is in region `eu-west-1` but the function runs in `us-east-1`; Secrets Manager secrets are regional: create the secret in `us-east-1` (or deploy the stack to `eu-west-1`)"
        );
        for (secret, region) in [
            (arn, "eu-west-1"),
            ("review-relay/key", "us-east-1"),
            (arn, ""),
        ] {
            Config::from_vars(&vars(&[("SECRET_ID", secret), ("AWS_REGION", region)])).unwrap();
        }
    }

    #[test]
    fn format_is_case_insensitive() {
        let config = Config::from_vars(&vars(&[("WEBHOOK_FORMAT", " SLACK ")])).unwrap();
        assert_eq!(config.webhook_format, Some(WebhookFormat::Slack));
    }

    #[test]
    fn loopback_http_is_allowed_and_trailing_slash_is_fine() {
        for ok in [
            "http://127.0.0.1:4010/",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            let config = Config::from_vars(&vars(&[("ASC_BASE_URL", ok)])).unwrap();
            assert!(!config.asc_base_url.as_str().ends_with("//"), "{ok}");
        }
    }

    #[test]
    fn formats_are_inferred_from_the_host_suffix_only() {
        let cases = [
            (
                "https://hooks.slack.com/services/T/B/x",
                WebhookFormat::Slack,
            ),
            ("https://example.com/hooks.slack.com", WebhookFormat::Json),
            (
                "https://discord.com/api/webhooks/1/x",
                WebhookFormat::Discord,
            ),
            (
                "https://ptb.discord.com/api/webhooks/1/x",
                WebhookFormat::Discord,
            ),
            (
                "https://discordapp.com/api/webhooks/1/x",
                WebhookFormat::Discord,
            ),
            (
                "https://DISCORD.COM./api/webhooks/1/x",
                WebhookFormat::Discord,
            ),
            (
                "https://evil-discord.com/api/webhooks/1/x",
                WebhookFormat::Json,
            ),
            ("https://discord.com.evil.net/x", WebhookFormat::Json),
            (
                "https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke",
                WebhookFormat::Teams,
            ),
            (
                "https://default123.4e.environment.api.powerplatform.com/powerautomate/x",
                WebhookFormat::Teams,
            ),
            (
                "https://contoso.webhook.office.com/webhookb2/x",
                WebhookFormat::Teams,
            ),
            ("https://notlogic.azure.com/x", WebhookFormat::Json),
            (
                "https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token=t",
                WebhookFormat::GoogleChat,
            ),
            (
                "https://googleapis.com/v1/spaces/AAA/messages",
                WebhookFormat::Json,
            ),
            ("http://127.0.0.1:9/discord.com", WebhookFormat::Json),
        ];
        for (url, format) in cases {
            assert_eq!(
                WebhookFormat::infer(&Url::parse(url).unwrap()),
                format,
                "{url}"
            );
        }
    }

    #[test]
    fn every_format_parses_by_its_name_and_errors_list_them_all() {
        for format in WebhookFormat::ALL {
            assert_eq!(WebhookFormat::parse(format.name()), Some(format));
            assert!(WebhookFormat::CHOICES.contains(&format!("`{}`", format.name())));
        }
        assert_eq!(
            WebhookFormat::parse(" GoogleChat "),
            Some(WebhookFormat::GoogleChat)
        );
        let err = Config::from_vars(&vars(&[("WEBHOOK_FORMAT", "mattermost")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`slack`, `discord`, `teams`, `googlechat` or `json`"),
            "{err}"
        );
    }
}
