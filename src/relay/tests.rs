//! Given/When/Then on in-memory ports.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use secrecy::SecretString;

use super::*;
use crate::domain::{Delivered, FoundRecord, Progress, parse_instant};
use crate::ports::{DeliveryError, Lease, NotedAnswer, Snapshot};
use crate::secret::Destination;

const NOW: &str = "2024-06-01T12:00:00Z";

fn secret() -> Arc<RelaySecret> {
    let fields = serde_json::json!({
        "issuer_id": "ISS",
        "key_id": "K1",
        "private_key": include_str!("../../tests/fixtures/keys/AuthKey_TESTKEY001.p8"),
        "webhook_url": "https://example.com/hook",
    });
    Arc::new(RelaySecret::parse(&SecretString::from(fields.to_string()), None).unwrap())
}

fn review(id: &str, date: &str) -> Review {
    crate::domain::sample_review(id, date)
}

/// An App Store app id, or a Google Play package name.
fn app(id: &str) -> AppId {
    AppId::parse_any(id).unwrap()
}

#[derive(Default)]
struct FakeSecrets {
    loads: AtomicUsize,
    broken: bool,
    /// `destinations` in place of the one `webhook_url`.
    destinations: Mutex<Option<serde_json::Value>>,
}

#[async_trait]
impl Secrets for FakeSecrets {
    async fn load(&self, _refresh: bool) -> Result<Arc<RelaySecret>, SecretError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.broken {
            return Err(SecretError::NotAString {
                secret_id: "s".into(),
            });
        }
        match self.destinations.lock().unwrap().clone() {
            None => Ok(secret()),
            Some(destinations) => {
                let fields = serde_json::json!({
                    "issuer_id": "ISS",
                    "key_id": "K1",
                    "private_key": include_str!("../../tests/fixtures/keys/AuthKey_TESTKEY001.p8"),
                    "destinations": destinations,
                });
                Ok(Arc::new(
                    RelaySecret::parse(&SecretString::from(fields.to_string()), None).unwrap(),
                ))
            }
        }
    }
}

/// Serves each app's reviews newest first in pages of `page_size`, like Apple.
struct FakeSource {
    reviews: Mutex<HashMap<AppId, Vec<Review>>>,
    page_size: usize,
    requests: AtomicUsize,
    /// Optional reads are not affordable, as with a store's request budget running low.
    budget_low: std::sync::atomic::AtomicBool,
    /// How long each page takes.
    page_delay: Mutex<Duration>,
    /// Every page is refused with 401, as with a revoked key.
    revoked: std::sync::atomic::AtomicBool,
    /// A limit on requests per app and hour, as Google Play has.
    hourly_limit: Mutex<Option<u32>>,
}

impl FakeSource {
    fn new(page_size: usize) -> Self {
        Self {
            reviews: Mutex::default(),
            page_size,
            requests: AtomicUsize::new(0),
            budget_low: std::sync::atomic::AtomicBool::new(false),
            page_delay: Mutex::new(Duration::ZERO),
            revoked: std::sync::atomic::AtomicBool::new(false),
            hourly_limit: Mutex::new(None),
        }
    }

    fn set(&self, app_id: &str, mut reviews: Vec<Review>) {
        reviews.sort_by_key(|r| std::cmp::Reverse(r.key().nanos));
        self.reviews.lock().unwrap().insert(app(app_id), reviews);
    }
}

#[async_trait]
impl ReviewSource for FakeSource {
    async fn page(
        &self,
        app: &AppId,
        request: &Cursor,
        _limit: Option<TimeLimit>,
    ) -> Result<Page, SourceError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let delay = *self.page_delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if self.revoked.load(Ordering::SeqCst) {
            return Err(SourceError::Unauthorized);
        }
        let all = self.reviews.lock().unwrap().get(app).cloned();
        let all = all.ok_or_else(|| SourceError::AppNotFound(app.clone()))?;
        let offset = match request {
            Cursor::First => 0,
            Cursor::Next(offset) => offset.parse().unwrap(),
        };
        if offset > all.len() {
            // As Apple answers a cursor it no longer knows.
            return Err(SourceError::Status {
                status: 400,
                detail: " PARAMETER_ERROR.INVALID: cursor".into(),
                attempts: 1,
            });
        }
        let end = (offset + self.page_size).min(all.len());
        let next = (end < all.len()).then(|| Cursor::Next(end.to_string()));
        Ok(Page {
            reviews: all[offset..end].to_vec(),
            next,
        })
    }

    fn optional_reads_affordable(&self, _app: &AppId) -> bool {
        !self.budget_low.load(Ordering::SeqCst)
    }

    fn hourly_request_limit(&self) -> Option<u32> {
        *self.hourly_limit.lock().unwrap()
    }

    /// Every request, whichever app: the tests that use it relay one app.
    fn requests_sent(&self, _app: &AppId) -> u64 {
        self.requests.load(Ordering::SeqCst) as u64
    }
}

/// What another run does to the table.
type Meanwhile = Box<dyn FnOnce(&MemoryState) + Send>;

/// The table in memory, with the same conditions as the DynamoDB adapter.
#[derive(Default)]
struct MemoryState {
    apps: Mutex<HashMap<AppId, AppState>>,
    tallies: Mutex<HashMap<AppId, crate::ports::RequestTally>>,
    leases: Mutex<HashMap<AppId, Lease>>,
    /// Delivery records written.
    writes: AtomicUsize,
    /// Reads of an app's items.
    reads: AtomicUsize,
    /// Runs once, just before the next lease is taken: another run's doing in between.
    before_acquire: Mutex<Option<Meanwhile>>,
    /// Every delivery record written and not yet expired, with when it expires (Unix s), like
    /// the table's items under TTL.
    records: Mutex<Vec<MemoryRecord>>,
    /// Noted answers by app and review id, with when each expires (Unix s).
    answers: Mutex<HashMap<(AppId, String), (crate::domain::DeveloperResponse, i64)>>,
}

#[derive(Debug, Clone)]
struct MemoryRecord {
    app: AppId,
    key: crate::domain::ReviewKey,
    destination: String,
    expires_at: i64,
}

impl MemoryState {
    /// Removes the records expired at `now_nanos`, as DynamoDB's TTL does some time after
    /// `expires_at` (a load treats them as gone from then on anyway).
    fn expire(&self, now_nanos: i128) {
        let mut records = self.records.lock().unwrap();
        let mut apps = self.apps.lock().unwrap();
        records.retain(|record| {
            let alive = i128::from(record.expires_at) * 1_000_000_000 > now_nanos;
            if !alive
                && let Some(state) = apps.get_mut(&record.app)
                && let Some(Delivered::To(keys)) = state.delivered.get_mut(&record.key.id)
            {
                keys.remove(&record.destination);
                if keys.is_empty() {
                    state.delivered.remove(&record.key.id);
                }
            }
            alive
        });
    }
}

#[async_trait]
impl StateStore for MemoryState {
    async fn load(
        &self,
        app: &AppId,
        lookback: Lookback,
        replay_from_nanos: Option<i128>,
    ) -> Result<Snapshot, StateError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.expire(lookback.now_nanos);
        let older: HashSet<String> = {
            let records = self.records.lock().unwrap();
            self.apps
                .lock()
                .unwrap()
                .get(app)
                .map_or_else(HashSet::new, |state| {
                    let mut state = state.clone();
                    state.replay_from_nanos = replay_from_nanos;
                    let start = state.window_start(lookback);
                    // Like the table's query, a load reads the records from the window start on.
                    records
                        .iter()
                        .filter(|r| &r.app == app && r.key.nanos < start)
                        .map(|r| r.key.id.clone())
                        .collect()
                })
        };
        let state = self
            .apps
            .lock()
            .unwrap()
            .get(app)
            .cloned()
            .map(|mut state| {
                state.replay_from_nanos = replay_from_nanos;
                state.delivered.retain(|id, _| !older.contains(id));
                state
                    .versions
                    .retain(|_, (key, _)| !older.contains(&key.id));
                state
            });
        let lease = self
            .leases
            .lock()
            .unwrap()
            .get(app)
            .cloned()
            .unwrap_or_default();
        let requests = self.tallies.lock().unwrap().get(app).copied();
        let answers = self
            .answers
            .lock()
            .unwrap()
            .iter()
            .filter(|((of, _), (_, until))| of == app && !lookback.expired(*until))
            .map(|((_, id), (answer, _))| (id.clone(), answer.clone()))
            .collect();
        Ok(Snapshot {
            state,
            lease,
            requests,
            answers,
        })
    }

    /// Like the table's index of versions: only for stores whose edits move reviews, the
    /// latest version of each review whose records have not expired.
    async fn find_records(
        &self,
        app: &AppId,
        ids: &[String],
        lookback: Lookback,
    ) -> Result<Vec<FoundRecord>, StateError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.expire(lookback.now_nanos);
        if !app.store().edits_move_reviews() {
            return Ok(Vec::new());
        }
        let apps = self.apps.lock().unwrap();
        let Some(state) = apps.get(app) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .filter_map(|id| {
                let (key, version) = state.versions.get(id)?;
                let to = state.delivered.get(&key.id)?;
                Some(FoundRecord {
                    key: key.clone(),
                    version: version.clone(),
                    to: to.clone(),
                })
            })
            .collect())
    }

    async fn note_answer(
        &self,
        app: &AppId,
        review_id: &str,
        answer: Option<&NotedAnswer>,
        keep_until_secs: i64,
    ) -> Result<(), StateError> {
        let key = (app.clone(), review_id.to_owned());
        let mut answers = self.answers.lock().unwrap();
        match answer {
            None => {
                answers.remove(&key);
            }
            Some(answer) => {
                let response = crate::domain::DeveloperResponse {
                    body: answer.text.clone(),
                    last_modified_date: None,
                };
                answers.insert(key, (response, keep_until_secs));
            }
        }
        Ok(())
    }

    async fn count_requests(
        &self,
        app: &AppId,
        hour_start_secs: i64,
        count: u32,
    ) -> Result<(), StateError> {
        let mut tallies = self.tallies.lock().unwrap();
        let tally = tallies.entry(app.clone()).or_default();
        if tally.hour_start_secs == hour_start_secs {
            tally.count += count;
        } else if tally.hour_start_secs < hour_start_secs {
            *tally = crate::ports::RequestTally {
                hour_start_secs,
                count,
            };
        }
        Ok(())
    }

    async fn create(&self, app: &AppId, state: &AppState) -> Result<AppState, StateError> {
        Ok(self
            .apps
            .lock()
            .unwrap()
            .entry(app.clone())
            .or_insert_with(|| state.clone())
            .clone())
    }

    async fn record(
        &self,
        app: &AppId,
        delivered: &[Watermark],
        destination: &str,
        keep_until_secs: i64,
    ) -> Result<(), StateError> {
        let mut apps = self.apps.lock().unwrap();
        let state = apps.get_mut(app).ok_or(StateError::Conflict)?;
        if delivered
            .iter()
            .any(|d| state.delivered_to(&d.key.id, destination))
        {
            return Err(StateError::Conflict);
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        for mark in delivered {
            state.deliver_to(&mark.key.id, &[destination.to_owned()]);
            state.note_version(mark);
            self.records.lock().unwrap().push(MemoryRecord {
                app: app.clone(),
                key: mark.key.clone(),
                destination: destination.to_owned(),
                expires_at: keep_until_secs,
            });
        }
        Ok(())
    }

    async fn save_progress(&self, app: &AppId, progress: &Progress) -> Result<(), StateError> {
        let mut apps = self.apps.lock().unwrap();
        let state = apps.get_mut(app).ok_or(StateError::Conflict)?;
        state.progress = progress.clone();
        Ok(())
    }

    async fn set_failing(
        &self,
        app: &AppId,
        destination: &str,
        since_nanos: Option<i128>,
    ) -> Result<(), StateError> {
        let mut apps = self.apps.lock().unwrap();
        let state = apps.get_mut(app).ok_or(StateError::Conflict)?;
        match since_nanos {
            Some(since) => {
                state
                    .failing_since
                    .entry(destination.to_owned())
                    .or_insert(since);
            }
            None => {
                state.failing_since.remove(destination);
            }
        }
        Ok(())
    }

    async fn advance(&self, app: &AppId, to: &Watermark) -> Result<(), StateError> {
        let mut apps = self.apps.lock().unwrap();
        let state = apps.get_mut(app).ok_or(StateError::Conflict)?;
        if state.watermark.as_ref().is_none_or(|w| w.key < to.key) {
            state.watermark = Some(to.clone());
        }
        Ok(())
    }

    async fn add_destination(
        &self,
        app: &AppId,
        destination: &str,
        since_nanos: i128,
    ) -> Result<(), StateError> {
        let mut apps = self.apps.lock().unwrap();
        let state = apps.get_mut(app).ok_or(StateError::Conflict)?;
        state
            .destinations_since
            .entry(destination.to_owned())
            .or_insert(since_nanos);
        Ok(())
    }

    async fn acquire_lease(
        &self,
        app: &AppId,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
        seen: &Lease,
    ) -> Result<bool, StateError> {
        let meanwhile = self.before_acquire.lock().unwrap().take();
        if let Some(meanwhile) = meanwhile {
            meanwhile(self);
        }
        let mut leases = self.leases.lock().unwrap();
        let lease = leases.entry(app.clone()).or_default();
        if lease.until_ms >= now_ms || lease.generation != seen.generation {
            return Ok(false);
        }
        *lease = Lease {
            holder: Some(holder.to_owned()),
            until_ms,
            generation: Some(lease.generation.unwrap_or(0) + 1),
        };
        Ok(true)
    }

    async fn release_lease(&self, app: &AppId, holder: &str) -> Result<(), StateError> {
        let mut leases = self.leases.lock().unwrap();
        if let Some(lease) = leases.get_mut(app)
            && lease.holder.as_deref() == Some(holder)
        {
            *lease = Lease {
                holder: None,
                until_ms: 0,
                generation: Some(lease.generation.unwrap_or(0) + 1),
            };
        }
        Ok(())
    }
}

