//! The use case: one run over every configured app. Plain async code over the ports.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tracing::{Instrument, error, info, info_span, warn};

use crate::domain::{
    AppId, AppState, Lookback, MAX_STALLS, Outcome, Progress, RescanRead, Review, Scan, Store,
    Watermark, due_to, failing_since_after, give_up_after_hours, has_work, new_destination_start,
    queues, select_new, watermark_move, with_noted_answers,
};
use crate::ports::{
    Cursor, Notifier, Page, RequestTally, ReviewSource, SecretError, Secrets, Snapshot,
    SourceError, StateError, StateStore, TimeLimit,
};
use crate::secret::{Destination, RelaySecret};
pub use crate::summary::{AppStatus, AppSummary, RunSummary};

/// Apps read in parallel; small, to stay far below Apple's per-key rate limit.
const APP_CONCURRENCY: usize = 4;

/// A DynamoDB transaction holds at most 100 items: up to two per review a message carries (its
/// delivery record and, for Google Play, the item that finds it by id).
const MAX_REVIEWS_PER_WRITE: usize = 50;

/// A request under way is cut off this long before the deadline, leaving time to save progress
/// and answer.
const FINISH_AHEAD: Duration = Duration::from_secs(1);

pub struct Deps<'a> {
    pub secrets: &'a dyn Secrets,
    pub sources: Sources<'a>,
    pub state: &'a dyn StateStore,
    pub notifier: &'a dyn Notifier,
}

/// One source per store; `None` for a store this deployment does not read.
#[derive(Clone, Copy, Default)]
pub struct Sources<'a> {
    pub app_store: Option<&'a dyn ReviewSource>,
    pub google_play: Option<&'a dyn ReviewSource>,
}

impl<'a> Sources<'a> {
    pub fn of(&self, store: Store) -> Option<&'a dyn ReviewSource> {
        match store {
            Store::AppStore => self.app_store,
            Store::GooglePlay => self.google_play,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub apps: Vec<AppId>,
    pub backfill_hours: u32,
    pub overlap_hours: u32,
    /// How long delivered ids are remembered.
    pub retention_days: u32,
    /// Names this invocation in the per-app lease.
    pub holder: String,
    /// When this invocation's leases lapse if it never releases them (Unix ms).
    pub lease_until_ms: i64,
    /// Nanoseconds since the Unix epoch.
    pub now_nanos: i128,
    /// A manual replay: reviews created since then (ns) are delivered unless already delivered.
    pub replay_from_nanos: Option<i128>,
    /// When the invocation must be finished by, if it has a limit.
    pub deadline: Option<Instant>,
    /// No new delivery starts with less than this left before the deadline, and no retry waits
    /// into it.
    pub deadline_margin: Duration,
}

impl RunOptions {
    /// How far back this run may look, from its own clock.
    pub fn lookback(&self) -> Lookback {
        Lookback {
            overlap_hours: self.overlap_hours,
            retention_days: self.retention_days,
            now_nanos: self.now_nanos,
        }
    }
}

/// Runs every app once: fetch what is new, deliver it oldest first, advance the watermark after
/// each delivery. One app's failure does not stop the others.
pub async fn run_once(deps: &Deps<'_>, options: &RunOptions) -> RunSummary {
    if let Err(err) = deps.secrets.load(false).await {
        return everyone_failed(&options.apps, &err);
    }
    let apps = futures_util::stream::iter(&options.apps)
        .map(|app| {
            let span = info_span!("app", app_id = %app);
            run_app(deps, options, app).instrument(span)
        })
        .buffered(APP_CONCURRENCY)
        .collect()
        .await;
    RunSummary {
        dry_run: false,
        apps,
    }
}

fn everyone_failed(apps: &[AppId], err: &SecretError) -> RunSummary {
    RunSummary::rejected(apps, &err.to_string())
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("{0}")]
    State(#[from] StateError),
    #[error("page {page}: {source}")]
    Source { page: usize, source: SourceError },
    #[error("{0}")]
    Secret(#[from] SecretError),
    #[error("{} apps are not configured in this deployment", .0.name())]
    NoSource(Store),
    #[error("the invocation's time ran short before {0}")]
    OutOfTime(&'static str),
    #[error(
        "no review delivered and reading got no further back for {0} runs in a row: reading back to where new reviews may start takes longer than one invocation; raise the function's Timeout, or lower BACKFILL_HOURS, or fix the destination that has been failing and holds the watermark back"
    )]
    Stalled(u32),
    #[error(
        "a replay must read back to the oldest review it may deliver within one invocation, and the time ran short after {0} pages; nothing was delivered: replay fewer hours (backfill_hours), or run it with `review-relay invoke --deadline` set longer"
    )]
    ReplayOutOfTime(usize),
    #[error("review {review_id} to {destination}: {source}")]
    Delivery {
        review_id: String,
        destination: String,
        source: crate::ports::DeliveryError,
    },
}

