//! Webhook destinations: one file per message format, one sender for all.

pub mod batch;
pub mod discord;
pub mod googlechat;
pub mod json;
pub mod slack;
pub mod teams;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lc_rs::hmac;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use time::OffsetDateTime;

use crate::adapters::retry::{AfterMaybeTaken, Attempt, retry_after, with_retries_bounded};
use crate::adapters::slack::request::ButtonValue;
use crate::config::{RetryPolicy, WebhookFormat};
use crate::domain::{AppId, Edit, Review, Store, Territory};
use crate::ports::{DeliveryError, Notifier, TimeLimit};
use crate::secret::Destination;

/// Unix seconds when a signed message was sent.
pub const TIMESTAMP_HEADER: &str = "X-Review-Relay-Timestamp";
/// `sha256=` and the lowercase hex HMAC-SHA256 of `{timestamp}.{body}`.
pub const SIGNATURE_HEADER: &str = "X-Review-Relay-Signature";

pub struct WebhookNotifier {
    http: reqwest::Client,
    retry: RetryPolicy,
    /// When each destination (by key) was last posted to, for platforms that limit the pace.
    last_post: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

/// A message format: how one review is shown, how several are joined into one message, and
/// the platform's limits and pace. Each format implements it in its own file; [`format_of`]
/// is the one place a format is chosen.
pub trait MessageFormat: Send + Sync {
    /// The message one review becomes, alone. Every text in it is already within the
    /// platform's limits for that text.
    fn render(&self, card: &ReviewCard<'_>) -> Value;
    /// One message carrying `rendered` (each a [`MessageFormat::render`] of one review of the
    /// app called `app_name`), in order. One message is returned as it is; none gives `null`.
    fn join(&self, app_name: &str, rendered: &[Value]) -> Value;
    /// Whether the platform takes `message` whole.
    fn fits(&self, message: &Value) -> bool;
    /// The most reviews one message carries (fewer when [`MessageFormat::fits`] says so first).
    fn max_per_message(&self) -> usize;
    /// The least time between two posts to one webhook.
    fn pace(&self) -> Duration {
        Duration::ZERO
    }
    /// How many tries may follow one that the receiver may have taken (see
    /// [`crate::adapters::retry::may_retry`]). Chat platforms ignore `Idempotency-Key` and show
    /// every copy, so one more try at most.
    fn after_maybe_taken(&self) -> AfterMaybeTaken {
        AfterMaybeTaken::OneMore
    }
}

/// The implementation of `format`.
pub fn format_of(format: WebhookFormat) -> &'static dyn MessageFormat {
    match format {
        WebhookFormat::Slack => &slack::Slack,
        WebhookFormat::Discord => &discord::Discord,
        WebhookFormat::Teams => &teams::Teams,
        WebhookFormat::GoogleChat => &googlechat::GoogleChat,
        WebhookFormat::Json => &json::Json,
    }
}

impl WebhookNotifier {
    pub fn new(http: reqwest::Client, retry: RetryPolicy) -> Self {
        Self {
            http,
            retry,
            last_post: Default::default(),
        }
    }

    /// Waits until `destination` may take another message.
    async fn pace(&self, destination: &Destination) {
        let pace = format_of(destination.format).pace();
        if pace.is_zero() {
            return;
        }
        let wait = self
            .last_post
            .lock()
            .ok()
            .and_then(|last| last.get(&destination.key).copied())
            .map(|at| pace.saturating_sub(at.elapsed()));
        if let Some(wait) = wait.filter(|w| !w.is_zero()) {
            tokio::time::sleep(wait).await;
        }
    }

    fn posted(&self, destination: &Destination) {
        if let Ok(mut last) = self.last_post.lock() {
            last.insert(destination.key.clone(), Instant::now());
        }
    }