/// Records what it accepted; refuses the deliveries whose 1-based attempt number is listed, and
/// everything to a destination whose key is `down`.
#[derive(Default)]
struct RecordingNotifier {
    accepted: Mutex<Vec<(String, String)>>,
    by_destination: Mutex<Vec<(String, String)>>,
    attempts: AtomicUsize,
    refuse: Vec<usize>,
    down: Mutex<HashSet<String>>,
    /// Reviews per message (0 counts as 1).
    per_message: AtomicUsize,
    /// How long each message takes.
    delay: Mutex<Duration>,
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn max_per_message(&self, _destination: &Destination) -> usize {
        self.per_message.load(Ordering::SeqCst).max(1)
    }

    async fn send(
        &self,
        destination: &Destination,
        app: &AppId,
        _app_name: Option<&str>,
        reviews: &[&Review],
        _limit: Option<TimeLimit>,
    ) -> Result<usize, DeliveryError> {
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if self.refuse.contains(&attempt) || self.down.lock().unwrap().contains(&destination.key) {
            return Err(DeliveryError::Rejected {
                status: 500,
                first_line: "boom".into(),
                attempts: 1,
            });
        }
        let carried = &reviews[..reviews.len().min(self.max_per_message(destination))];
        for review in carried {
            self.accepted
                .lock()
                .unwrap()
                .push((app.to_string(), review.id.clone()));
            self.by_destination
                .lock()
                .unwrap()
                .push((destination.key.clone(), review.id.clone()));
        }
        Ok(carried.len())
    }
}

impl RecordingNotifier {
    fn ids_to(&self, destination: &str) -> Vec<String> {
        self.by_destination
            .lock()
            .unwrap()
            .iter()
            .filter(|(d, _)| d == destination)
            .map(|(_, id)| id.clone())
            .collect()
    }

    fn ids(&self, app_id: &str) -> Vec<String> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| a == app_id)
            .map(|(_, id)| id.clone())
            .collect()
    }
}

struct World {
    secrets: FakeSecrets,
    source: FakeSource,
    state: MemoryState,
    notifier: RecordingNotifier,
}

impl World {
    fn new(page_size: usize) -> Self {
        Self {
            secrets: FakeSecrets::default(),
            source: FakeSource::new(page_size),
            state: MemoryState::default(),
            notifier: RecordingNotifier::default(),
        }
    }

    /// The app's watermark in the table, if it has one.
    fn watermark(&self, app_id: &str) -> Option<Watermark> {
        self.state.apps.lock().unwrap()[&app(app_id)]
            .watermark
            .clone()
    }

    async fn run(&self, apps: &[&str]) -> RunSummary {
        self.run_with(options(apps)).await
    }

    async fn run_with(&self, options: RunOptions) -> RunSummary {
        let deps = Deps {
            secrets: &self.secrets,
            sources: Sources {
                app_store: Some(&self.source),
                google_play: Some(&self.source),
            },
            state: &self.state,
            notifier: &self.notifier,
        };
        run_once(&deps, &options).await
    }
}