impl AppError {
    /// Whether this is what running out of time looks like: no time to start, or a request
    /// that did not finish.
    fn cut_by_deadline(&self) -> bool {
        matches!(
            self,
            AppError::OutOfTime(_)
                | AppError::Source {
                    source: SourceError::Transport { .. },
                    ..
                }
                | AppError::Delivery {
                    source: crate::ports::DeliveryError::Transport { .. },
                    ..
                }
        )
    }
}

async fn run_app(deps: &Deps<'_>, options: &RunOptions, app: &AppId) -> AppSummary {
    let mut summary = AppSummary::new(app);
    if let Err(err) = relay_app(deps, options, app, &mut summary).await {
        summary = summary.failed(err.to_string());
        // A request cut off, or not started, because the time was up is the deadline's doing:
        // the next run, with its full time, resumes from here. Any other failure stays one.
        if err.cut_by_deadline()
            && TimeLimit::passed(time_limit(options.deadline, options.deadline_margin))
        {
            summary.status = AppStatus::Deadline;
        }
    }
    summary.pending = summary.new.saturating_sub(summary.complete);
    info!(
        status = ?summary.status,
        fetched = summary.fetched,
        new = summary.new,
        delivered = summary.delivered,
        pending = summary.pending,
        pages = summary.pages,
        error = summary.error.as_deref(),
        "app done"
    );
    summary
}