    async fn post_once(
        &self,
        destination: &Destination,
        idempotency_key: &str,
        body: &[u8],
        limit: Option<TimeLimit>,
        attempt: u32,
    ) -> Attempt<(), DeliveryError> {
        let mut request = self
            .http
            .post(destination.url.expose().clone())
            .timeout(TimeLimit::request_timeout(
                limit,
                self.retry.request_timeout,
            ))
            // Lets a receiver drop a message it already has (a retry after a late answer, a
            // resend after a crash).
            .header("Idempotency-Key", idempotency_key)
            .header(CONTENT_TYPE, "application/json");
        if let Some(secret) = &destination.signing_secret {
            // Signed at each try, so a retry minutes later still falls inside the receiver's
            // replay window.
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            request = request
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, signature(secret, timestamp, body));
        }
        let sent = request.body(body.to_vec()).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                // A connect error (refused, DNS, TLS handshake, connect timeout) comes before any
                // byte of the request; anything later may follow a request the receiver took.
                let connect = e.is_connect();
                let error = DeliveryError::Transport {
                    cause: crate::adapters::describe_http_error(e),
                    attempts: attempt,
                };
                return if connect {
                    Attempt::Retry { error, after: None }
                } else {
                    Attempt::RetryMaybeTaken(error)
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Done(());
        }
        let after = retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        let error = DeliveryError::Rejected {
            status: status.as_u16(),
            first_line: crate::adapters::first_line(&text),
            attempts: attempt,
        };
        match status {
            // Refused unread: nothing was shown.
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry { error, after },
            // A platform may answer these after it has posted the message.
            StatusCode::REQUEST_TIMEOUT => Attempt::RetryMaybeTaken(error),
            s if s.is_server_error() => Attempt::RetryMaybeTaken(error),
            // Any other 4xx will not change by asking again: a wrong URL, a revoked hook, a payload
            // the platform refuses.
            _ => Attempt::Fail(error),
        }
    }
}

/// The message a review becomes in `format`.
pub fn payload(format: WebhookFormat, app: &AppId, review: &Review) -> Value {
    payload_for(format, &ReviewCard::new(app, review))
}

/// The message `card` becomes in `format` (where the app's name is known, say).
pub fn payload_for(format: WebhookFormat, card: &ReviewCard<'_>) -> Value {
    format_of(format).render(card)
}

/// Where a person reads the app's reviews: App Store Connect's ratings page, where they are
/// answered; for Google Play, the app on play.google.com (the API gives nothing to build a Play
/// Console link from).
pub fn ratings_page(app: &AppId) -> String {
    match app.store() {
        Store::AppStore => format!(
            "https://appstoreconnect.apple.com/apps/{app}/distribution/activity/ios/ratingsResponses"
        ),
        // A package name is letters, digits, `_` and dots: nothing to escape.
        Store::GooglePlay => format!("https://play.google.com/store/apps/details?id={app}"),
    }
}

/// What the link to [`ratings_page`] says.
pub fn link_label(store: Store) -> &'static str {
    match store {
        Store::AppStore => "Open in App Store Connect",
        Store::GooglePlay => "Open on Google Play",
    }
}

/// What every chat format shows of a review, before the format's own escaping and limits.
pub struct ReviewCard<'a> {
    pub app: &'a AppId,
    pub review: &'a Review,
    /// The app as people call it; `App 1234567890` until its name is known.
    pub app_name: String,
    /// `★★★★☆`, or `(no rating)`; an edit says so, with the rating before when it changed:
    /// `★★☆☆☆ → ★★★★☆ (edited)`.
    pub stars: String,
    /// Text attributes with surrounding whitespace removed; `None` when absent or blank.
    pub title: Option<&'a str>,
    pub body: Option<&'a str>,
    pub nickname: Option<&'a str>,
    pub territory: Option<Territory>,
    /// `2024-02-03 12:05 UTC`.
    pub date: String,
    /// The reviewer's own words when the body is the store's translation of them (Google Play
    /// with `PLAY_TRANSLATION_LANGUAGE`): a title and a body joined by a tab are shown on two
    /// lines. `None` when not translated.
    pub original: Option<String>,
    /// The developer's published reply.
    pub reply: Option<&'a str>,
    /// [`ratings_page`].
    pub link: String,
    /// What the link says: [`link_label`].
    pub link_label: &'static str,
    /// `App Store review`, `Google Play review`: the store, in the message's own words.
    pub kind: String,
    /// The value of the review's Reply button ([`ButtonValue::encode`]), for a destination
    /// marked interactive; `None` shows no button. Only Slack draws it.
    pub reply_button: Option<String>,
}

