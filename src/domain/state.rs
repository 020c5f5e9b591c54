use std::collections::{HashMap, HashSet};

use super::progress::Progress;
use super::review::{Review, ReviewKey};
use super::window::Lookback;

const NANOS_PER_HOUR: i128 = 3_600 * 1_000_000_000;

/// The newest delivered review of an app. Late-published reviews dated up to the overlap before it
/// are still looked for; nothing older than that is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    pub key: ReviewKey,
    /// Apple's `createdDate` string of that review, kept for people reading the table.
    pub created_date: String,
    /// What a delivery record keeps to notice an edit; `None` in records written before.
    pub version: Option<Version>,
}

/// The version of a review a delivery record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The review's id in its store (the record's own id differs for an edit).
    pub original_id: String,
    /// [`Review::digest`].
    pub digest: String,
    pub rating: Option<u8>,
}

impl Watermark {
    pub fn of(review: &Review) -> Self {
        Self {
            key: review.key().clone(),
            created_date: review.created_date.clone(),
            version: Some(Version {
                original_id: review.original_id().to_owned(),
                digest: review.digest(),
                rating: review.rating,
            }),
        }
    }
}

/// A delivery record found by the review's id rather than by its time: the version it holds
/// and who has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRecord {
    pub key: ReviewKey,
    pub version: Version,
    pub to: Delivered,
}

/// What the table remembers about one app.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppState {
    /// Reviews created before this instant (ns since the epoch) are never delivered.
    pub baseline_nanos: i128,
    /// When the app's first run created the state (ns), if the state says (older states do
    /// not): no delivery record of its runs can have expired until the retention has passed
    /// since.
    pub created_nanos: Option<i128>,
    pub watermark: Option<Watermark>,
    /// The reviews delivered inside the overlap window (older ones are not loaded), by id.
    pub delivered: HashMap<String, Delivered>,
    /// The latest version delivered of each review in the window that has one recorded, by the
    /// review's id in its store, with the key of its record.
    pub versions: HashMap<String, (ReviewKey, Version)>,
    /// When each destination was first seen for this app (ns): it gets reviews created since.
    /// A destination missing here is new.
    pub destinations_since: HashMap<String, i128>,
    /// Destinations failing since when (ns): a destination missing here is healthy.
    pub failing_since: HashMap<String, i128>,
    /// A manual replay: reviews created since this instant count as new too, even before the
    /// baseline, unless already delivered.
    pub replay_from_nanos: Option<i128>,
    /// Where reading stands across runs.
    pub progress: Progress,
}

impl AppState {
    pub fn first_run(now_nanos: i128, backfill_hours: u32) -> Self {
        Self {
            baseline_nanos: (now_nanos - i128::from(backfill_hours) * NANOS_PER_HOUR).max(0),
            created_nanos: Some(now_nanos),
            ..Self::default()
        }
    }

    /// The oldest instant at which a review can still be new: the overlap before the watermark,
    /// but never before the baseline; or the start of a replay, if that is earlier. Never before
    /// what the delivery records cover, whatever the rest says: an older review may have been
    /// delivered and its record gone.
    pub fn window_start(&self, lookback: Lookback) -> i128 {
        let usual = self.watermark.as_ref().map_or(self.baseline_nanos, |mark| {
            let from = self
                .progress
                .rescan_from
                .map_or(mark.key.nanos, |from| from.min(mark.key.nanos));
            (from - lookback.overlap_nanos()).max(self.baseline_nanos)
        });
        self.replay_from_nanos
            .map_or(usual, |from| usual.min(from))
            .max(self.floor(lookback))
    }

    /// Before this instant a review is never new: what the delivery records cover (see
    /// [`super::coverage_floor`]). While every record this app's runs wrote is still there —
    /// until the retention less the margin has passed since the state was created — there is no
    /// such limit, so a long backfill read over many runs loses nothing to the passing time.
    pub fn floor(&self, lookback: Lookback) -> i128 {
        let floor = lookback.floor_nanos();
        match self.created_nanos {
            Some(created) if created > floor => i128::MIN,
            _ => floor,
        }
    }

    /// `review` as this state knows it: a later version of a delivered review when its rating or
    /// words changed since ([`Review::as_edit_of`]), the edit delivered last when it is that one,
    /// else as it is. A review whose record has
    /// no version (written before edits were noticed) counts as unchanged.
    pub fn versioned(&self, review: Review) -> Review {
        match self.versions.get(&review.id) {
            Some((_, delivered)) if delivered.digest != review.digest() => {
                review.as_edit_of(delivered.rating)
            }
            // The edit delivered last, read again: it is that version, under that version's id,
            // whether or not the first version's record is still there.
            Some((record, _)) if record.id != review.id => review.as_edit_of(None),
            _ => review,
        }
    }