/// Reads the app's state and its reviews without the lease, and takes the lease only when there
/// is something to write: a run that finds nothing new reads the table once and writes nothing.
async fn relay_app(
    deps: &Deps<'_>,
    options: &RunOptions,
    app: &AppId,
    summary: &mut AppSummary,
) -> Result<(), AppError> {
    let now_ms = (options.now_nanos / 1_000_000) as i64;
    let lookback = options.lookback();
    let snapshot = read_app(deps, options, app).await?;
    if snapshot.lease.held(now_ms) {
        summary.status = AppStatus::Locked;
        return Ok(());
    }
    let mut stored = snapshot.state.is_some();
    // A stored state comes with the run's `replay_from_nanos` already (see `StateStore::load`).
    let mut state = snapshot.state.unwrap_or_else(|| AppState {
        replay_from_nanos: options.replay_from_nanos,
        ..AppState::first_run(options.now_nanos, options.backfill_hours)
    });
    summary.newest_delivered_nanos = state.watermark.as_ref().map(|mark| mark.key.nanos);

    let limit = time_limit(options.deadline, options.deadline_margin);
    let source = deps
        .sources
        .of(app.store())
        .ok_or(AppError::NoSource(app.store()))?;
    // A store that limits requests per app and hour, across every caller: the table keeps the
    // hour's tally, so runs (which share no memory) stay under it whatever the schedule.
    let now_secs = (options.now_nanos / 1_000_000_000) as i64;
    let hour_start = now_secs - now_secs.rem_euclid(3600);
    let allowance = source.hourly_request_limit().map(|hourly| {
        (
            hourly,
            RequestTally::left(snapshot.requests, hourly, now_secs),
        )
    });
    if let Some((hourly, 0)) = allowance {
        summary.status = AppStatus::Waiting;
        summary.error = Some(format!(
            "{}'s limit of {hourly} requests an hour for this app is spent; reading goes on next hour",
            app.store().name()
        ));
        return Ok(());
    }
    let sent_before = source.requests_sent(app);
    let read = fetch_new(
        source,
        options,
        app,
        &state,
        limit,
        allowance.map(|(_, left)| left),
        summary,
    )
    .await;
    if let Some((hourly, left)) = allowance {
        let sent = u32::try_from(source.requests_sent(app).saturating_sub(sent_before))
            .unwrap_or(u32::MAX);
        // The store said the limit is reached: nothing more this hour, whatever the tally says.
        let rate_limited = matches!(
            read,
            Err(AppError::Source {
                source: SourceError::PlayRateLimited { .. },
                ..
            })
        );
        let count = if rate_limited { left.max(sent) } else { sent };
        if count > 0
            && let Err(err) = deps.state.count_requests(app, hour_start, count).await
        {
            warn!(error = %err, "could not count this run's requests against the hourly limit");
        }
        if rate_limited {
            summary.status = AppStatus::Waiting;
            summary.error = Some(format!(
                "{} answered that its limit of {hourly} requests an hour for this app is reached; reading goes on next hour",
                app.store().name()
            ));
            return Ok(());
        }
    }
    let mut read = read?;
    // The secret as the source last read it (it reads it again when the store refuses a key).
    let secret = deps.secrets.load(false).await?;
    let reviews = std::mem::take(&mut read.reviews);
    // A replay reads anew each time and keeps no stops: one that cannot read to the end in
    // one invocation would stop in the same place every time, so it fails saying so.
    if read.stopped.is_some() && state.replay_from_nanos.is_some() {
        return Err(AppError::ReplayOutOfTime(summary.pages));
    }
    report_out_of_reach(&state, lookback, &reviews);
    // In a store whose edits move reviews to a later time, a review the window knows nothing of
    // may be an edit of one delivered before it: its records are found by id, so it goes out
    // as an edit, once, and not as a new review.
    let found = if app.store().edits_move_reviews() {
        let unknown = state.unknown_ids(&reviews, lookback);
        if unknown.is_empty() {
            Vec::new()
        } else {
            deps.state.find_records(app, &unknown, lookback).await?
        }
    } else {
        Vec::new()
    };
    state.note_found(&found);
    let mut fresh = select_new(&state, lookback, reviews);
    with_noted_answers(&mut fresh, &snapshot.answers);
    // A read through the re-scan, or cut short before its end, changes where it stands.
    let rescan_moves =
        !read.continued && (read.whole || read.cut) && state.progress.rescan_from.is_some();
    if stored
        && read.stopped.is_none()
        && !rescan_moves
        && !has_work(&state, app, &secret.destinations, &fresh)
    {
        return Ok(());
    }

    // Taken only if nobody has taken or given back the lease since the read above; otherwise
    // the state is read again, as another run may have delivered in between.
    let mut seen = snapshot.lease;
    let mut tries = 1;
    while !deps
        .state
        .acquire_lease(app, &options.holder, now_ms, options.lease_until_ms, &seen)
        .await?
    {
        if tries == LEASE_TRIES {
            summary.status = AppStatus::Locked;
            return Ok(());
        }
        tries += 1;
        let again = read_app(deps, options, app).await?;
        if again.lease.held(now_ms) {
            summary.status = AppStatus::Locked;
            return Ok(());
        }
        seen = again.lease;
        if let Some(newer) = again.state {
            stored = true;
            // Another run read on from a stop in between: what this one read is not the same.
            if newer.progress.stops != state.progress.stops {
                return Ok(());
            }
            state = newer;
            state.note_found(&found);
            summary.newest_delivered_nanos = state.watermark.as_ref().map(|mark| mark.key.nanos);
            fresh = select_new(&state, lookback, fresh);
            if read.stopped.is_none() && !has_work(&state, app, &secret.destinations, &fresh) {
                // The other run did it all.
                return Ok(());
            }
        }
    }
    let run = Leased {
        deps,
        options,
        app,
        secret: &secret,
        limit,
    };
    let read = Read {
        reviews: fresh,
        ..read
    };
    let result = relay_under_lease(&run, state, stored, read, summary).await;
    if let Err(err) = deps.state.release_lease(app, &options.holder).await {
        // It lapses by itself at the invocation's deadline.
        warn!(error = %err, "could not release the lease");
    }
    result
}