impl<'a> ReviewCard<'a> {
    pub fn new(app: &'a AppId, review: &'a Review) -> Self {
        let text = |value: &'a Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
        };
        Self {
            app,
            review,
            app_name: format!("App {app}"),
            stars: match &review.edit {
                None => stars(review.rating),
                Some(Edit {
                    previous_rating: Some(before),
                    ..
                }) => format!(
                    "{} → {} (edited)",
                    stars(Some(*before)),
                    stars(review.rating)
                ),
                Some(_) => format!("{} (edited)", stars(review.rating)),
            },
            title: text(&review.title),
            body: text(&review.body),
            nickname: text(&review.reviewer_nickname),
            territory: text(&review.territory).map(Territory::from_code),
            date: display_date(review),
            original: original_words(review),
            reply: review
                .response
                .as_ref()
                .map(|r| r.body.trim())
                .filter(|text| !text.is_empty()),
            link: ratings_page(app),
            link_label: link_label(review.store),
            kind: format!("{} review", review.store.name()),
            reply_button: None,
        }
    }

    /// Shows a Reply button naming the review by its store's id: an edit's versioned id is
    /// review-relay's own, and the store answers the review, not the version. No button when
    /// the id is not of the shape the interaction endpoint takes (it would refuse the click,
    /// and an over-long value would make Slack refuse the whole message).
    pub fn with_reply_button(mut self) -> Self {
        let value = ButtonValue::encode(self.app, self.review.original_id());
        self.reply_button = ButtonValue::parse(&value).is_ok().then_some(value);
        self
    }

    /// Shows `name` instead of the app id.
    pub fn with_app_name(mut self, name: &str) -> Self {
        if !name.trim().is_empty() {
            self.app_name = name.trim().to_owned();
        }
        self
    }

    pub fn nickname_or_anonymous(&self) -> &'a str {
        self.nickname.unwrap_or("an anonymous reviewer")
    }

    /// Where the reviewer is: `🇫🇷 France`, the unknown code as sent, or `unknown territory`;
    /// Google Play gives the device's language instead: `language en-GB`.
    pub fn territory_display(&self) -> String {
        if self.review.store == Store::GooglePlay {
            return match self.review.details.language.as_deref().map(str::trim) {
                Some(language) if !language.is_empty() => format!("language {language}"),
                _ => "language unknown".to_owned(),
            };
        }
        self.territory
            .as_ref()
            .map_or_else(|| "unknown territory".to_owned(), Territory::display)
    }

    /// The label of a field showing where the reviewer is: `Territory`, or `Language` for Play.
    pub fn place_label(&self) -> &'static str {
        match self.review.store {
            Store::AppStore => "Territory",
            Store::GooglePlay => "Language",
        }
    }

    /// The value of that field: [`Self::territory_display`], or the bare language tag.
    pub fn place_value(&self) -> String {
        match self.review.store {
            Store::AppStore => self.territory_display(),
            Store::GooglePlay => self
                .review
                .details
                .language
                .as_deref()
                .map(str::trim)
                .filter(|language| !language.is_empty())
                .unwrap_or("unknown")
                .to_owned(),
        }
    }
}