    /// The store's ids of `reviews` that may have been delivered before the window this state
    /// was loaded with: in the window now, but with no record of theirs loaded. In a store whose
    /// edits move reviews ([`super::Store::edits_move_reviews`]) such a review may be an edit
    /// of one delivered long ago; its record is then looked up by id.
    pub fn unknown_ids(&self, reviews: &[Review], lookback: Lookback) -> Vec<String> {
        let start = self.window_start(lookback);
        let mut ids: Vec<String> = reviews
            .iter()
            .filter(|r| r.key().nanos >= start)
            .map(|r| r.original_id().to_owned())
            .filter(|id| !self.versions.contains_key(id) && !self.delivered.contains_key(id))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Takes in records found by id, as if they had been loaded with the window.
    pub fn note_found(&mut self, found: &[FoundRecord]) {
        for record in found {
            self.note_version(&Watermark {
                key: record.key.clone(),
                created_date: String::new(),
                version: Some(record.version.clone()),
            });
            self.delivered
                .entry(record.key.id.clone())
                .or_insert_with(|| record.to.clone());
        }
    }

    /// Notes the version a record holds, if it is the newest noted for its review (records of
    /// edits sort after the record they follow: a later instant, or the same one and a longer id).
    pub fn note_version(&mut self, record: &Watermark) {
        let Some(version) = &record.version else {
            return;
        };
        let newer = self
            .versions
            .get(&version.original_id)
            .is_none_or(|(noted, _)| record.key >= *noted);
        if newer {
            self.versions.insert(
                version.original_id.clone(),
                (record.key.clone(), version.clone()),
            );
        }
    }

    /// In the window, and not yet delivered to every destination.
    pub fn is_new(&self, review: &Review, lookback: Lookback) -> bool {
        review.key().nanos >= self.window_start(lookback)
            && !matches!(self.delivered.get(&review.id), Some(Delivered::All))
    }

    /// Reviews the watermark has not passed but that are too old to be new any more: if they
    /// were not delivered, they never will be.
    pub fn out_of_reach(&self, review: &Review, lookback: Lookback) -> bool {
        review.key().nanos < self.floor(lookback)
            && self
                .watermark
                .as_ref()
                .is_some_and(|mark| review.key() > &mark.key)
    }

    /// Whether `destination` already has `review_id`.
    pub fn delivered_to(&self, review_id: &str, destination: &str) -> bool {
        match self.delivered.get(review_id) {
            None => false,
            Some(Delivered::All) => true,
            Some(Delivered::To(keys)) => keys.contains(destination),
        }
    }

    /// Whether delivering `review` moves the watermark (a late review does not).
    pub fn advances(&self, review: &Review) -> bool {
        self.watermark
            .as_ref()
            .is_none_or(|mark| review.key() > &mark.key)
    }

    /// Records a delivery to `destinations` in memory, as the table records it.
    pub fn delivered(&mut self, review: &Review, destinations: &[String], advance: bool) {
        let record = Watermark::of(review);
        self.note_version(&record);
        if advance && self.advances(review) {
            self.watermark = Some(record);
        }
        self.deliver_to(&review.id, destinations);
    }

    /// Adds `destinations` to those that have `review_id`.
    pub fn deliver_to(&mut self, review_id: &str, destinations: &[String]) {
        match self
            .delivered
            .entry(review_id.to_owned())
            .or_insert_with(|| Delivered::To(HashSet::new()))
        {
            Delivered::All => {}
            Delivered::To(keys) => keys.extend(destinations.iter().cloned()),
        }
    }
}

/// To whom a review went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Recorded without destination keys (before destinations were told apart): all of them.
    All,
    To(HashSet<String>),
}