fn options(apps: &[&str]) -> RunOptions {
    let now_nanos = parse_instant(NOW).unwrap();
    RunOptions {
        apps: apps.iter().map(|a| app(a)).collect(),
        backfill_hours: 24,
        overlap_hours: 72,
        retention_days: 30,
        holder: "test-run".into(),
        lease_until_ms: (now_nanos / 1_000_000) as i64 + 60_000,
        now_nanos,
        replay_from_nanos: None,
        deadline: None,
        deadline_margin: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn first_run_delivers_the_backfill_window_oldest_first_then_nothing() {
    let world = World::new(2);
    world.source.set(
        "1",
        vec![
            review("too-old", "2024-05-30T12:00:00Z"),
            review("b", "2024-06-01T10:00:00+02:00"),
            review("a", "2024-06-01T07:00:00Z"),
            review("c", "2024-06-01T11:00:00Z"),
        ],
    );
    let first = world.run(&["1"]).await;
    assert_eq!(world.notifier.ids("1"), ["a", "b", "c"]);
    assert_eq!(first.apps[0].status, AppStatus::Ok);
    assert_eq!((first.apps[0].new, first.apps[0].delivered), (3, 3));

    let second = world.run(&["1"]).await;
    assert_eq!(world.notifier.ids("1").len(), 3, "nothing twice");
    assert_eq!(second.apps[0].delivered, 0);
    assert_eq!(
        second.apps[0].pages, 2,
        "the overlap window is read again, and no page past it"
    );
}

#[tokio::test]
async fn failure_at_the_nth_delivery_keeps_the_first_and_resumes_in_order() {
    let mut world = World::new(10);
    world.notifier.refuse = vec![3];
    world.source.set(
        "1",
        (1..=5)
            .map(|i| review(&format!("r{i}"), &format!("2024-06-01T0{i}:00:00Z")))
            .collect(),
    );
    let first = world.run(&["1"]).await;
    assert_eq!(first.apps[0].status, AppStatus::Failed);
    assert_eq!(first.apps[0].delivered, 2);
    assert_eq!(first.apps[0].pending, 3);
    let message = first.failure_message().unwrap();
    assert!(
        message.contains("1: review r3 to webhook_url (json): the webhook answered 500: boom"),
        "{message}"
    );

    world.run(&["1"]).await;
    assert_eq!(world.notifier.ids("1"), ["r1", "r2", "r3", "r4", "r5"]);
}

#[tokio::test]
async fn ties_split_across_pages_are_all_found() {
    let world = World::new(2);
    let same = "2024-06-01T09:00:00Z";
    world.source.set(
        "1",
        vec![review("x1", same), review("x2", same), review("x3", same)],
    );
    world.run(&["1"]).await;
    world.source.set(
        "1",
        vec![
            review("x1", same),
            review("x2", same),
            review("x3", same),
            review("x4", same),
        ],
    );
    world.run(&["1"]).await;
    assert_eq!(world.notifier.ids("1"), ["x1", "x2", "x3", "x4"]);
}

#[tokio::test]
async fn one_app_failing_does_not_stop_the_others() {
    let world = World::new(5);
    world
        .source
        .set("2", vec![review("only", "2024-06-01T11:00:00Z")]);
    let summary = world.run(&["1", "2"]).await;
    assert_eq!(summary.apps[0].status, AppStatus::Failed);
    assert_eq!(summary.apps[1].status, AppStatus::Ok);
    assert_eq!(world.notifier.ids("2"), ["only"]);
    let message = summary.failure_message().unwrap();
    assert!(
        message.starts_with("1 of 2 apps failed: 1: page 1: app 1 was not found"),
        "{message}"
    );
}

#[tokio::test]
async fn a_broken_secret_fails_every_app_and_touches_nothing() {
    let mut world = World::new(5);
    world.secrets.broken = true;
    world
        .source
        .set("1", vec![review("r", "2024-06-01T11:00:00Z")]);
    let summary = world.run(&["1", "2"]).await;
    assert!(summary.apps.iter().all(|a| a.status == AppStatus::Failed));
    assert_eq!(world.source.requests.load(Ordering::SeqCst), 0);
    assert!(world.state.apps.lock().unwrap().is_empty());
    assert!(
        summary
            .failure_message()
            .unwrap()
            .contains("has no SecretString")
    );
}

#[tokio::test]
async fn a_passed_deadline_saves_progress_and_reports_what_waits() {
    let world = World::new(5);
    world
        .source
        .set("1", vec![review("r", "2024-06-01T11:00:00Z")]);
    let summary = world
        .run_with(RunOptions {
            deadline: Some(Instant::now() + Duration::from_secs(2)),
            ..options(&["1"])
        })
        .await;
    assert_eq!(summary.apps[0].status, AppStatus::Deadline);
    assert_eq!(summary.apps[0].pending, 1);
    assert!(summary.failure_message().is_none());
    assert!(world.notifier.ids("1").is_empty());
}

#[tokio::test]
async fn late_published_reviews_inside_the_overlap_arrive_once() {
    let world = World::new(2);
    world.source.set(
        "1",
        vec![
            review("a", "2024-06-01T08:00:00Z"),
            review("b", "2024-06-01T10:00:00Z"),
        ],
    );
    world.run(&["1"]).await;
    // Apple publishes two reviews written before `b` only now; one predates the baseline.
    world.source.set(
        "1",
        vec![
            review("a", "2024-06-01T08:00:00Z"),
            review("b", "2024-06-01T10:00:00Z"),
            review("late", "2024-06-01T09:00:00Z"),
            review("before-baseline", "2024-05-31T11:00:00Z"),
            review("c", "2024-06-01T11:00:00Z"),
        ],
    );
    world.run(&["1"]).await;
    world.run(&["1"]).await;
    assert_eq!(world.notifier.ids("1"), ["a", "b", "late", "c"]);
    let state = world.state.apps.lock().unwrap()[&app("1")].clone();
    assert_eq!(state.watermark.unwrap().key.id, "c");
}

#[tokio::test]
async fn an_app_leased_by_another_run_is_skipped_as_locked_not_failed() {
    let world = World::new(5);
    world
        .source
        .set("1", vec![review("r", "2024-06-01T11:00:00Z")]);
    world
        .source
        .set("2", vec![review("s", "2024-06-01T11:00:00Z")]);
    let now_ms = (parse_instant(NOW).unwrap() / 1_000_000) as i64;
    assert!(
        world
            .state
            .acquire_lease(
                &app("1"),
                "other",
                now_ms,
                now_ms + 1_000,
                &Lease::default()
            )
            .await
            .unwrap()
    );
    let summary = world.run(&["1", "2"]).await;
    assert_eq!(summary.apps[0].status, AppStatus::Locked);
    assert_eq!(summary.apps[1].status, AppStatus::Ok);
    assert!(summary.failure_message().is_none());
    assert!(world.notifier.ids("1").is_empty());
    assert_eq!(
        world.state.leases.lock().unwrap().get(&app("2")),
        Some(&Lease {
            holder: None,
            until_ms: 0,
            generation: Some(2)
        }),
        "taken once and given back"
    );

    // An expired lease does not hold the app.
    let later = RunOptions {
        now_nanos: parse_instant("2024-06-01T12:00:02Z").unwrap(),
        ..options(&["1"])
    };
    assert_eq!(world.run_with(later).await.apps[0].status, AppStatus::Ok);
    assert_eq!(world.notifier.ids("1"), ["r"]);
}

#[tokio::test]
async fn a_run_with_nothing_new_reads_the_table_once_and_writes_nothing() {
    let world = World::new(5);
    world
        .source
        .set("1", vec![review("r", "2024-06-01T11:00:00Z")]);
    world.run(&["1"]).await;
    let lease_after_first = world.state.leases.lock().unwrap().get(&app("1")).cloned();
    assert_eq!(
        lease_after_first.as_ref().and_then(|l| l.generation),
        Some(2),
        "the delivering run took and gave back the lease"
    );
    let reads = world.state.reads.load(Ordering::SeqCst);
    let writes = world.state.writes.load(Ordering::SeqCst);

    let idle = world.run(&["1"]).await;
    assert_eq!(idle.apps[0].status, AppStatus::Ok);
    assert_eq!((idle.apps[0].new, idle.apps[0].delivered), (0, 0));
    assert_eq!(world.state.reads.load(Ordering::SeqCst), reads + 1);
    assert_eq!(world.state.writes.load(Ordering::SeqCst), writes);
    assert_eq!(
        world.state.leases.lock().unwrap().get(&app("1")).cloned(),
        lease_after_first,
        "no lease taken"
    );
    assert_eq!(world.notifier.ids("1"), ["r"]);
}

/// App `1` with `a` delivered, its feed now listing `a` and then `later`.
async fn delivered_a_then(later: &[(&str, &str)]) -> World {
    let world = World::new(5);
    world
        .source
        .set("1", vec![review("a", "2024-06-01T10:00:00Z")]);
    world.run(&["1"]).await;
    let mut feed = vec![review("a", "2024-06-01T10:00:00Z")];
    feed.extend(later.iter().map(|(id, created)| review(id, created)));
    world.source.set("1", feed);
    world
}

/// Between the next run's read and its taking the lease, another run takes the lease, delivers
/// `id` (created at `created`), moves the watermark to it if `moved`, and gives the lease back.
fn meanwhile_another_run_delivers(
    world: &World,
    id: &'static str,
    created: &'static str,
    moved: bool,
) {
    *world.state.before_acquire.lock().unwrap() = Some(Box::new(move |state: &MemoryState| {
        let mut leases = state.leases.lock().unwrap();
        let lease = leases.entry(app("1")).or_default();
        lease.generation = Some(lease.generation.unwrap_or(0) + 2);
        let mut apps = state.apps.lock().unwrap();
        let app_state = apps.get_mut(&app("1")).unwrap();
        let key = app_state.destinations_since.keys().next().unwrap().clone();
        app_state.deliver_to(id, &[key]);
        if moved {
            app_state.watermark = Some(Watermark::of(&review(id, created)));
        }
    }));
}

#[tokio::test]
async fn a_run_that_read_before_another_run_delivered_reads_again_and_sends_nothing_twice() {
    let world =
        delivered_a_then(&[("b", "2024-06-01T11:00:00Z"), ("c", "2024-06-01T11:30:00Z")]).await;
    meanwhile_another_run_delivers(&world, "b", "2024-06-01T11:00:00Z", false);
    let summary = world.run(&["1"]).await;
    assert_eq!(summary.apps[0].status, AppStatus::Ok);
    assert_eq!(
        world.notifier.ids("1"),
        ["a", "c"],
        "`b` went out once, from the other run"
    );
    assert_eq!(world.watermark("1").unwrap().key.id, "c");
}

#[tokio::test]
async fn a_run_whose_work_another_run_did_meanwhile_ends_without_taking_the_lease() {
    let world = delivered_a_then(&[("b", "2024-06-01T11:00:00Z")]).await;
    meanwhile_another_run_delivers(&world, "b", "2024-06-01T11:00:00Z", true);
    let summary = world.run(&["1"]).await;
    assert_eq!(summary.apps[0].status, AppStatus::Ok);
    assert_eq!(summary.apps[0].delivered, 0);
    assert_eq!(world.notifier.ids("1"), ["a"]);
    assert_eq!(
        world.state.leases.lock().unwrap()[&app("1")].generation,
        Some(4),
        "only the other run took the lease"
    );
}

#[tokio::test]
async fn a_run_that_finds_the_lease_taken_after_its_read_skips_the_app_as_locked() {
    let world = World::new(5);
    world
        .source
        .set("1", vec![review("a", "2024-06-01T10:00:00Z")]);
    let now_ms = (parse_instant(NOW).unwrap() / 1_000_000) as i64;
    *world.state.before_acquire.lock().unwrap() = Some(Box::new(move |state: &MemoryState| {
        state.leases.lock().unwrap().insert(
            app("1"),
            Lease {
                holder: Some("other".into()),
                until_ms: now_ms + 60_000,
                generation: Some(1),
            },
        );
    }));
    let summary = world.run(&["1"]).await;
    assert_eq!(summary.apps[0].status, AppStatus::Locked);
    assert!(world.notifier.ids("1").is_empty());
    assert_eq!(
        world.state.leases.lock().unwrap()[&app("1")]
            .holder
            .as_deref(),
        Some("other"),
        "the other run's lease stands"
    );
}

#[tokio::test]
async fn a_replay_sends_what_was_never_delivered_and_nothing_twice() {
    let world = World::new(5);
    // Before the first run's 24 h backfill window, and inside it.
    world.source.set(
        "1",
        vec![
            review("old", "2024-05-30T12:00:00Z"),
            review("recent", "2024-06-01T11:00:00Z"),
        ],
    );
    world.run(&["1"]).await;
    assert_eq!(world.notifier.ids("1"), ["recent"]);

    let replay = |hours: i128| RunOptions {
        replay_from_nanos: Some(parse_instant(NOW).unwrap() - hours * 3_600 * 1_000_000_000),
        ..options(&["1"])
    };
    let summary = world.run_with(replay(72)).await;
    assert_eq!(summary.apps[0].delivered, 1);
    assert_eq!(world.notifier.ids("1"), ["recent", "old"]);
    world.run_with(replay(72)).await;
    world.run(&["1"]).await;
    assert_eq!(world.notifier.ids("1"), ["recent", "old"], "nothing twice");
}

#[tokio::test]
async fn with_apples_budget_low_the_overlap_re_scan_waits_for_a_later_run() {
    let world = World::new(2);
    let first = vec![
        review("a", "2024-06-01T08:00:00Z"),
        review("b", "2024-06-01T09:00:00Z"),
        review("c", "2024-06-01T10:00:00Z"),
        review("d", "2024-06-01T11:00:00Z"),
    ];
    world.source.set("1", first.clone());
    world.run(&["1"]).await;

    let mut later = first;
    later.push(review("late", "2024-06-01T08:30:00Z"));
    later.push(review("e", "2024-06-01T11:30:00Z"));
    world.source.set("1", later);
    world.source.budget_low.store(true, Ordering::SeqCst);
    let low = world.run(&["1"]).await;
    assert!(low.apps[0].rescan_skipped);
    assert_eq!(low.apps[0].pages, 2, "up to the watermark, no further");
    assert_eq!(world.notifier.ids("1"), ["a", "b", "c", "d", "e"]);

    world.source.budget_low.store(false, Ordering::SeqCst);
    let full = world.run(&["1"]).await;
    assert!(!full.apps[0].rescan_skipped);
    assert_eq!(world.notifier.ids("1"), ["a", "b", "c", "d", "e", "late"]);
}

fn rated(id: &str, rating: u8, date: &str) -> Review {
    let mut r = review(id, date);
    r.rating = Some(rating);
    r
}

fn two_destinations(world: &World) {
    *world.secrets.destinations.lock().unwrap() = Some(serde_json::json!([
        {"url": "https://example.com/all", "name": "all"},
        {"url": "https://example.com/support", "name": "support", "ratings": [1, 2]},
    ]));
}

#[tokio::test]
async fn each_destination_gets_what_its_rules_take() {
    let world = World::new(10);
    two_destinations(&world);
    world.source.set(
        "1",
        vec![
            rated("a", 5, "2024-06-01T09:00:00Z"),
            rated("b", 1, "2024-06-01T10:00:00Z"),
            rated("c", 2, "2024-06-01T11:00:00Z"),
        ],
    );
    let summary = world.run(&["1"]).await;
    assert_eq!(world.notifier.ids_to("all"), ["a", "b", "c"]);
    assert_eq!(world.notifier.ids_to("support"), ["b", "c"]);
    assert_eq!((summary.apps[0].new, summary.apps[0].pending), (3, 0));
    world.run(&["1"]).await;
    assert_eq!(
        world.notifier.by_destination.lock().unwrap().len(),
        5,
        "nothing twice"
    );
}

#[tokio::test]
async fn a_failing_destination_holds_back_neither_the_other_nor_its_own_share() {
    let world = World::new(10);
    two_destinations(&world);
    world.source.set(
        "1",
        vec![
            rated("a", 1, "2024-06-01T09:00:00Z"),
            rated("b", 5, "2024-06-01T10:00:00Z"),
            rated("c", 2, "2024-06-01T11:00:00Z"),
        ],
    );
    world.notifier.down.lock().unwrap().insert("support".into());
    let down = world.run(&["1"]).await;
    assert_eq!(down.apps[0].status, AppStatus::Failed);
    let error = down.apps[0].error.as_deref().unwrap();
    assert!(error.contains("review a to support"), "{error}");
    assert_eq!(world.notifier.ids_to("all"), ["a", "b", "c"]);
    assert!(world.notifier.ids_to("support").is_empty());
    assert_eq!(down.apps[0].pending, 2, "a and c still wait for support");
    let mark = world.watermark("1");
    assert!(
        mark.is_none(),
        "the watermark waits for the slowest destination"
    );

    // Recovered, and a new review arrived meanwhile: support gets its share in order, once.
    world.notifier.down.lock().unwrap().clear();
    world.source.set(
        "1",
        vec![
            rated("a", 1, "2024-06-01T09:00:00Z"),
            rated("b", 5, "2024-06-01T10:00:00Z"),
            rated("c", 2, "2024-06-01T11:00:00Z"),
            rated("d", 1, "2024-06-01T11:30:00Z"),
        ],
    );
    let up = world.run(&["1"]).await;
    assert_eq!(up.apps[0].status, AppStatus::Ok);
    assert_eq!(world.notifier.ids_to("support"), ["a", "c", "d"]);
    assert_eq!(world.notifier.ids_to("all"), ["a", "b", "c", "d"]);
    let mark = world.watermark("1");
    assert_eq!(mark.unwrap().key.id, "d");
}

#[tokio::test]
async fn reviews_no_destination_wants_still_move_the_watermark() {
    let world = World::new(10);
    *world.secrets.destinations.lock().unwrap() = Some(serde_json::json!([
        {"url": "https://example.com/x", "name": "complaints", "ratings": [1]},
    ]));
    world.source.set(
        "1",
        vec![
            rated("a", 1, "2024-06-01T09:00:00Z"),
            rated("b", 5, "2024-06-01T10:00:00Z"),
        ],
    );
    world.run(&["1"]).await;
    assert_eq!(world.notifier.ids_to("complaints"), ["a"]);
    let mark = world.watermark("1");
    assert_eq!(mark.unwrap().key.id, "b");
}

#[tokio::test]
async fn a_destination_added_later_starts_with_the_next_review_not_the_overlap_window() {
    let world = World::new(10);
    world
        .source
        .set("1", vec![rated("a", 5, "2024-06-01T09:00:00Z")]);
    world.run(&["1"]).await;
    *world.secrets.destinations.lock().unwrap() = Some(serde_json::json!([
        {"url": "https://example.com/hook", "name": "old"},
        {"url": "https://example.com/new", "name": "new"},
    ]));
    // Reviews after the newest one delivered reach the new destination; the window does not.
    world.source.set(
        "1",
        vec![
            rated("late", 5, "2024-06-01T08:00:00Z"),
            rated("a", 5, "2024-06-01T09:00:00Z"),
            rated("z", 5, "2024-06-01T11:00:00Z"),
        ],
    );
    world.run(&["1"]).await;
    assert_eq!(world.notifier.ids_to("new"), ["z"]);
    // A destination is known by its name: renamed, it counts as new too (and gets no resend).
    assert_eq!(world.notifier.ids_to("old"), ["z"]);
}

#[tokio::test]
async fn several_reviews_per_message_one_record_per_message_in_order() {
    let world = World::new(200);
    world.notifier.per_message.store(3, Ordering::SeqCst);
    let reviews: Vec<Review> = (0..7)
        .map(|i| review(&format!("r{i}"), &format!("2024-06-01T11:0{i}:00Z")))
        .collect();
    world.source.set("1", reviews);
    let summary = world.run(&["1"]).await;
    assert_eq!(summary.apps[0].delivered, 7);
    assert_eq!(
        world.notifier.ids("1"),
        ["r0", "r1", "r2", "r3", "r4", "r5", "r6"]
    );
    assert_eq!(
        world.notifier.attempts.load(Ordering::SeqCst),
        3,
        "3 + 3 + 1"
    );
    assert_eq!(
        world.state.writes.load(Ordering::SeqCst),
        3,
        "a record per message"
    );
    let mark = world.watermark("1");
    assert_eq!(mark.unwrap().key.id, "r6");
}

#[tokio::test]
async fn a_destination_added_after_a_cut_short_run_gets_the_rest_of_that_second() {
    let world = World::new(10);
    world.notifier.down.lock().unwrap().insert("b".into());
    *world.secrets.destinations.lock().unwrap() = Some(serde_json::json!([
        {"url": "https://example.com/a", "name": "a"},
        {"url": "https://example.com/b", "name": "b", "ratings": [1]},
    ]));
    // Two reviews of one second; "b" fails, so only "a" has them and the mark stays behind.
    world.source.set(
        "1",
        vec![
            rated("r1", 5, "2024-06-01T10:00:00Z"),
            rated("r2", 1, "2024-06-01T11:00:00Z"),
            rated("r3", 5, "2024-06-01T11:00:00Z"),
        ],
    );
    world.run(&["1"]).await;
    assert_eq!(world.notifier.ids_to("a"), ["r1", "r2", "r3"]);
    // A third destination arrives: it starts at r2/r3's second, both already delivered to "a".
    *world.secrets.destinations.lock().unwrap() = Some(serde_json::json!([
        {"url": "https://example.com/a", "name": "a"},
        {"url": "https://example.com/b", "name": "b", "ratings": [1]},
        {"url": "https://example.com/c", "name": "c"},
    ]));
    world.source.set(
        "1",
        vec![
            rated("r1", 5, "2024-06-01T10:00:00Z"),
            rated("r2", 1, "2024-06-01T11:00:00Z"),
            rated("r3", 5, "2024-06-01T11:00:00Z"),
            rated("r4", 5, "2024-06-01T11:00:00Z"),
        ],
    );
    world.run(&["1"]).await;
    assert_eq!(
        world.notifier.ids_to("c"),
        ["r4"],
        "not the watermark's lag, not what others had; the same second's newcomer, yes"
    );
    assert_eq!(world.notifier.ids_to("a"), ["r1", "r2", "r3", "r4"]);
}

const HOUR: i128 = 3_600 * 1_000_000_000;

/// `options(apps)` at `now_nanos`.
fn at(apps: &[&str], now_nanos: i128) -> RunOptions {
    RunOptions {
        now_nanos,
        lease_until_ms: (now_nanos / 1_000_000) as i64 + 60_000,
        ..options(apps)
    }
}

/// An invocation `millis` long, starting now, of which the last `margin_millis` are kept for
/// answering.
fn short(options: RunOptions, millis: u64, margin_millis: u64) -> RunOptions {
    RunOptions {
        deadline: Some(Instant::now() + Duration::from_millis(millis)),
        deadline_margin: Duration::from_millis(margin_millis),
        ..options
    }
}

fn instant(nanos: i128) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap();
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Every review delivered once, oldest first.
fn assert_each_once_in_order(delivered: &[String], expected: &[Review]) {
    let mut oldest_first: Vec<&Review> = expected.iter().collect();
    oldest_first.sort_by(|a, b| Review::delivery_order(a, b));
    let expected: Vec<&str> = oldest_first.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(delivered, expected);
}

#[tokio::test]
async fn a_quiet_app_over_ninety_days_gets_nothing_twice() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let reviews: Vec<Review> = (0..6)
        .map(|i| review(&format!("r{i}"), &instant(start - (i + 1) * HOUR)))
        .collect();
    world.source.set("1", reviews.clone());
    // A run an hour for 90 days; the records expire after 30 and are removed as TTL does.
    for hour in 0..90 * 24 {
        let summary = world.run_with(at(&["1"], start + hour * HOUR)).await;
        assert_eq!(summary.apps[0].status, AppStatus::Ok, "hour {hour}");
    }
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
    assert!(
        world.state.records.lock().unwrap().is_empty(),
        "the records expired long ago"
    );
}

#[tokio::test]
async fn a_review_older_than_the_records_reach_is_not_new_even_to_a_replay() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let old = review("old", &instant(start - HOUR));
    world.source.set("1", vec![old.clone()]);
    world.run_with(at(&["1"], start)).await;
    // 31 days on, its record gone: a replay reaching back 40 days does not send it again.
    let later = start + 31 * 24 * HOUR;
    let replay = world
        .run_with(RunOptions {
            replay_from_nanos: Some(later - 40 * 24 * HOUR),
            ..at(&["1"], later)
        })
        .await;
    assert_eq!(replay.apps[0].new, 0);
    assert_eq!(world.notifier.ids("1"), ["old"]);
}