/// What a run read of an app's reviews.
struct Read {
    reviews: Vec<Review>,
    /// Set when reading stopped short of the window start for lack of time: where to go on.
    stopped: Option<Scan>,
    /// Reading stopped for the store's hourly request limit rather than for time.
    limited: bool,
    /// Reading went on from where an earlier run stopped (`Progress::stops`), so it holds only
    /// reviews older than those that run read.
    continued: bool,
    /// Reviews of the newest instant on the page read on from were left for the stretch above
    /// (which holds that instant's other reviews): reading may not stop below them yet.
    held_back: bool,
    /// Reading got to the window start or the end of the list (not cut short by time, the
    /// budget or a stretch already handled).
    whole: bool,
    /// A read from the newest review ran out of time past the watermark, before the window
    /// start.
    cut: bool,
}

/// Logs reviews the watermark has not passed that are now too old to be delivered safely.
fn report_out_of_reach(state: &AppState, lookback: Lookback, reviews: &[Review]) {
    let lost: Vec<&Review> = reviews
        .iter()
        .filter(|r| state.out_of_reach(r, lookback))
        .collect();
    if let Some(newest) = lost.iter().max_by_key(|r| r.key()) {
        error!(
            count = lost.len(),
            newest_review_id = %newest.id,
            "reviews not delivered before they grew older than the delivery records reach (DELIVERED_RETENTION_DAYS) are skipped: a review that old may already have been delivered and its record expired"
        );
    }
}

/// What an app's run works with once it holds the app's lease; fixed for the run.
#[derive(Clone, Copy)]
struct Leased<'r> {
    deps: &'r Deps<'r>,
    options: &'r RunOptions,
    app: &'r AppId,
    /// The secret as the source last read it.
    secret: &'r RelaySecret,
    limit: Option<TimeLimit>,
}

/// The writing part of a run, under the app's lease: deliver what was read, or save where
/// reading stopped; then note whether the app made progress.
async fn relay_under_lease(
    run: &Leased<'_>,
    mut state: AppState,
    stored: bool,
    read: Read,
    summary: &mut AppSummary,
) -> Result<(), AppError> {
    let Leased {
        deps,
        options,
        app,
        limit,
        ..
    } = *run;
    let before = state.progress.clone();
    let replay = state.replay_from_nanos.is_some();
    let restarted = !read.continued && !before.stops.is_empty();
    let held_back = read.held_back;
    let rescanned = !read.continued && read.whole;
    let rescan_cut = read.cut;
    let (result, stops, ran_short, handled) = match read.stopped {
        Some(scan) => {
            // Nothing can go out before the oldest new review is in hand.
            if !stored {
                deps.state.create(app, &state).await?;
            }
            summary.new = read.reviews.len();
            if read.limited {
                summary.status = AppStatus::Waiting;
                info!(
                    pages = summary.pages,
                    "the store's hourly request limit for this app is spent before reading reached the oldest review that may be new; a run next hour reads on from here"
                );
            } else {
                summary.status = AppStatus::Deadline;
                info!(
                    pages = summary.pages,
                    "the invocation's time ran short before reading reached the oldest review that may be new; the next run reads on from here"
                );
            }
            // A read from the newest review replaces stops it could not read on from.
            let stops = if read.continued {
                before.stopped(scan)
            } else {
                vec![scan]
            };
            (Ok(()), stops, true, before.handled.clone())
        }
        None => {
            let result = relay_leased(run, &mut state, stored, read.reviews, summary).await;
            let ran_short = summary.status == AppStatus::Deadline
                || result
                    .as_ref()
                    .is_err_and(|err| err.cut_by_deadline() && TimeLimit::passed(limit));
            // What was read on from an earlier stop goes out first; until it has all gone out
            // (or waits only for destinations that failed), the next run reads on from the same
            // stop again, so per-app order holds.
            let unfinished = ran_short || matches!(result, Err(AppError::State(_)));
            let went_out_whole = summary.complete == summary.new && !held_back;
            let (stops, handled) = before.settled(read.continued, unfinished, went_out_whole);
            (result, stops, ran_short, handled)
        }
    };
    // A replay reads anew and leaves the scheduled runs' progress as it was.
    if replay {
        return result;
    }
    // Stops a read could not go on from are dropped, and how deep they got counts no more.
    let base = if restarted {
        Progress {
            stops: Vec::new(),
            deepest: None,
            ..before.clone()
        }
    } else {
        before.clone()
    };
    let mut after = base.after(summary.delivered, stops, ran_short);
    // A destination that failed gets a late review only while it is in the overlap window, as
    // always; anything else that went wrong leaves the re-scan for the next run.
    let delivered_what_it_could = result
        .as_ref()
        .err()
        .is_none_or(|err| matches!(err, AppError::Delivery { .. }));
    let rescan = if rescanned && delivered_what_it_could && !ran_short {
        RescanRead::Through
    } else if rescan_cut {
        RescanRead::Cut
    } else {
        RescanRead::Other
    };
    if after.rescan_after(rescan, options.now_nanos) {
        warn!(
            runs = MAX_STALLS,
            "the re-scan back to when reading began to span runs did not fit in a run's time; it is given up, and reviews Apple published late in that time before the overlap window are not looked for"
        );
    }
    after.handled = handled.filter(|handled| {
        state
            .watermark
            .as_ref()
            .map(|mark| &mark.key)
            .is_none_or(|mark| mark < handled)
    });
    if after.stalls > before.stalls {
        warn!(
            stalls = after.stalls,
            "no progress in this run: nothing delivered, and reading got no further back"
        );
    }
    if after != before
        && let Err(err) = deps.state.save_progress(app, &after).await
    {
        return Err(result.err().unwrap_or(err.into()));
    }
    if after.stalls >= MAX_STALLS && ok_or_cut(&result, limit) {
        return Err(AppError::Stalled(after.stalls));
    }
    result
}