/// The new reviews among `fetched`, once each, oldest first (ties by id).
pub fn select_new(
    state: &AppState,
    lookback: Lookback,
    fetched: impl IntoIterator<Item = Review>,
) -> Vec<Review> {
    let mut fresh: Vec<Review> = fetched
        .into_iter()
        .map(|r| state.versioned(r))
        .filter(|r| state.is_new(r, lookback))
        .collect();
    fresh.sort_by(Review::delivery_order);
    // A review can show up twice when the list shifts between two page reads.
    let mut seen = HashSet::new();
    fresh.retain(|r| seen.insert(r.id.clone()));
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_reaches_before_the_baseline_but_skips_what_was_delivered() {
        let now = nanos("2024-05-02T12:00:00Z");
        let mut state = AppState::first_run(now, 1);
        state.delivered(&review("sent", "2024-05-02T11:30:00Z"), &[], true);
        state.delivered.insert("sent".into(), Delivered::All);
        let fetched = || {
            vec![
                review("sent", "2024-05-02T11:30:00Z"),
                review("old", "2024-05-01T13:00:00Z"),
                review("older", "2024-05-01T11:00:00Z"),
            ]
        };
        assert!(
            ids(&select_new(
                &state,
                at("2024-05-02T12:00:00Z", 72),
                fetched()
            ))
            .is_empty()
        );
        state.replay_from_nanos = Some(now - 24 * NANOS_PER_HOUR);
        assert_eq!(
            ids(&select_new(
                &state,
                at("2024-05-02T12:00:00Z", 72),
                fetched()
            )),
            ["old"]
        );
    }

    fn review(id: &str, date: &str) -> Review {
        let mut review = crate::domain::sample_review(id, date);
        review.rating = Some(4);
        review
    }

    fn nanos(date: &str) -> i128 {
        crate::domain::parse_instant(date).unwrap()
    }

    /// The overlap given, records kept 30 days, at `now`.
    fn at(now: &str, overlap_hours: u32) -> Lookback {
        Lookback {
            overlap_hours,
            retention_days: 30,
            now_nanos: nanos(now),
        }
    }

    fn ids(reviews: &[Review]) -> Vec<&str> {
        reviews.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn first_run_keeps_only_the_backfill_window() {
        let now = nanos("2024-05-02T12:00:00Z");
        let state = AppState::first_run(now, 24);
        let picked = select_new(
            &state,
            at("2024-05-02T12:00:00Z", 72),
            [
                review("old", "2024-05-01T11:59:59Z"),
                review("edge", "2024-05-01T12:00:00Z"),
                review("new", "2024-05-02T11:00:00Z"),
            ],
        );
        assert_eq!(ids(&picked), ["edge", "new"]);
    }

    #[test]
    fn zero_backfill_delivers_nothing_that_exists() {
        let now = nanos("2024-05-02T12:00:00Z");
        let state = AppState::first_run(now, 0);
        assert!(
            select_new(
                &state,
                at("2024-05-02T12:00:00Z", 72),
                [review("a", "2024-05-02T11:59:59Z")]
            )
            .is_empty()
        );
        assert_eq!(state.baseline_nanos, now);
    }

    #[test]
    fn late_reviews_inside_the_overlap_come_out_in_order_with_ties_by_id() {
        let mut state = AppState::first_run(nanos("2024-04-01T00:00:00Z"), 0);
        for (id, date) in [("5", "2024-05-02T10:00:00Z"), ("3", "2024-05-01T10:00:00Z")] {
            state.delivered(&review(id, date), &[], true);
            state.delivered.insert(id.into(), Delivered::All);
        }
        assert_eq!(
            state.watermark.as_ref().unwrap().key.id,
            "5",
            "a late delivery keeps the mark"
        );
        let picked = select_new(
            &state,
            at("2024-05-02T12:00:00Z", 72),
            [
                review("9", "2024-05-02T11:00:00Z"),
                review("6", "2024-05-02T10:00:00Z"),
                review("4", "2024-05-02T10:00:00Z"),
                review("5", "2024-05-02T10:00:00Z"),
                review("3", "2024-05-01T10:00:00Z"),
                review("late", "2024-04-30T03:00:00-07:00"),
                review("too-late", "2024-04-29T09:59:59Z"),
                review("9", "2024-05-02T11:00:00Z"),
            ],
        );
        assert_eq!(ids(&picked), ["late", "4", "6", "9"]);
    }

    #[test]
    fn the_records_floor_applies_only_once_the_retention_has_passed_since_the_first_run() {
        let created = nanos("2024-05-01T00:00:00Z");
        let state = AppState::first_run(created, 718);
        let old = review("old", "2024-04-01T02:00:00Z");
        // 29 days on, every record its runs wrote is there: a 718-hour backfill read over many
        // runs still takes its oldest review.
        let lookback = at("2024-05-30T00:00:00Z", 72);
        assert!(state.is_new(&old, lookback));
        assert!(!state.out_of_reach(&old, lookback));
        // 30 days on, less the hour's margin, the floor applies again.
        let lookback = at("2024-05-30T23:00:00Z", 72);
        assert_eq!(state.floor(lookback), lookback.floor_nanos());
        assert!(!state.is_new(&old, lookback));
        // A state from before `created_ns` was kept: the floor always applies.
        let older = AppState {
            created_nanos: None,
            ..state
        };
        assert!(!older.is_new(&old, at("2024-05-02T00:00:00Z", 72)));
    }

    #[test]
    fn the_overlap_also_reaches_back_from_when_reading_began_to_span_runs() {
        let mut state = AppState::first_run(nanos("2024-05-01T00:00:00Z"), 72);
        state.delivered(&review("w", "2024-05-03T00:00:00Z"), &[], true);
        let lookback = at("2024-05-03T01:00:00Z", 24);
        assert_eq!(state.window_start(lookback), nanos("2024-05-02T00:00:00Z"));
        state.progress.rescan_from = Some(nanos("2024-05-02T12:00:00Z"));
        assert_eq!(state.window_start(lookback), nanos("2024-05-01T12:00:00Z"));
    }

    #[test]
    fn the_window_never_reaches_before_the_baseline() {
        let mut state = AppState::first_run(nanos("2024-05-02T00:00:00Z"), 0);
        state.delivered(&review("1", "2024-05-02T10:00:00Z"), &[], true);
        state.delivered.insert("1".into(), Delivered::All);
        let now = "2024-05-02T12:00:00Z";
        assert_eq!(
            state.window_start(at(now, 72)),
            nanos("2024-05-02T00:00:00Z")
        );
        assert_eq!(
            state.window_start(at(now, 1)),
            nanos("2024-05-02T09:00:00Z")
        );
        assert_eq!(
            AppState::first_run(10 * NANOS_PER_HOUR, 24).baseline_nanos,
            0
        );
    }

    #[test]
    fn nothing_older_than_the_records_reach_is_new_whatever_the_watermark_or_a_replay_say() {
        // A quiet app: its last review 31 days before `now`, its records (30 days) gone.
        let mut state = AppState::first_run(nanos("2024-04-01T00:00:00Z"), 0);
        state.delivered(&review("last", "2024-05-01T10:00:00Z"), &[], true);
        state.delivered.clear();
        let now = "2024-06-01T12:00:00Z";
        let fetched = || {
            vec![
                review("last", "2024-05-01T10:00:00Z"),
                review("before", "2024-04-30T10:00:00Z"),
            ]
        };
        assert!(select_new(&state, at(now, 72), fetched()).is_empty());
        state.replay_from_nanos = Some(nanos("2024-04-01T00:00:00Z"));
        assert!(select_new(&state, at(now, 72), fetched()).is_empty());
        // 719 hours back is still covered; a review then is new.
        let edge = review("edge", "2024-05-02T13:00:00Z");
        assert!(state.is_new(&edge, at(now, 72)));
        assert!(!state.out_of_reach(&edge, at(now, 72)));
        let lost = review("lost", "2024-05-02T11:00:00Z");
        assert!(!state.is_new(&lost, at(now, 72)));
        assert!(state.out_of_reach(&lost, at(now, 72)));
    }

    #[test]
    fn the_edit_delivered_last_is_not_new_once_the_first_versions_record_is_gone() {
        let now = nanos("2024-05-02T12:00:00Z");
        let mut state = AppState::first_run(now, 24);
        let first = review("r", "2024-05-02T08:00:00Z");
        let mut edit = review("r", "2024-05-02T10:00:00Z");
        edit.body = Some("Fixed".into());
        let delivered = edit.clone().as_edit_of(first.rating);
        state.delivered(&first, &["d".into()], true);
        state.delivered(&delivered, &["d".into()], true);
        // The first version's record expired; the edit's is still there.
        state.delivered.remove("r");
        let lookback = at("2024-05-02T12:00:00Z", 72);
        let read_again = select_new(&state, lookback, vec![edit.clone()]);
        assert_eq!(
            read_again.len(),
            1,
            "listed, for destinations that may lack it"
        );
        assert_eq!(read_again[0].id, delivered.id, "under the edit's own id");
        assert!(state.delivered_to(&read_again[0].id, "d"), "which has it");
        // Edited again: a new version, shown with the rating delivered before.
        let mut again = edit;
        again.rating = Some(1);
        let fresh = select_new(&state, lookback, vec![again]);
        assert_eq!(fresh.len(), 1);
        assert_eq!(
            fresh[0].edit.as_ref().unwrap().previous_rating,
            first.rating
        );
    }
}