/// Runs short invocations ten minutes apart from `from` until every review went out (at most
/// `runs`); returns the summaries.
async fn run_short_until_done(
    world: &World,
    options: impl Fn(i128) -> RunOptions,
    from: i128,
    total: usize,
    runs: usize,
) -> Vec<AppSummary> {
    let mut summaries = Vec::new();
    for run in 0..runs {
        let now = from + run as i128 * HOUR / 6;
        let summary = world.run_with(short(options(now), 320, 60)).await;
        summaries.push(summary.apps[0].clone());
        if world.notifier.ids("1").len() >= total && summary.apps[0].status == AppStatus::Ok {
            break;
        }
    }
    summaries
}

/// `count` reviews named `{prefix}000`, `{prefix}001`, …, the first created at `first` (ns) and
/// each next `step` later.
fn spaced(prefix: &str, count: i128, first: i128, step: i128) -> Vec<Review> {
    (0..count)
        .map(|i| review(&format!("{prefix}{i:03}"), &instant(first + i * step)))
        .collect()
}

/// 200 reviews from 719 to 650 hours before `start`.
fn month_old_backlog(start: i128) -> Vec<Review> {
    (0..200)
        .map(|i| {
            review(
                &format!("old{i:03}"),
                &instant(start - 719 * HOUR + i * HOUR / 3),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_thirty_day_backfill_read_and_delivered_over_short_runs_goes_out_once_in_order() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    // 200 reviews from 719 to 650 hours ago, and 20 in the last day.
    let mut reviews = month_old_backlog(start);
    reviews
        .extend((0..20).map(|i| review(&format!("new{i:02}"), &instant(start - (i + 1) * HOUR))));
    world.source.set("1", reviews.clone());
    // 22 pages of 20 ms: more than the 130 ms a run reads before it must stop.
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    let options = backlog_options;
    let summaries = run_short_until_done(&world, options, start, reviews.len(), 60).await;
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
    assert!(
        summaries
            .iter()
            .any(|s| s.status == AppStatus::Deadline && s.delivered == 0),
        "reading alone spanned runs: {summaries:?}"
    );
    assert!(summaries.iter().all(|s| s.status != AppStatus::Failed));
    // The re-scan back to when reading began to span runs may need a few more short runs (more
    // on a loaded machine); it ends, and finds nothing more to send.
    let sent = world.notifier.ids("1").len();
    let mut now = start + summaries.len() as i128 * HOUR / 6;
    for _ in 0..20 {
        let state = world.state.apps.lock().unwrap()[&app("1")].clone();
        if state.progress == Progress::default() {
            break;
        }
        now += HOUR / 6;
        world.run_with(short(backlog_options(now), 320, 60)).await;
    }
    let state = world.state.apps.lock().unwrap()[&app("1")].clone();
    assert_eq!(state.progress, Progress::default());
    assert_eq!(world.notifier.ids("1").len(), sent, "nothing more");
}

#[tokio::test]
async fn a_backfill_over_short_runs_loses_nothing_while_reviews_are_deleted_and_added() {
    // The store pages by offset, as Apple's cursor does: a review deleted between runs moves
    // every older one a place up, one added moves them down. A run that goes on from a saved
    // link must not skip what moved past it.
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let mut listed = month_old_backlog(start);
    world.source.set("1", listed.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    let mut deleted = HashSet::new();
    let mut seed: u64 = 7;
    const DELETE_PER_RUN: usize = 10;
    let mut done = false;
    for run in 0..80 {
        let now = start + run * HOUR / 6;
        let summary = world.run_with(short(backlog_options(now), 320, 60)).await;
        let sent: HashSet<String> = world.notifier.ids("1").into_iter().collect();
        if summary.apps[0].status == AppStatus::Ok && listed.iter().all(|r| sent.contains(&r.id)) {
            done = true;
            break;
        }
        assert_ne!(summary.apps[0].status, AppStatus::Failed, "{summary:?}");
        // Between runs, two reviews not yet delivered are deleted, some delivered one too, and
        // a new one arrives.
        for _ in 0..DELETE_PER_RUN {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let waiting: Vec<usize> = (0..listed.len())
                .filter(|&i| !sent.contains(&listed[i].id))
                .collect();
            let pool = if deleted.len() % 7 == 6 || waiting.is_empty() {
                (0..listed.len()).collect()
            } else {
                waiting
            };
            let gone = listed.remove(pool[(seed >> 33) as usize % pool.len()]);
            deleted.insert(gone.id);
        }
        listed.push(review(&format!("new{run:03}"), &instant(now + HOUR / 12)));
        world.source.set("1", listed.clone());
    }
    assert!(done, "every review still listed went out");
    let sent = world.notifier.ids("1");
    let unique: HashSet<&String> = sent.iter().collect();
    assert_eq!(unique.len(), sent.len(), "nothing twice: {sent:?}");
    let kept: Vec<Review> = listed.clone();
    let kept_sent: Vec<String> = sent
        .iter()
        .filter(|id| !deleted.contains(*id))
        .cloned()
        .collect();
    assert_each_once_in_order(&kept_sent, &kept);
}

#[tokio::test]
async fn a_stop_whose_page_moved_past_it_starts_over_from_the_newest_review() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let mut listed = spaced("r", 120, start - 700 * HOUR, HOUR);
    world.source.set("1", listed.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    let options = |now| RunOptions {
        backfill_hours: 720,
        retention_days: 60,
        overlap_hours: 6,
        ..at(&["1"], now)
    };
    let first = world.run_with(short(options(start), 320, 60)).await;
    assert_eq!(first.apps[0].status, AppStatus::Deadline, "{first:?}");
    let stop = world.state.apps.lock().unwrap()[&app("1")]
        .progress
        .stops
        .last()
        .cloned()
        .expect("a stop");
    // A page and a half of the reviews just newer than the stop are deleted: its page now
    // holds only older ones.
    let at_stop = listed
        .iter()
        .position(|r| r.key() == &stop.reached)
        .unwrap();
    listed.retain(|r| {
        let newer_by = r.key().nanos - stop.reached.nanos;
        !(newer_by > 0 && newer_by <= 15 * HOUR)
    });
    assert_eq!(listed.len(), 105, "{at_stop}");
    world.source.set("1", listed.clone());
    *world.source.page_delay.lock().unwrap() = Duration::ZERO;
    let summary = world.run_with(options(start + HOUR / 6)).await;
    assert_eq!(summary.apps[0].status, AppStatus::Ok, "{summary:?}");
    assert_each_once_in_order(&world.notifier.ids("1"), &listed);
    let state = world.state.apps.lock().unwrap()[&app("1")].clone();
    assert_eq!(state.progress, Progress::default());
}

#[tokio::test]
async fn after_a_month_long_outage_short_runs_deliver_every_review_once_in_order() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    world.source.set("1", Vec::new());
    let first = world.run_with(at(&["1"], start)).await;
    assert_eq!(first.apps[0].status, AppStatus::Ok);
    // The key is revoked for 29 days, while 200 reviews arrive; a run an hour fails all along.
    world.source.revoked.store(true, Ordering::SeqCst);
    let reviews = spaced("r", 200, start + HOUR, 3 * HOUR);
    world.source.set("1", reviews.clone());
    for hour in 1..29 * 24 {
        let summary = world.run_with(at(&["1"], start + hour * HOUR)).await;
        assert_eq!(summary.apps[0].status, AppStatus::Failed);
    }
    world.source.revoked.store(false, Ordering::SeqCst);
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    let summaries = run_short_until_done(
        &world,
        |now| at(&["1"], now),
        start + 29 * 24 * HOUR,
        reviews.len(),
        60,
    )
    .await;
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
    assert!(summaries.iter().all(|s| s.status != AppStatus::Failed));
}

#[tokio::test]
async fn a_read_that_keeps_stopping_where_it_stopped_before_fails_the_app_naming_why() {
    // "support" is down (but not for long enough to be given up), so the watermark stays at
    // the start and every run must read back two days, which takes longer than a run may read.
    let world = World::new(5);
    two_destinations(&world);
    world.notifier.down.lock().unwrap().insert("support".into());
    let start = parse_instant(NOW).unwrap();
    let reviews: Vec<Review> = (0..80)
        .map(|i| {
            rated(
                &format!("r{i:02}"),
                1,
                &instant(start - 40 * HOUR + i * HOUR / 2),
            )
        })
        .collect();
    world.source.set("1", reviews.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    let options = |now| RunOptions {
        backfill_hours: 48,
        ..at(&["1"], now)
    };
    let mut stalled = None;
    for run in 0..30 {
        let now = start + run * HOUR / 6;
        let summary = world.run_with(short(options(now), 320, 60)).await;
        let app = summary.apps[0].clone();
        if app
            .error
            .as_deref()
            .is_some_and(|e| e.contains("runs in a row"))
        {
            stalled = Some(app);
            break;
        }
    }
    let stalled = stalled.expect("the app is reported failed");
    assert_eq!(stalled.status, AppStatus::Failed);
    let error = stalled.error.unwrap();
    assert!(error.contains("Timeout"), "{error}");
    let all = world.notifier.ids_to("all");
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "nothing twice");
    assert!(world.notifier.ids_to("support").is_empty());
}

#[tokio::test]
async fn a_continued_read_the_store_no_longer_takes_starts_over_from_the_newest_review() {
    let world = World::new(1);
    let start = parse_instant(NOW).unwrap();
    world.source.set("1", Vec::new());
    world.run_with(at(&["1"], start)).await;
    let reviews: Vec<Review> = (0..3)
        .map(|i| review(&format!("r{i}"), &instant(start + (i + 1) * HOUR)))
        .collect();
    world.source.set("1", reviews.clone());
    world
        .state
        .apps
        .lock()
        .unwrap()
        .get_mut(&app("1"))
        .unwrap()
        .progress
        .stops = vec![Scan {
        page: Some("99".into()),
        reached: reviews[1].key().clone(),
    }];
    let summary = world.run_with(at(&["1"], start + 4 * HOUR)).await;
    assert_eq!(summary.apps[0].status, AppStatus::Ok, "{summary:?}");
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
}

#[tokio::test]
async fn a_destination_is_given_up_only_once_failing_past_the_bound_and_tried_again() {
    let world = World::new(10);
    two_destinations(&world);
    world.notifier.down.lock().unwrap().insert("support".into());
    // Retention 3 days, overlap 24 h: the watermark waits 72 − 2 − 24 = 46 hours.
    let options = |now| RunOptions {
        retention_days: 3,
        overlap_hours: 24,
        ..at(&["1"], now)
    };
    let start = parse_instant(NOW).unwrap();
    world.source.set(
        "1",
        vec![
            rated("old", 1, &instant(start - 2 * HOUR)),
            rated("recent", 1, &instant(start - HOUR)),
        ],
    );
    world.run_with(options(start)).await;
    assert_eq!(world.notifier.ids_to("all"), ["old", "recent"]);
    let failing = || {
        world.state.apps.lock().unwrap()[&app("1")]
            .failing_since
            .get("support")
            .copied()
    };
    assert_eq!(failing(), Some(start));
    world.run_with(options(start + 45 * HOUR)).await;
    assert_eq!(failing(), Some(start), "the first failure's time stands");
    assert!(world.watermark("1").is_none(), "45 hours: still waiting");
    world.run_with(options(start + 47 * HOUR)).await;
    assert_eq!(
        world.watermark("1").unwrap().key.id,
        "recent",
        "failing 47 hours and again now: given up"
    );
    // Back within the overlap: it still gets them, in order; "all" gets nothing twice.
    world.notifier.down.lock().unwrap().clear();
    world.source.set(
        "1",
        vec![
            rated("old", 1, &instant(start - 2 * HOUR)),
            rated("recent", 1, &instant(start - HOUR)),
            rated("new", 1, &instant(start + 47 * HOUR)),
        ],
    );
    world.run_with(options(start + 48 * HOUR)).await;
    assert_eq!(world.notifier.ids_to("support"), ["old", "recent", "new"]);
    assert_eq!(world.notifier.ids_to("all"), ["old", "recent", "new"]);
    assert_eq!(failing(), None, "healthy again");
}

#[tokio::test]
async fn reviews_a_run_had_no_time_for_are_never_given_up() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let options = |now| RunOptions {
        backfill_hours: 718,
        ..at(&["1"], now)
    };
    let reviews: Vec<Review> = (0..30)
        .map(|i| review(&format!("r{i:02}"), &instant(start - 700 * HOUR + i * HOUR)))
        .collect();
    world.source.set("1", reviews.clone());
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(15);
    let summaries = run_short_until_done(&world, options, start, reviews.len(), 60).await;
    assert!(
        summaries.iter().any(|s| s.status == AppStatus::Deadline),
        "delivery spanned runs: {summaries:?}"
    );
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
}
// Reading that spans runs, under faults, ties, late reviews and a moving listing.

/// `reviews`, each rated one star.
fn one_star(reviews: Vec<Review>) -> Vec<Review> {
    reviews
        .into_iter()
        .map(|mut r| {
            r.rating = Some(1);
            r
        })
        .collect()
}

/// A 30-day backfill, with records kept 60 days, at `now`.
fn backlog_options(now: i128) -> RunOptions {
    RunOptions {
        backfill_hours: 720,
        retention_days: 60,
        ..at(&["1"], now)
    }
}

/// The app's stored state.
fn state_of(world: &World) -> AppState {
    world.state.apps.lock().unwrap()[&app("1")].clone()
}

/// Three days of backfill and one of overlap, at `now`.
fn overlap_of_a_day(now: i128) -> RunOptions {
    RunOptions {
        backfill_hours: 72,
        overlap_hours: 24,
        ..at(&["1"], now)
    }
}

#[tokio::test]
async fn after_reading_spanned_runs_the_overlap_also_reaches_back_from_when_they_began() {
    let world = World::new(2);
    let start = parse_instant(NOW).unwrap();
    let options = overlap_of_a_day;
    let backlog: Vec<Review> = (0..20)
        .map(|i| review(&format!("b{i:02}"), &instant(start - 30 * HOUR + i * HOUR)))
        .collect();
    let mut listed = backlog.clone();
    world.source.set("1", listed.clone());
    // Reading spans runs from the first short run on, which notes when it began.
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(60);
    let first = world.run_with(short(options(start), 320, 60)).await;
    assert_eq!(first.apps[0].status, AppStatus::Deadline, "{first:?}");
    assert_eq!(state_of(&world).progress.rescan_from, Some(start));
    *world.source.page_delay.lock().unwrap() = Duration::ZERO;
    // Apple's budget is low from now on, so runs read no further than the watermark.
    world.source.budget_low.store(true, Ordering::SeqCst);
    for hour in 1..=2 {
        world.run_with(options(start + hour * HOUR)).await;
    }
    assert_each_once_in_order(&world.notifier.ids("1"), &backlog);
    // Apple then shows a review created 15 hours before the runs began, 16 hours late (less
    // than the overlap), below the watermark; and a day of new reviews moves the watermark on.
    listed.push(review("late", &instant(start - 15 * HOUR)));
    listed.extend((0..24).map(|i| review(&format!("n{i:02}"), &instant(start + (i + 3) * HOUR))));
    world.source.set("1", listed.clone());
    let busy = world.run_with(options(start + 28 * HOUR)).await;
    assert!(busy.apps[0].rescan_skipped, "{busy:?}");
    assert!(!world.notifier.ids("1").contains(&"late".to_owned()));
    // The first run with budget to spare reads back to the overlap before the runs began.
    world.source.budget_low.store(false, Ordering::SeqCst);
    let spare = world.run_with(options(start + 29 * HOUR)).await;
    assert_eq!(spare.apps[0].status, AppStatus::Ok, "{spare:?}");
    assert_eq!(
        world.notifier.ids("1").last().map(String::as_str),
        Some("late")
    );
    assert_eq!(state_of(&world).progress.rescan_from, None);
    let sent = world.notifier.ids("1");
    assert_eq!(sent.len(), listed.len(), "each once: {sent:?}");
}

#[tokio::test]
async fn a_failing_destination_does_not_keep_the_re_scan_reaching_back_for_ever() {
    let world = World::new(2);
    two_destinations(&world);
    world.notifier.down.lock().unwrap().insert("support".into());
    let start = parse_instant(NOW).unwrap();
    let options = overlap_of_a_day;
    world
        .source
        .set("1", one_star(spaced("b", 20, start - 30 * HOUR, HOUR)));
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(60);
    let first = world.run_with(short(options(start), 320, 60)).await;
    assert_eq!(first.apps[0].status, AppStatus::Deadline, "{first:?}");
    assert_eq!(state_of(&world).progress.rescan_from, Some(start));
    *world.source.page_delay.lock().unwrap() = Duration::ZERO;
    for hour in 1..=3 {
        let summary = world.run_with(options(start + hour * HOUR)).await;
        assert_eq!(summary.apps[0].status, AppStatus::Failed, "support is down");
    }
    assert_eq!(world.notifier.ids_to("all").len(), 20);
    assert_eq!(state_of(&world).progress, Progress::default());
}

#[tokio::test]
async fn a_re_scan_that_never_fits_in_a_run_is_given_up_after_three() {
    let world = World::new(2);
    let start = parse_instant(NOW).unwrap();
    let options = overlap_of_a_day;
    let reviews = spaced("r", 100, start - 70 * HOUR, HOUR / 2);
    world.source.set("1", reviews.clone());
    world.run_with(options(start)).await;
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
    // As if reading had spanned runs from 60 hours ago: the re-scan reaches back 84 hours,
    // 50 pages, while a run may read 6 or so.
    world
        .state
        .apps
        .lock()
        .unwrap()
        .get_mut(&app("1"))
        .unwrap()
        .progress
        .rescan_from = Some(start - 60 * HOUR);
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    for run in 1..=3 {
        let summary = world
            .run_with(short(options(start + run * HOUR), 320, 60))
            .await;
        assert!(summary.apps[0].rescan_skipped, "{summary:?}");
        let progress = state_of(&world).progress;
        if run < 3 {
            assert_eq!(progress.rescan_cuts, run as u32);
            assert!(progress.rescan_from.is_some());
        } else {
            assert_eq!(progress, Progress::default());
        }
    }
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
}

#[tokio::test]
async fn a_review_published_late_while_a_backlog_is_read_over_short_runs_goes_out_once() {
    // A backlog read and delivered over short runs. Meanwhile Apple publishes a review 20 hours
    // after it was created (the overlap is 24), dated below the watermark the runs have reached,
    // and new reviews keep coming: by the time the runs are through, the overlap before the
    // newest delivered review no longer reaches it, but the overlap before the first of those
    // runs does.
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let mut listed = spaced("r", 200, start - 101 * HOUR, HOUR / 2);
    world.source.set("1", listed.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    let options = |now| RunOptions {
        backfill_hours: 720,
        retention_days: 60,
        overlap_hours: 24,
        ..at(&["1"], now)
    };
    let mut now = start;
    let mut late = None;
    for _ in 0..200 {
        let summary = world.run_with(short(options(now), 320, 60)).await;
        assert_ne!(summary.apps[0].status, AppStatus::Failed, "{summary:?}");
        let state = state_of(&world);
        if late.is_none()
            && state.progress.rescan_from.is_some()
            && state
                .watermark
                .as_ref()
                .is_some_and(|mark| mark.key.nanos >= now - 20 * HOUR)
        {
            let mark = state.watermark.unwrap().key.nanos;
            let published = review("late", &instant(mark - HOUR / 6));
            listed.push(published.clone());
            // Reviews keep coming in the next hours.
            listed.extend((0..3).map(|i| {
                review(
                    &format!("next{i}"),
                    &instant(now + 10 * HOUR + i * HOUR / 6),
                )
            }));
            world.source.set("1", listed.clone());
            late = Some(published);
            now += 11 * HOUR;
            continue;
        }
        if late.is_some()
            && summary.apps[0].status == AppStatus::Ok
            && state.progress.rescan_from.is_none()
        {
            break;
        }
        now += HOUR / 6;
    }
    assert!(
        late.is_some(),
        "the late review was published while reading spanned runs"
    );
    for _ in 0..3 {
        now += HOUR / 4;
        world.run_with(options(now)).await;
    }
    let sent = world.notifier.ids("1");
    let unique: HashSet<&String> = sent.iter().collect();
    assert_eq!(unique.len(), sent.len(), "nothing twice");
    let expected: HashSet<&String> = listed.iter().map(|r| &r.id).collect();
    assert_eq!(unique, expected, "every review once, the late one included");
    assert_eq!(state_of(&world).progress.rescan_from, None);
}

#[tokio::test]
async fn a_replay_that_cannot_read_to_the_end_in_one_run_fails_naming_why() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    // The app's first run, with BACKFILL_HOURS=0, delivers one review: the reviews below
    // predate its baseline and the watermark, so only a replay can deliver them.
    world.source.set("1", Vec::new());
    let first = |now| RunOptions {
        backfill_hours: 0,
        ..at(&["1"], now)
    };
    world.run_with(first(start)).await;
    let recent = review("recent", &instant(start + 60_000_000_000));
    world.source.set("1", vec![recent.clone()]);
    world.run_with(first(start + 2 * 60_000_000_000)).await;
    assert_eq!(world.notifier.ids("1"), ["recent"]);
    let reviews = spaced("r", 200, start - 101 * HOUR, HOUR / 2);
    let mut listed = reviews.clone();
    listed.push(recent);
    world.source.set("1", listed);
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    // The operator replays the last 5 days with an invocation too short to read them.
    let replay = |now| RunOptions {
        replay_from_nanos: Some(start - 110 * HOUR),
        retention_days: 60,
        ..at(&["1"], now)
    };
    let summary = world.run_with(short(replay(start + HOUR), 320, 60)).await;
    let app_summary = &summary.apps[0];
    assert_eq!(app_summary.status, AppStatus::Failed, "{summary:?}");
    let error = app_summary.error.as_deref().unwrap();
    assert!(
        error.contains("replay") && error.contains("--deadline"),
        "{error}"
    );
    assert_eq!(world.notifier.ids("1"), ["recent"]);
    // With time enough, it delivers them all once, in order.
    let summary = world.run_with(replay(start + 2 * HOUR)).await;
    assert_eq!(summary.apps[0].status, AppStatus::Ok, "{summary:?}");
    assert_each_once_in_order(&world.notifier.ids("1")[1..], &reviews);
}

#[tokio::test]
async fn a_backfill_at_the_largest_allowed_hours_read_over_many_runs_loses_nothing() {
    // Defaults: records kept 30 days; BACKFILL_HOURS at its cap, 718 (config.rs allows it).
    let world = World::new(5);
    let start = parse_instant(NOW).unwrap();
    let reviews = spaced("old", 200, start - 718 * HOUR + 60_000_000_000, HOUR / 3);
    world.source.set("1", reviews.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    let mut summaries = Vec::new();
    // A run every 15 minutes, as the template schedules it.
    for run in 0..120 {
        let now = start + run * HOUR / 4;
        let options = RunOptions {
            backfill_hours: 718,
            retention_days: 30,
            ..at(&["1"], now)
        };
        let summary = world.run_with(short(options, 320, 60)).await;
        summaries.push((summary.apps[0].status, summary.apps[0].delivered));
        if summary.apps[0].status == AppStatus::Ok
            && state_of(&world).progress.stops.is_empty()
            && state_of(&world)
                .watermark
                .is_some_and(|w| w.key.id == "old199")
        {
            break;
        }
    }
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
}

#[tokio::test]
async fn ties_split_across_a_stop_boundary_go_out_in_delivery_order() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    // Groups of three reviews of one second; listed ids ascending within a second, so page
    // boundaries split groups.
    let mut reviews = Vec::new();
    for g in 0..30i128 {
        for id in ["a", "b", "c", "d", "e", "f", "g"] {
            reviews.push(review(
                &format!("g{g:03}{id}"),
                &instant(start - 100 * HOUR + g * HOUR),
            ));
        }
    }
    world.source.set("1", reviews.clone());
    // FakeSource sorts by instant, newest first, keeping the given order within a second.
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    let options = backlog_options;
    let summaries = run_short_until_done(&world, options, start, reviews.len(), 80).await;
    assert!(summaries.iter().any(|s| s.status == AppStatus::Deadline));
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
}

#[tokio::test]
async fn a_destination_failing_now_and_then_during_a_multi_run_backfill() {
    let mut world = World::new(10);
    two_destinations(&world);
    // Attempts refused here and there, whichever destination they were for.
    world.notifier.refuse = vec![3, 8, 30, 31, 77, 150, 151, 152, 260, 300];
    let start = parse_instant(NOW).unwrap();
    let reviews: Vec<Review> = (0..200)
        .map(|i| {
            rated(
                &format!("r{i:03}"),
                if i % 3 == 0 { 1 } else { 5 },
                &instant(start - 101 * HOUR + i * HOUR / 2),
            )
        })
        .collect();
    world.source.set("1", reviews.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    let options = backlog_options;
    let support: Vec<Review> = reviews
        .iter()
        .filter(|r| r.rating == Some(1))
        .cloned()
        .collect();
    let mut summaries = Vec::new();
    for run in 0..150 {
        let now = start + run * HOUR / 6;
        let s = world.run_with(short(options(now), 320, 60)).await;
        summaries.push(s.apps[0].clone());
        if world.notifier.ids_to("all").len() >= reviews.len()
            && world.notifier.ids_to("support").len() >= support.len()
            && s.apps[0].status == AppStatus::Ok
            && state_of(&world).progress.stops.is_empty()
        {
            break;
        }
    }
    let fails: Vec<_> = summaries
        .iter()
        .filter(|s| s.status == AppStatus::Failed)
        .map(|s| s.error.clone())
        .collect();
    assert_each_once_in_order(&world.notifier.ids_to("all"), &reviews);
    assert_each_once_in_order(&world.notifier.ids_to("support"), &support);
    assert!(
        fails
            .iter()
            .all(|e| !e.as_deref().unwrap_or("").contains("runs in a row")),
        "{fails:?}"
    );
}

#[tokio::test]
async fn a_destination_added_mid_backfill_gets_what_follows_once_in_order() {
    let world = World::new(10);
    *world.secrets.destinations.lock().unwrap() = Some(serde_json::json!([
        {"url": "https://example.com/all", "name": "all"},
    ]));
    let start = parse_instant(NOW).unwrap();
    let reviews = spaced("r", 200, start - 101 * HOUR, HOUR / 2);
    world.source.set("1", reviews.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    let options = backlog_options;
    let mut added = false;
    for run in 0..100 {
        let now = start + run * HOUR / 6;
        let s = world.run_with(short(options(now), 320, 60)).await;
        assert_ne!(s.apps[0].status, AppStatus::Failed, "{s:?}");
        if !added
            && !world.notifier.ids_to("all").is_empty()
            && !state_of(&world).progress.stops.is_empty()
        {
            *world.secrets.destinations.lock().unwrap() = Some(serde_json::json!([
                {"url": "https://example.com/all", "name": "all"},
                {"url": "https://example.com/new", "name": "new"},
            ]));
            added = true;
        }
        if added
            && s.apps[0].status == AppStatus::Ok
            && world.notifier.ids_to("all").len() >= reviews.len()
        {
            break;
        }
    }
    assert!(added);
    assert_each_once_in_order(&world.notifier.ids_to("all"), &reviews);
    let new = world.notifier.ids_to("new");
    let first = new
        .first()
        .expect("the new destination got something")
        .clone();
    let from = reviews.iter().position(|r| r.id == first).unwrap();
    assert_each_once_in_order(&new, &reviews[from..]);
}

#[tokio::test]
async fn two_overlapping_runs_during_a_multi_run_backfill() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let reviews = spaced("r", 200, start - 101 * HOUR, HOUR / 2);
    world.source.set("1", reviews.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    let options = |now, holder: &str, ms| {
        short(
            RunOptions {
                backfill_hours: 720,
                retention_days: 60,
                holder: holder.into(),
                ..at(&["1"], now)
            },
            ms,
            60,
        )
    };
    let mut statuses = Vec::new();
    for run in 0..100 {
        let now = start + run * HOUR / 6;
        // A second copy starts a little later, with a different time left.
        let (a, b) = tokio::join!(world.run_with(options(now, "a", 320)), async {
            tokio::time::sleep(Duration::from_millis(15 * (run as u64 % 5))).await;
            world
                .run_with(options(now, "b", 250 + 40 * (run as u64 % 4)))
                .await
        });
        statuses.push((a.apps[0].status, b.apps[0].status));
        if world.notifier.ids("1").len() >= reviews.len() && a.apps[0].status == AppStatus::Ok {
            break;
        }
    }
    assert!(
        statuses
            .iter()
            .all(|(a, b)| *a != AppStatus::Failed && *b != AppStatus::Failed),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .any(|(a, b)| *a == AppStatus::Locked || *b == AppStatus::Locked),
        "the runs did overlap: {statuses:?}"
    );
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
}

#[tokio::test]
async fn the_deadline_cuts_delivery_of_a_continued_stretch() {
    let world = World::new(10);
    two_destinations(&world);
    let start = parse_instant(NOW).unwrap();
    let reviews = one_star(spaced("r", 200, start - 101 * HOUR, HOUR / 2));
    world.source.set("1", reviews.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    // Slow webhooks: a run delivers a handful only.
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(15);
    let options = backlog_options;
    let mut summaries = Vec::new();
    for run in 0..200 {
        let now = start + run * HOUR / 6;
        let s = world.run_with(short(options(now), 320, 60)).await;
        summaries.push(s.apps[0].clone());
        assert_ne!(s.apps[0].status, AppStatus::Failed, "{s:?}");
        if world.notifier.ids_to("support").len() >= reviews.len()
            && s.apps[0].status == AppStatus::Ok
        {
            break;
        }
    }
    assert_each_once_in_order(&world.notifier.ids_to("all"), &reviews);
    assert_each_once_in_order(&world.notifier.ids_to("support"), &reviews);
}

/// MemoryState whose delivery-record writes fail at the listed 1-based calls.
struct FlakyRecords<'a> {
    inner: &'a MemoryState,
    calls: AtomicUsize,
    fail: Vec<usize>,
}

#[async_trait]
impl StateStore for FlakyRecords<'_> {
    async fn load(
        &self,
        app: &AppId,
        lookback: Lookback,
        replay: Option<i128>,
    ) -> Result<Snapshot, StateError> {
        self.inner.load(app, lookback, replay).await
    }
    async fn create(&self, app: &AppId, state: &AppState) -> Result<AppState, StateError> {
        self.inner.create(app, state).await
    }
    async fn find_records(
        &self,
        app: &AppId,
        ids: &[String],
        lookback: Lookback,
    ) -> Result<Vec<FoundRecord>, StateError> {
        self.inner.find_records(app, ids, lookback).await
    }
    async fn record(
        &self,
        app: &AppId,
        delivered: &[Watermark],
        destination: &str,
        keep: i64,
    ) -> Result<(), StateError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail.contains(&call) {
            return Err(StateError::Conflict);
        }
        self.inner.record(app, delivered, destination, keep).await
    }
    async fn save_progress(&self, app: &AppId, progress: &Progress) -> Result<(), StateError> {
        self.inner.save_progress(app, progress).await
    }
    async fn set_failing(
        &self,
        app: &AppId,
        d: &str,
        since: Option<i128>,
    ) -> Result<(), StateError> {
        self.inner.set_failing(app, d, since).await
    }
    async fn count_requests(&self, app: &AppId, hour: i64, count: u32) -> Result<(), StateError> {
        self.inner.count_requests(app, hour, count).await
    }
    async fn note_answer(
        &self,
        app: &AppId,
        id: &str,
        answer: Option<&NotedAnswer>,
        keep: i64,
    ) -> Result<(), StateError> {
        self.inner.note_answer(app, id, answer, keep).await
    }
    async fn advance(&self, app: &AppId, to: &Watermark) -> Result<(), StateError> {
        self.inner.advance(app, to).await
    }
    async fn add_destination(&self, app: &AppId, d: &str, since: i128) -> Result<(), StateError> {
        self.inner.add_destination(app, d, since).await
    }
    async fn acquire_lease(
        &self,
        app: &AppId,
        h: &str,
        now: i64,
        until: i64,
        seen: &Lease,
    ) -> Result<bool, StateError> {
        self.inner.acquire_lease(app, h, now, until, seen).await
    }
    async fn release_lease(&self, app: &AppId, h: &str) -> Result<(), StateError> {
        self.inner.release_lease(app, h).await
    }
}

#[tokio::test]
async fn a_record_write_failing_mid_stretch_repeats_one_message_and_loses_nothing() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let reviews = spaced("r", 200, start - 101 * HOUR, HOUR / 2);
    world.source.set("1", reviews.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    let flaky = FlakyRecords {
        inner: &world.state,
        calls: AtomicUsize::new(0),
        fail: vec![5, 40, 41, 90, 150],
    };
    let deps = Deps {
        secrets: &world.secrets,
        sources: Sources {
            app_store: Some(&world.source),
            google_play: None,
        },
        state: &flaky,
        notifier: &world.notifier,
    };
    let mut fails = 0;
    for run in 0..150 {
        let now = start + run * HOUR / 6;
        let s = run_once(&deps, &short(backlog_options(now), 320, 60)).await;
        if s.apps[0].status == AppStatus::Failed {
            fails += 1;
        }
        let sent: HashSet<String> = world.notifier.ids("1").into_iter().collect();
        if s.apps[0].status == AppStatus::Ok && reviews.iter().all(|r| sent.contains(&r.id)) {
            break;
        }
    }
    let sent = world.notifier.ids("1");
    // Drop the one repeat each failed write may cause (the message right after, resent).
    let mut dedup: Vec<String> = Vec::new();
    let mut repeats = 0;
    for id in &sent {
        if dedup.contains(id) {
            repeats += 1;
        } else {
            dedup.push(id.clone());
        }
    }
    assert!(fails > 0, "record writes failed in some runs");
    assert!(
        repeats <= fails,
        "{repeats} repeats for {fails} failed runs: {sent:?}"
    );
    assert_each_once_in_order(&dedup, &reviews);
}

#[tokio::test]
async fn more_stops_than_max_stops_still_deliver_everything_once_in_order() {
    let world = World::new(1);
    let start = parse_instant(NOW).unwrap();
    let reviews = spaced("r", 260, start - 200 * HOUR, HOUR / 2);
    world.source.set("1", reviews.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(30);
    let options = backlog_options;
    let mut most = 0;
    let mut statuses = Vec::new();
    for run in 0..400 {
        let now = start + run * HOUR / 12;
        let s = world.run_with(short(options(now), 200, 40)).await;
        most = most.max(state_of(&world).progress.stops.len());
        statuses.push(s.apps[0].status);
        if world.notifier.ids("1").len() >= reviews.len() && s.apps[0].status == AppStatus::Ok {
            break;
        }
    }
    let failed = statuses.iter().filter(|s| **s == AppStatus::Failed).count();
    assert_eq!(failed, 0, "every run made progress: {statuses:?}");
    assert!(most >= 100, "only {most} stops");
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
}

#[tokio::test]
async fn retention_of_two_days_with_a_long_backlog_loses_nothing() {
    let world = World::new(5);
    let start = parse_instant(NOW).unwrap();
    // 200 reviews over the 46 hours BACKFILL_HOURS may reach with DELIVERED_RETENTION_DAYS=2.
    let reviews = spaced("r", 200, start - 46 * HOUR + 60_000_000_000, HOUR / 5);
    world.source.set("1", reviews.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    for run in 0..120 {
        let now = start + run * HOUR / 4;
        let options = RunOptions {
            backfill_hours: 46,
            overlap_hours: 24,
            retention_days: 2,
            ..at(&["1"], now)
        };
        let s = world.run_with(short(options, 320, 60)).await;
        assert_ne!(s.apps[0].status, AppStatus::Failed, "{s:?}");
        if s.apps[0].status == AppStatus::Ok
            && state_of(&world)
                .watermark
                .is_some_and(|w| w.key.id == "r199")
        {
            break;
        }
    }
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
}

/// 35 reviews a quarter-hour apart, `tie` reviews of one second, 35 more; read over short runs.
fn world_with_a_tie(tie: i128) -> (World, Vec<Review>) {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let mut reviews = spaced("a", 35, start - 100 * HOUR, HOUR / 4);
    reviews.extend((0..tie).map(|i| review(&format!("t{i:03}"), &instant(start - 80 * HOUR))));
    reviews.extend(spaced("z", 35, start - 70 * HOUR, HOUR / 4));
    world.source.set("1", reviews.clone());
    *world.source.page_delay.lock().unwrap() = Duration::from_millis(20);
    *world.notifier.delay.lock().unwrap() = Duration::from_millis(3);
    (world, reviews)
}

#[tokio::test]
async fn a_second_split_by_a_stop_keeps_its_order_while_new_reviews_move_the_pages() {
    let (world, mut listed) = world_with_a_tie(25);
    let start = parse_instant(NOW).unwrap();
    for run in 0..80i128 {
        let now = start + run * HOUR / 6;
        let summary = world.run_with(short(backlog_options(now), 320, 60)).await;
        if world.notifier.ids("1").len() >= listed.len() && summary.apps[0].status == AppStatus::Ok
        {
            break;
        }
        for k in 0..3 {
            listed.push(review(&format!("n{run:03}{k}"), &instant(now + k)));
        }
        world.source.set("1", listed.clone());
    }
    // Where a run stops depends on how fast it reads: when a stop falls where a whole page is
    // that one second, its reviews keep no order by id among themselves (see the next test).
    assert_each_once_in_time_order(&world.notifier.ids("1"), &listed);
}

/// Every review delivered once, no review before an older one; reviews of one instant in any
/// order among themselves.
fn assert_each_once_in_time_order(delivered: &[String], expected: &[Review]) {
    let nanos: HashMap<&str, i128> = expected
        .iter()
        .map(|r| (r.id.as_str(), r.key().nanos))
        .collect();
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "each once: {delivered:?}");
    assert_eq!(delivered.len(), expected.len(), "every one: {delivered:?}");
    let times: Vec<i128> = delivered.iter().map(|id| nanos[id.as_str()]).collect();
    assert!(
        times.windows(2).all(|pair| pair[0] <= pair[1]),
        "oldest first: {delivered:?}"
    );
}

#[tokio::test]
async fn a_second_spanning_several_pages_at_a_stop_goes_out_once() {
    let (world, reviews) = world_with_a_tie(38);
    let start = parse_instant(NOW).unwrap();
    let summaries = run_short_until_done(&world, backlog_options, start, reviews.len(), 80).await;
    assert!(
        summaries.iter().all(|s| s.status != AppStatus::Failed),
        "{summaries:?}"
    );
    let sent = world.notifier.ids("1");
    let unique: HashSet<&String> = sent.iter().collect();
    // A second that fills a whole page where reading stopped keeps no order by id (its
    // reviews are of one instant): each goes out once, and every other review in order.
    assert_eq!(unique.len(), reviews.len(), "each once: {sent:?}");
    assert_eq!(sent.len(), reviews.len());
    let others: Vec<&String> = sent.iter().filter(|id| !id.starts_with('t')).collect();
    let mut ordered = others.clone();
    ordered.sort();
    assert_eq!(others, ordered);
}

/// `r` as its store lists it after an edit: new words and rating, and, as Google Play does, a
/// later instant (`at`); App Store edits keep theirs.
fn edited(r: &Review, body: &str, rating: u8, at: &str) -> Review {
    let mut e = Review::new(
        r.id.clone(),
        Some(rating),
        r.title.clone(),
        Some(body.into()),
        r.reviewer_nickname.clone(),
        r.territory.clone(),
        at.into(),
        None,
    )
    .unwrap();
    e.store = r.store;
    e
}

#[tokio::test]
async fn an_edited_review_goes_out_again_once_marked_with_its_earlier_rating() {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let first = rated("r", 2, &instant(start - HOUR));
    world.source.set("1", vec![first.clone()]);
    world.run_with(at(&["1"], start)).await;
    assert_eq!(world.notifier.ids("1"), ["r"]);

    // Edited twice before the next run, the second time back to 2 stars: one message, the
    // latest version, under an id of its own.
    let twice = edited(&first, "Worse now", 5, &instant(start + HOUR));
    let latest = edited(&first, "Fixed, thanks", 4, &instant(start + 2 * HOUR));
    world.source.set("1", vec![latest.clone()]);
    let summary = world.run_with(at(&["1"], start + 3 * HOUR)).await;
    assert_eq!(summary.apps[0].delivered, 1, "{summary:?}");
    let version = format!("r@{}", latest.digest());
    assert_ne!(twice.digest(), latest.digest());
    assert_eq!(world.notifier.ids("1"), ["r".to_owned(), version.clone()]);
    let state = state_of(&world);
    assert_eq!(state.versions["r"].1.digest, latest.digest());
    assert_eq!(state.versions["r"].1.rating, Some(4));

    // Unchanged since: nothing more, however often it is read.
    for hour in 4..6 {
        world.run_with(at(&["1"], start + hour * HOUR)).await;
    }
    assert_eq!(world.notifier.ids("1"), ["r".to_owned(), version]);
}

#[tokio::test]
async fn a_google_play_edit_of_a_review_delivered_before_the_window_is_found_by_id_and_marked() {
    const PLAY: &str = "com.example.app";
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let play = |r: Review| r.in_store(Store::GooglePlay);
    let first = play(rated("r", 2, &instant(start - HOUR)));
    world.source.set(PLAY, vec![first.clone()]);
    world.run_with(at(&[PLAY], start)).await;
    // Ten days of reviews move the watermark ten days on; the window reaches 72 hours back.
    let mut listed: Vec<Review> = (1..=10)
        .map(|day| {
            play(rated(
                &format!("d{day:02}"),
                4,
                &instant(start + day * 24 * HOUR),
            ))
        })
        .collect();
    world.source.set(PLAY, listed.clone());
    world.run_with(at(&[PLAY], start + 240 * HOUR + HOUR)).await;
    assert_eq!(world.notifier.ids(PLAY).len(), 11);
    let reads = world.state.reads.load(Ordering::SeqCst);

    // Edited on day 11: Google lists it at its new time, far from its record.
    let edit = edited(&first, "Fixed, thanks", 5, &instant(start + 264 * HOUR));
    listed.push(edit.clone());
    world.source.set(PLAY, listed);
    for hour in [265, 266] {
        let summary = world.run_with(at(&[PLAY], start + hour * HOUR)).await;
        assert_eq!(summary.apps[0].status, AppStatus::Ok, "{summary:?}");
    }
    let sent = world.notifier.ids(PLAY);
    let version = format!("r@{}", edit.digest());
    assert_eq!(sent.len(), 12, "the edit once: {sent:?}");
    assert_eq!(sent[11], version, "under its version's id: {sent:?}");
    let state = world.state.apps.lock().unwrap()[&app(PLAY)].clone();
    assert_eq!(state.versions["r"].0.id, version);
    assert!(
        world.state.reads.load(Ordering::SeqCst) > reads + 2,
        "the record was looked up by id"
    );
}

#[tokio::test]
async fn an_app_store_edit_under_the_same_instant_is_noticed_inside_the_window_and_old_records_count_as_unchanged()
 {
    let world = World::new(10);
    let start = parse_instant(NOW).unwrap();
    let first = rated("a", 1, &instant(start - HOUR));
    let legacy = rated("b", 3, &instant(start - 2 * HOUR));
    world.source.set("1", vec![first.clone(), legacy.clone()]);
    world.run_with(at(&["1"], start)).await;
    // `b`'s record as an earlier version wrote it: no version.
    world
        .state
        .apps
        .lock()
        .unwrap()
        .get_mut(&app("1"))
        .unwrap()
        .versions
        .remove("b");

    let same_instant = edited(&first, "Now it works", 5, &instant(start - HOUR));
    let legacy_edit = edited(&legacy, "Changed", 1, &instant(start - 2 * HOUR));
    world
        .source
        .set("1", vec![same_instant.clone(), legacy_edit]);
    world.run_with(at(&["1"], start + HOUR)).await;
    assert_eq!(
        world.notifier.ids("1"),
        [
            "b".to_owned(),
            "a".to_owned(),
            format!("a@{}", same_instant.digest())
        ]
    );
    let marked = select_new(
        &AppState {
            versions: state_of(&world).versions,
            ..AppState::first_run(start, 48)
        },
        at(&["1"], start).lookback(),
        vec![edited(&first, "Other words", 5, &instant(start - HOUR))],
    );
    assert_eq!(
        marked[0].edit.as_ref().unwrap().previous_rating,
        None,
        "5 stars before and after: no earlier rating shown"
    );
}

#[tokio::test]
async fn an_hourly_request_limit_is_kept_across_runs_and_a_spent_hour_waits_without_failing() {
    let world = World::new(1);
    *world.source.hourly_limit.lock().unwrap() = Some(5);
    let start = parse_instant(NOW).unwrap();
    // 12 reviews in the backfill window, one a page: more pages than an hour allows.
    let reviews: Vec<Review> = (0..12)
        .map(|i| review(&format!("q{i:02}"), &instant(start - (i + 1) * HOUR)))
        .collect();
    world.source.set("1", reviews.clone());

    let first = world.run_with(at(&["1"], start)).await;
    assert_eq!(first.apps[0].status, AppStatus::Waiting, "{first:?}");
    assert_eq!(first.apps[0].pages, 5, "{first:?}");
    assert!(world.notifier.ids("1").is_empty());
    // Later runs in the same hour (another invocation, no shared memory) read nothing.
    let requests = world.source.requests.load(Ordering::SeqCst);
    let spent = world
        .run_with(at(&["1"], start + 20 * 60 * 1_000_000_000))
        .await;
    assert_eq!(spent.apps[0].status, AppStatus::Waiting, "{spent:?}");
    assert!(
        spent.apps[0]
            .error
            .as_deref()
            .unwrap()
            .contains("limit of 5 requests an hour"),
        "{spent:?}"
    );
    assert_eq!(spent.failure_message(), None, "waiting is not failing");
    assert_eq!(world.source.requests.load(Ordering::SeqCst), requests);

    // The next hours read on from where the first stopped, and everything goes out once.
    let mut hour = 1;
    while world.notifier.ids("1").len() < reviews.len() && hour < 10 {
        let summary = world.run_with(at(&["1"], start + hour * HOUR)).await;
        assert!(summary.apps[0].pages <= 5, "{summary:?}");
        assert_ne!(summary.apps[0].status, AppStatus::Failed, "{summary:?}");
        hour += 1;
    }
    assert_each_once_in_order(&world.notifier.ids("1"), &reviews);
    let tally = world.state.tallies.lock().unwrap()[&app("1")];
    assert!(tally.count <= 5, "{tally:?}");
}