/// The reviewer's own words of a translated review, unless the translation left them as they
/// were.
fn original_words(review: &Review) -> Option<String> {
    let original = review.details.original_text.as_deref()?.trim();
    let shown = [review.title.as_deref(), review.body.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\t");
    (!original.is_empty() && original != shown).then(|| {
        original
            .split('\t')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// What a message calls the reviewer's own words beside a translation.
pub const ORIGINAL_HEADING: &str = "Original text";

pub fn stars(rating: Option<u8>) -> String {
    match rating {
        Some(r @ 1..=5) => "★".repeat(r.into()) + &"☆".repeat((5 - r).into()),
        _ => "(no rating)".to_owned(),
    }
}

/// `2024-02-03 12:05 UTC`, or Apple's string when it cannot be formatted.
pub fn display_date(review: &Review) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(review.key().nanos)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| review.created_date.clone())
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn max_per_message(&self, destination: &Destination) -> usize {
        format_of(destination.format).max_per_message()
    }

    async fn send(
        &self,
        destination: &Destination,
        app: &AppId,
        app_name: Option<&str>,
        reviews: &[&Review],
        limit: Option<TimeLimit>,
    ) -> Result<usize, DeliveryError> {
        let Some(message) = first_message(
            destination.format,
            destination.interactive,
            app,
            app_name,
            reviews,
        ) else {
            return Ok(0);
        };
        // Serialised once: a signature covers exactly these bytes, at every try.
        let body = serde_json::to_vec(&message.body).map_err(|e| DeliveryError::Transport {
            cause: format!("the message could not be serialised ({e})"),
            attempts: 0,
        })?;
        self.pace(destination).await;
        let result = with_retries_bounded(
            &self.retry,
            format_of(destination.format).after_maybe_taken(),
            TimeLimit::give_up_at(limit),
            |attempt| self.post_once(destination, &message.idempotency_key, &body, limit, attempt),
        )
        .await;
        self.posted(destination);
        result.map(|()| message.review_count)
    }
}

/// The first message `reviews` make in `format`: as many of them, in order, as one carries;
/// each with a Reply button when `interactive` (a destination's `interactive`).
pub fn first_message(
    format: WebhookFormat,
    interactive: bool,
    app: &AppId,
    app_name: Option<&str>,
    reviews: &[&Review],
) -> Option<batch::Message> {
    let cards: Vec<ReviewCard<'_>> = reviews
        .iter()
        .map(|review| {
            let mut card = ReviewCard::new(app, review);
            if let Some(name) = app_name {
                card = card.with_app_name(name);
            }
            if interactive {
                card = card.with_reply_button();
            }
            card
        })
        .collect();
    batch::messages(format, &cards).into_iter().next()
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `{timestamp}.{body}` under `secret`.
pub fn signature(secret: &SecretString, timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for byte in tag.as_ref() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Cuts `text` to at most `max` characters, ending with an ellipsis when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep: String = text.chars().take(max.saturating_sub(1)).collect();
            keep + "…"
        }
    }
}

/// Cuts `text` to at most `max` bytes of UTF-8 at a character boundary, ending with an ellipsis
/// (3 bytes) when cut.
pub fn truncate_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let Some(room) = max.checked_sub('…'.len_utf8()) else {
        return String::new();
    };
    let end = text
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|end| *end <= room)
        .last()
        .unwrap_or(0);
    text[..end].to_owned() + "…"
}

/// Cuts `text` to at most `max` UTF-16 code units at a character boundary, ending with an
/// ellipsis when cut. Platforms written in JavaScript count length this way: an emoji is two.
pub fn truncate_utf16(text: &str, max: usize) -> String {
    if utf16_len(text) <= max {
        return text.to_owned();
    }
    let Some(room) = max.checked_sub(1) else {
        return String::new();
    };
    let mut used = 0;
    let mut kept = String::new();
    for c in text.chars() {
        used += c.len_utf16();
        if used > room {
            break;
        }
        kept.push(c);
    }
    kept + "…"
}

pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// `escape(raw)`, cut on a character of `raw` (never inside an escape) with an ellipsis so that
/// `measure` of the result is at most `max`.
pub fn fit_escaped(
    raw: &str,
    max: usize,
    escape: impl Fn(&str) -> String,
    measure: impl Fn(&str) -> usize,
) -> String {
    let whole = escape(raw);
    if measure(&whole) <= max {
        return whole;
    }
    let ends: Vec<usize> = raw.char_indices().map(|(i, _)| i).collect();
    let cut = |kept: usize| escape(&raw[..ends[kept]]) + "…";
    // The longest prefix whose escaped form and ellipsis fit; escaping a longer prefix is never
    // shorter.
    let (mut low, mut high) = (0, ends.len());
    if measure(&cut(0)) > max {
        return String::new();
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if measure(&cut(mid)) <= max {
            low = mid;
        } else {
            high = mid;
        }
    }
    cut(low)
}

pub fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// Serialised size of a message, as it is sent.
pub fn json_len(message: &Value) -> usize {
    serde_json::to_vec(message).map_or(usize::MAX, |bytes| bytes.len())
}