/// Whether a result is a success or a cut by the deadline (which a stall report replaces).
fn ok_or_cut(result: &Result<(), AppError>, limit: Option<TimeLimit>) -> bool {
    match result {
        Ok(()) => true,
        Err(err) => err.cut_by_deadline() && TimeLimit::passed(limit),
    }
}

/// The app's state and lease, in one read.
async fn read_app(
    deps: &Deps<'_>,
    options: &RunOptions,
    app: &AppId,
) -> Result<Snapshot, StateError> {
    deps.state
        .load(app, options.lookback(), options.replay_from_nanos)
        .await
}

/// How many times a run tries to take the lease, reading the state again after each time it
/// moved, before it gives the app up as taken by another run.
const LEASE_TRIES: u32 = 3;

/// The part of a run that writes, under the app's lease.
async fn relay_leased(
    run: &Leased<'_>,
    state: &mut AppState,
    stored: bool,
    fresh: Vec<Review>,
    summary: &mut AppSummary,
) -> Result<(), AppError> {
    let Leased {
        deps,
        options,
        app,
        secret,
        limit,
    } = *run;
    if !stored {
        // A first run: the state item comes first.
        let replay_from = state.replay_from_nanos;
        *state = deps.state.create(app, state).await?;
        state.replay_from_nanos = replay_from;
    }
    register_destinations(deps, app, secret, state, &fresh).await?;
    let keep_until_secs =
        (options.now_nanos / 1_000_000_000) as i64 + i64::from(options.retention_days) * 86_400;

    // Each destination's reviews, in order.
    let mut queues: Vec<(&Destination, Vec<&Review>, usize)> =
        queues(state, app, &secret.destinations, &fresh)
            .into_iter()
            .map(|(destination, due)| (destination, due, 0))
            .collect();
    let new: HashSet<&str> = queues
        .iter()
        .flat_map(|(_, due, _)| due.iter().map(|r| r.id.as_str()))
        .collect();
    summary.new = new.len();
    let app_name = if queues.is_empty() {
        None
    } else {
        match deps.sources.of(app.store()) {
            Some(source) => source.app_name(app, limit).await,
            None => None,
        }
    };

    // One message at a time to each destination in turn. A destination that fails gets nothing
    // more this run, while the others go on; each message is recorded as soon as it is taken.
    let mut sent: HashSet<&str> = HashSet::new();
    let mut outcomes: HashMap<&str, Outcome> = HashMap::new();
    let mut first_error = None;
    'rounds: while queues.iter().any(|(_, due, next)| *next < due.len()) {
        for (destination, due, next) in queues.iter_mut() {
            if *next >= due.len() {
                continue;
            }
            if TimeLimit::passed(limit) {
                summary.status = AppStatus::Deadline;
                break 'rounds;
            }
            let most = deps
                .notifier
                .max_per_message(destination)
                .clamp(1, MAX_REVIEWS_PER_WRITE);
            let batch = &due[*next..(*next + most).min(due.len())];
            match deps
                .notifier
                .send(destination, app, app_name.as_deref(), batch, limit)
                .await
            {
                Ok(carried) => {
                    let carried = &batch[..carried.clamp(1, batch.len())];
                    let marks: Vec<Watermark> = carried.iter().map(|r| Watermark::of(r)).collect();
                    if let Err(err) = deps
                        .state
                        .record(app, &marks, &destination.key, keep_until_secs)
                        .await
                    {
                        // The message went out but is not recorded: stop here, so the counts
                        // and the watermark still say what is known.
                        first_error.get_or_insert(err.into());
                        break 'rounds;
                    }
                    for review in carried {
                        state.delivered(review, std::slice::from_ref(&destination.key), false);
                        if sent.insert(review.id.as_str()) {
                            summary.delivered += 1;
                        }
                    }
                    *next += carried.len();
                    outcomes.insert(destination.key.as_str(), Outcome::Delivered);
                }
                Err(source) => {
                    // A request cut off by the deadline says nothing about the destination.
                    let cut = matches!(source, crate::ports::DeliveryError::Transport { .. })
                        && TimeLimit::passed(limit);
                    if !cut {
                        outcomes
                            .entry(destination.key.as_str())
                            .or_insert(Outcome::Failed);
                    }
                    warn!(
                        review_id = %batch[0].id,
                        destination = %destination.label,
                        error = %source,
                        "delivery failed; this destination waits for the next run"
                    );
                    first_error.get_or_insert(AppError::Delivery {
                        review_id: batch[0].id.clone(),
                        destination: destination.label.clone(),
                        source,
                    });
                    *next = due.len();
                }
            }
        }
    }

    // Each destination's failure is noted from its first failed run on, and cleared by a
    // delivery.
    for destination in &secret.destinations {
        let key = destination.key.as_str();
        let before = state.failing_since.get(key).copied();
        let after = failing_since_after(before, outcomes.get(key).copied(), options.now_nanos);
        if after != before {
            if let Err(err) = deps.state.set_failing(app, key, after).await {
                first_error.get_or_insert(err.into());
                continue;
            }
            match after {
                Some(since) => state.failing_since.insert(key.to_owned(), since),
                None => state.failing_since.remove(key),
            };
        }
    }

    // The watermark moves past what every destination has or no longer waits for.
    let give_up_hours = give_up_after_hours(options.retention_days, options.overlap_hours);
    let moved = watermark_move(
        state,
        app,
        &secret.destinations,
        &fresh,
        |key| outcomes.get(key) == Some(&Outcome::Failed),
        options.now_nanos,
        give_up_hours,
    );
    for (review, waiting) in &moved.left_behind {
        for destination in waiting {
            error!(
                review_id = %review.id,
                destination = %destination.label,
                hours = give_up_hours,
                "this destination has been failing for longer than the watermark can wait; the watermark moves on without it, and it gets this review only if it recovers within the overlap window"
            );
        }
    }
    summary.complete = fresh
        .iter()
        .filter(|r| {
            new.contains(r.id.as_str()) && due_to(state, app, &secret.destinations, r).is_empty()
        })
        .count();
    if let Some(review) = moved.to {
        let mark = Watermark::of(review);
        deps.state.advance(app, &mark).await?;
        state.watermark = Some(mark);
    }
    summary.newest_delivered_nanos = state.watermark.as_ref().map(|mark| mark.key.nanos);
    first_error.map_or(Ok(()), Err)
}