/// Builds a message from `texts` (raw user text, escaped by `build`) and, while it serialises to
/// more than `max_bytes`, cuts the longest text to the longest prefix (and an ellipsis) that
/// fits, emptying it when even that cannot. Cutting raw text, not escaped text, never leaves half
/// an escape.
pub fn fit_bytes(
    max_bytes: usize,
    mut texts: Vec<String>,
    build: impl Fn(&[String]) -> Value,
) -> Value {
    loop {
        let message = build(&texts);
        if json_len(&message) <= max_bytes {
            return message;
        }
        let Some(longest) = (0..texts.len())
            .filter(|i| !texts[*i].is_empty())
            .max_by_key(|i| texts[*i].len())
        else {
            return message;
        };
        let whole = std::mem::take(&mut texts[longest]);
        let ends: Vec<usize> = whole.char_indices().map(|(i, _)| i).collect();
        let mut fits = |kept: usize| {
            texts[longest] = whole[..ends[kept]].to_owned() + "…";
            json_len(&build(&texts)) <= max_bytes
        };
        if !fits(0) {
            texts[longest] = String::new();
            continue;
        }
        // A longer prefix never serialises shorter.
        let (mut low, mut high) = (0, ends.len());
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if fits(mid) {
                low = mid;
            } else {
                high = mid;
            }
        }
        fits(low);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::RelaySecret;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn chat_formats_get_one_more_try_after_a_late_answer_json_every_try() {
        for format in WebhookFormat::ALL {
            let expected = if format == WebhookFormat::Json {
                AfterMaybeTaken::UpToTheLimit
            } else {
                AfterMaybeTaken::OneMore
            };
            assert_eq!(
                format_of(format).after_maybe_taken(),
                expected,
                "{format:?}"
            );
        }
    }

    fn destination(url: &str, format: WebhookFormat) -> Destination {
        let fields = serde_json::json!({
            "key_id": "K1",
            "private_key": include_str!("../../../tests/fixtures/keys/AuthKey_TESTKEY001.p8"),
            "webhook_url": url,
        });
        let secret = RelaySecret::parse(&SecretString::from(fields.to_string()), Some(format));
        secret.unwrap().destinations.remove(0)
    }

    /// Four tries, a few milliseconds apart, each given `timeout`.
    fn notifier(timeout: Duration) -> WebhookNotifier {
        let retry = RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(4),
            retry_after_max: Duration::from_secs(1),
            request_timeout: timeout,
        };
        WebhookNotifier::new(reqwest::Client::new(), retry)
    }

    async fn send_one(notifier: &WebhookNotifier, to: &Destination) -> DeliveryError {
        let app = AppId::parse("1234567890").unwrap();
        let review = Review::new(
            "r1".into(),
            Some(5),
            None,
            None,
            None,
            None,
            "2024-06-01T12:00:00Z".into(),
            None,
        )
        .unwrap();
        notifier
            .send(to, &app, None, &[&review], None)
            .await
            .expect_err("nothing answers 2xx")
    }

    fn attempts(error: &DeliveryError) -> u32 {
        match error {
            DeliveryError::Transport { attempts, .. }
            | DeliveryError::Rejected { attempts, .. } => *attempts,
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_up_to_the_limit_even_for_a_chat_platform() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", closed.local_addr().unwrap());
        drop(closed);
        let error = send_one(
            &notifier(Duration::from_secs(5)),
            &destination(&url, WebhookFormat::Slack),
        )
        .await;
        assert_eq!(attempts(&error), 4, "{error}");
    }

    #[tokio::test]
    async fn a_failed_tls_handshake_is_retried_up_to_the_limit_even_for_a_chat_platform() {
        // Takes each connection and closes it at once: the handshake fails before any request.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { while listener.accept().await.is_ok() {} });
        let error = send_one(
            &notifier(Duration::from_secs(5)),
            &destination(&url, WebhookFormat::Teams),
        )
        .await;
        assert_eq!(attempts(&error), 4, "{error}");
    }

    /// A receiver that reads what it is sent and never answers; counts the requests (a try that
    /// timed out drops its connection, so each try comes on a new one).
    async fn silent_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = std::sync::Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counted = std::sync::Arc::clone(&counted);
                tokio::spawn(async move {
                    let mut buffer = [0; 4096];
                    let mut first = true;
                    while let Ok(1..) = socket.read(&mut buffer).await {
                        if std::mem::take(&mut first) {
                            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    let _ = socket.shutdown().await;
                });
            }
        });
        (url, requests)
    }

    #[tokio::test]
    async fn a_timeout_after_the_request_went_out_gets_one_more_try_on_a_chat_platform() {
        let (url, requests) = silent_receiver().await;
        let error = send_one(
            &notifier(Duration::from_millis(300)),
            &destination(&url, WebhookFormat::Slack),
        )
        .await;
        assert_eq!(attempts(&error), 2, "{error}");
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);

        let (url, requests) = silent_receiver().await;
        let error = send_one(
            &notifier(Duration::from_millis(300)),
            &destination(&url, WebhookFormat::Json),
        )
        .await;
        assert_eq!(
            attempts(&error),
            4,
            "a json receiver drops copies by key: {error}"
        );
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[test]
    fn the_original_words_show_only_beside_a_translation_that_changed_them() {
        let app = AppId::play("com.example.app").unwrap();
        let mut review = Review::new(
            "gp:1".into(),
            Some(4),
            Some("Great".into()),
            Some("Works well".into()),
            None,
            None,
            "2026-11-20T10:00:00Z".into(),
            None,
        )
        .unwrap()
        .in_store(Store::GooglePlay);
        assert_eq!(ReviewCard::new(&app, &review).original, None);
        review.details.original_text = Some(" Ótimo\tFunciona bem ".into());
        assert_eq!(
            ReviewCard::new(&app, &review).original.as_deref(),
            Some("Ótimo\nFunciona bem")
        );
        // An original the same as what is shown adds nothing.
        review.details.original_text = Some("Great\tWorks well".into());
        assert_eq!(ReviewCard::new(&app, &review).original, None);
        review.details.original_text = Some("  ".into());
        assert_eq!(ReviewCard::new(&app, &review).original, None);
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate_chars("héllo", 5), "héllo");
        assert_eq!(truncate_chars("héllo wörld", 5), "héll…");
        assert_eq!(truncate_chars("👍👍👍", 2), "👍…");
    }

    #[test]
    fn byte_truncation_never_splits_a_character() {
        assert_eq!(truncate_bytes("hello", 5), "hello");
        assert_eq!(truncate_bytes("hello!", 5), "he…");
        // 漢 is 3 bytes, 👍 4: nothing of a character that does not fit is kept.
        assert_eq!(truncate_bytes("漢字漢字", 10), "漢字…");
        assert_eq!(truncate_bytes("👍👍👍", 9), "👍…");
        assert_eq!(truncate_bytes("👍👍👍", 6), "…");
        assert_eq!(truncate_bytes("👍👍👍", 2), "");
        for max in 0..40 {
            let cut = truncate_bytes("مرحبا 👋 世界 héllo", max);
            assert!(cut.len() <= max, "{max}: {cut}");
        }
    }

    #[test]
    fn utf16_truncation_counts_an_emoji_as_two() {
        assert_eq!(utf16_len("a👍"), 3);
        assert_eq!(truncate_utf16("👍👍👍", 4), "👍…");
        assert_eq!(truncate_utf16("👍👍", 4), "👍👍");
        assert_eq!(truncate_utf16("abc", 2), "a…");
    }

    #[test]
    fn fitting_cuts_the_longest_text_until_the_message_fits() {
        let build = |texts: &[String]| serde_json::json!({"a": texts[0], "b": texts[1]});
        let message = fit_bytes(1_000, vec!["\"".repeat(3_000), "x".repeat(100)], build);
        assert!(json_len(&message) <= 1_000, "{}", json_len(&message));
        assert_eq!(message["b"], "x".repeat(100));
        assert!(message["a"].as_str().unwrap().ends_with('…'));
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"reviews":[]}' |
        //   openssl dgst -sha256 -hmac 'whsec_test'
        let secret = SecretString::from("whsec_test");
        assert_eq!(
            signature(&secret, 1_700_000_000, br#"{"reviews":[]}"#),
            "sha256=e49ebc545bdbf4ffdad42d38386af3ebde2edc2a715fabf6db03add37c589689"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = hmac::sign(&key, b"what do ya want for nothing?");
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