/// Notes destinations seen for the first time, starting where
/// [`new_destination_start`] says.
async fn register_destinations(
    deps: &Deps<'_>,
    app: &AppId,
    secret: &RelaySecret,
    state: &mut AppState,
    fresh: &[Review],
) -> Result<(), StateError> {
    let since = new_destination_start(state, fresh);
    for destination in &secret.destinations {
        if !state.destinations_since.contains_key(&destination.key) {
            deps.state
                .add_destination(app, &destination.key, since)
                .await?;
            state
                .destinations_since
                .insert(destination.key.clone(), since);
        }
    }
    Ok(())
}

/// No new request starts after `deadline - deadline_margin`; one under way ends by
/// `deadline - FINISH_AHEAD`.
pub fn time_limit(deadline: Option<Instant>, margin: Duration) -> Option<TimeLimit> {
    deadline.map(|deadline| {
        let give_up_at = deadline.checked_sub(margin).unwrap_or(deadline);
        let finish_by = deadline
            .checked_sub(FINISH_AHEAD)
            .unwrap_or(deadline)
            .max(give_up_at);
        TimeLimit {
            give_up_at,
            finish_by,
        }
    })
}

/// Reads pages newest first until one reaches reviews older than anything that could be new; or
/// goes on from where an earlier run stopped (`Progress::stops`). When time runs short it stops
/// early: past the watermark, it keeps what it has and leaves the overlap re-scan to a later run;
/// before, it says where it stopped, for the next run to read on from there. What a run reads on
/// from a stop holds every review between that stop and the watermark (or the window start), so
/// it goes out oldest first, and per-app order holds; the reviews above the stop are read again
/// by a later run.
async fn fetch_new(
    source: &dyn ReviewSource,
    options: &RunOptions,
    app: &AppId,
    state: &AppState,
    limit: Option<TimeLimit>,
    allowance: Option<u32>,
    summary: &mut AppSummary,
) -> Result<Read, AppError> {
    // Reading stops, as for lack of time, before a page that could take it past the requests
    // the store's hourly limit leaves this hour.
    let sent_before = source.requests_sent(app);
    let spent_allowance = || {
        allowance.is_some_and(|allowed| {
            source.requests_sent(app).saturating_sub(sent_before) + 1 > u64::from(allowed)
        })
    };
    let window_start = state.window_start(options.lookback());
    // Reading stops by halfway to `give_up_at`, so a run that must stop short still has time to
    // deliver or to save where it stopped.
    let read_until = limit.map(|l| {
        let now = Instant::now();
        now + l.give_up_at.saturating_duration_since(now) / 2
    });
    let mut reviews = Vec::new();
    let mut followed = HashSet::new();
    // A replay reads anew: it reaches further back than any stop of a scheduled run.
    let resume = state
        .progress
        .stops
        .last()
        .filter(|_| state.replay_from_nanos.is_none());
    let mut request = Cursor::First;
    if let Some(Some(page)) = resume.map(|scan| &scan.page) {
        request = Cursor::Next(page.clone());
        followed.insert(request.clone());
    }
    // Reading on from a stop reads its page again, which must prove that nothing moved past it.
    let mut resumed_at = resume.map(|scan| scan.reached.clone());
    let mut continued = resumed_at.is_some();
    if continued {
        info!("reading on from where an earlier run stopped");
    }
    // Pages read in this read (a start over begins a new one).
    let mut read_pages = 0;
    let mut top_of_resumed_page = None;
    // Reading got to the window start (or the end of the list).
    let mut whole = false;
    let mut cut = false;
    loop {
        let page_number = summary.pages + 1;
        // Reading is cheap and tells how much waits, so it goes on past `give_up_at`; each
        // request is still cut off at `finish_by`.
        if TimeLimit::over(limit) {
            return Err(AppError::OutOfTime("reading the reviews"));
        }
        let asked_at = Instant::now();
        let page = match source.page(app, &request, limit).await {
            // The store may no longer take a link an earlier run saved: start over.
            Err(
                err @ (SourceError::Status { .. }
                | SourceError::PlayStatus { .. }
                | SourceError::Unparseable(_)
                | SourceError::ForeignNext),
            ) if continued && read_pages == 0 => {
                warn!(error = %err, "cannot read on from where an earlier run stopped; reading from the newest review again");
                continued = false;
                resumed_at = None;
                followed.clear();
                request = Cursor::First;
                continue;
            }
            other => other,
        }
        .map_err(|source| AppError::Source {
            page: page_number,
            source,
        })?;
        summary.pages = page_number;
        summary.fetched += page.reviews.len();
        read_pages += 1;

        let Page {
            reviews: page_reviews,
            next,
        } = page;
        if read_pages == 1
            && let Some(reached) = &resumed_at
            && !page_reviews.iter().any(|r| r.key() >= reached)
        {
            // Reviews deleted since then moved older ones up past the saved link.
            warn!(
                "the store's listing moved since an earlier run stopped there; reading from the newest review again"
            );
            continued = false;
            resumed_at = None;
            read_pages = 0;
            followed.clear();
            request = Cursor::First;
            continue;
        }
        // The newest second of the page read again may go on in the page above, which the
        // stretch above reads: unless that second fills the page, its reviews go out with that
        // stretch, so ties keep their order.
        if read_pages == 1 && continued {
            let newest = page_reviews.iter().map(|r| r.key().nanos).max();
            let oldest = page_reviews.iter().map(|r| r.key().nanos).min();
            top_of_resumed_page = newest.filter(|_| oldest < newest);
        }
        let this_page = match &request {
            Cursor::First => None,
            Cursor::Next(cursor) => Some(cursor.clone()),
        };
        let oldest = page_reviews.iter().map(Review::key).min().cloned();
        // Reading has passed where a stretch that went out whole began: every review from here
        // up is in hand (reaching that very review, or anything created before it).
        let past_handled = state.replay_from_nanos.is_none()
            && state.progress.handled.as_ref().is_some_and(|handled| {
                page_reviews
                    .iter()
                    .any(|r| r.key() == handled || r.key().nanos < handled.nanos)
            });
        reviews.extend(page_reviews);
        let Some(next) = next else {
            whole = true;
            break;
        };
        if oldest
            .as_ref()
            .is_none_or(|oldest| oldest.nanos < window_start)
        {
            whole = true;
            break;
        }
        // Everything after the watermark is in hand; what follows only re-reads the overlap for
        // late reviews, which can wait for a run with budget (and time) to spare.
        let past_watermark = state.replay_from_nanos.is_none()
            && state
                .watermark
                .as_ref()
                .zip(oldest.as_ref())
                .is_some_and(|(mark, oldest)| oldest.nanos < mark.key.nanos);
        if past_handled {
            break;
        }
        let out_of_time =
            read_until.is_some_and(|until| Instant::now() >= until) || spent_allowance();
        if past_watermark && !source.optional_reads_affordable(app) {
            info!(
                page = page_number,
                "the store's request budget is low; the overlap re-scan waits for a later run"
            );
            summary.rescan_skipped = true;
            break;
        }
        // Reading on from an earlier stop is a sign time is short: what it read since that stop
        // goes out now, oldest first, and the next runs read down to the watermark, which has
        // moved, instead of through the overlap again.
        if past_watermark && (out_of_time || continued) {
            cut = out_of_time && !continued;
            info!(
                page = page_number,
                "the time left goes to delivering; the overlap re-scan waits for a later run"
            );
            summary.rescan_skipped = true;
            break;
        }
        if !followed.insert(next.clone()) {
            warn!(
                page = page_number,
                "the store's next page repeats an earlier page; stopping here"
            );
            break;
        }
        // Reading on from a stop goes a page past the one it read again, if that page fits
        // before `give_up_at`; otherwise it stops where it stopped before (no progress).
        let one_more = continued
            && read_pages == 1
            && !spent_allowance()
            && limit.is_some_and(|l| Instant::now() + asked_at.elapsed() < l.give_up_at);
        // A page down to the watermark's very instant leaves only that instant's other reviews
        // to read: a stop there would start a stretch with nothing to deliver.
        let at_watermark = state.replay_from_nanos.is_none()
            && state
                .watermark
                .as_ref()
                .zip(oldest.as_ref())
                .is_some_and(|(mark, oldest)| oldest.nanos == mark.key.nanos);
        // Out of requests there, the read ends as it stands: what it holds goes out, and the
        // instant's other reviews are read by the next run, which reads down through it.
        if at_watermark && spent_allowance() {
            break;
        }
        if out_of_time
            && !one_more
            && !at_watermark
            && let Some(reached) = oldest
        {
            let stopped = Scan {
                page: this_page,
                reached,
            };
            return Ok(Read {
                reviews,
                stopped: Some(stopped),
                limited: spent_allowance(),
                continued,
                held_back: false,
                whole: false,
                cut: false,
            });
        }
        request = next;
    }
    // The newest instant on the page read on from may go on in the page above it, which the
    // stretch above reads: its reviews go out with that stretch, so ties keep their order.
    let mut held_back = false;
    if let Some(top) = top_of_resumed_page {
        let read = reviews.len();
        reviews.retain(|r| r.key().nanos < top);
        held_back = reviews.len() < read;
    }
    Ok(Read {
        reviews,
        stopped: None,
        limited: false,
        continued,
        held_back,
        whole,
        cut,
    })
}

pub mod test_message;
pub use test_message::{TestStatus, TestSummary, send_test_message};

#[cfg(test)]
mod tests;
