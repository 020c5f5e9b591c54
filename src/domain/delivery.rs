//! What is due to which destination, where a destination seen for the first time starts, how
//! far the watermark may move and when it stops waiting for a failing destination. Plain rules
//! over values; the relay only orders the I/O.

use super::app_id::AppId;
use super::progress::given_up;
use super::review::Review;
use super::route::Route;
use super::state::AppState;

/// A destination as the delivery rules see it: the key of its delivery records and the
/// reviews it takes.
pub trait Addressee {
    fn key(&self) -> &str;
    fn route(&self) -> &Route;
}

/// The destinations of `destinations` that still want `review`, in their order.
pub fn due_to<'d, D: Addressee>(
    state: &AppState,
    app: &AppId,
    destinations: &'d [D],
    review: &Review,
) -> Vec<&'d D> {
    destinations
        .iter()
        .filter(|d| is_due(state, app, d.key(), d.route(), review))
        .collect()
}

/// Each destination's reviews of `fresh` (oldest first) that it still wants, in order;
/// destinations that want none are left out.
pub fn queues<'d, 'r, D: Addressee>(
    state: &AppState,
    app: &AppId,
    destinations: &'d [D],
    fresh: &'r [Review],
) -> Vec<(&'d D, Vec<&'r Review>)> {
    destinations
        .iter()
        .map(|d| {
            let due = fresh
                .iter()
                .filter(|r| is_due(state, app, d.key(), d.route(), r))
                .collect::<Vec<_>>();
            (d, due)
        })
        .filter(|(_, due)| !due.is_empty())
        .collect()
}

/// Whether a run that read `fresh` to the end has anything to write: a destination to note,
/// a review to deliver, the watermark to move, or where reading stands across runs.
pub fn has_work<D: Addressee>(
    state: &AppState,
    app: &AppId,
    destinations: &[D],
    fresh: &[Review],
) -> bool {
    state.progress.after(0, Vec::new(), false) != state.progress
        || destinations
            .iter()
            .any(|d| !state.destinations_since.contains_key(d.key()))
        || fresh
            .iter()
            .any(|r| !due_to(state, app, destinations, r).is_empty())
        || fresh.last().is_some_and(|r| state.advances(r))
}

/// Where the watermark may move after a run's deliveries, and whom it stops waiting for.
#[derive(Debug)]
pub struct WatermarkMove<'r, 'd, D> {
    /// The newest review of a run in order that every destination has or no longer waits for,
    /// when it is past the watermark.
    pub to: Option<&'r Review>,
    /// Reviews the watermark passes though a destination still wants them: it has been failing
    /// for longer than the watermark can wait (see [`given_up`]).
    pub left_behind: Vec<(&'r Review, Vec<&'d D>)>,
}

/// How far the watermark may move over `fresh` (oldest first), given the state after the
/// run's deliveries. It moves past the reviews that every destination has or does not want. It
/// does not wait for a destination that failed again in this run (`failed_now` of its key)
/// after failing for `give_up_hours`: the window before a held watermark would then reach past
/// what the delivery records cover, so that destination gets such a review only if it recovers
/// while the review is in the overlap window. A destination the run did not try is waited for,
/// however long its failure.
pub fn watermark_move<'r, 'd, D: Addressee>(
    state: &AppState,
    app: &AppId,
    destinations: &'d [D],
    fresh: &'r [Review],
    failed_now: impl Fn(&str) -> bool,
    now_nanos: i128,
    give_up_hours: u32,
) -> WatermarkMove<'r, 'd, D> {
    let mut to = None;
    let mut left_behind = Vec::new();
    for review in fresh {
        let waiting = due_to(state, app, destinations, review);
        let abandoned = waiting.iter().all(|d| {
            given_up(
                state.failing_since.get(d.key()).copied(),
                failed_now(d.key()),
                now_nanos,
                give_up_hours,
            )
        });
        if !abandoned {
            break;
        }
        if !waiting.is_empty() {
            left_behind.push((review, waiting));
        }
        to = Some(review);
    }
    WatermarkMove {
        to: to.filter(|r| state.advances(r)),
        left_behind,
    }
}

/// Whether the destination keyed `key`, taking what `route` takes, still wants `review`: its
/// rules take it, it does not have it, and the review is not older than the destination (or a
/// replay reaches it).
pub fn is_due(state: &AppState, app: &AppId, key: &str, route: &Route, review: &Review) -> bool {
    let nanos = review.key().nanos;
    let since = state
        .destinations_since
        .get(key)
        .copied()
        .unwrap_or(state.baseline_nanos);
    // A destination added later starts at the newest review delivered before it: of that
    // instant, it gets only the reviews nobody had yet.
    let after = nanos > since
        || (nanos == since
            && (since == state.baseline_nanos || !state.delivered.contains_key(&review.id)));
    let replayed = state.replay_from_nanos.is_some_and(|from| nanos >= from);
    (after || replayed) && route.matches(app, review) && !state.delivered_to(&review.id, key)
}

/// Where a destination seen for the first time starts (ns since the epoch). On an app's first
/// run, or when no destination was noted before (state from before destinations were told
/// apart), at the baseline; otherwise at the newest review delivered anywhere so far (`fresh`
/// holds those still in the window), so it is not flooded with the overlap window and still
/// gets every review after, those of that same instant not yet delivered included.
pub fn new_destination_start(state: &AppState, fresh: &[Review]) -> i128 {
    let newest_recorded = fresh
        .iter()
        .filter(|r| state.delivered.contains_key(&r.id))
        .map(|r| r.key().nanos)
        .chain(state.watermark.as_ref().map(|mark| mark.key.nanos))
        .max();
    match newest_recorded {
        Some(nanos) if !state.destinations_since.is_empty() => nanos,
        _ => state.baseline_nanos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Delivered, Watermark, parse_instant};

    /// A destination for the rules: a key and a route.
    struct To(&'static str, Route);

    impl Addressee for To {
        fn key(&self) -> &str {
            self.0
        }
        fn route(&self) -> &Route {
            &self.1
        }
    }

    fn sent(state: &mut AppState, id: &str, keys: &[&str]) {
        let keys = keys.iter().map(|k| (*k).to_owned()).collect();
        state.delivered.insert(id.into(), Delivered::To(keys));
    }

    const HOUR: i128 = 3_600_000_000_000;

    #[test]
    fn each_destination_queues_what_its_route_takes_and_it_lacks_in_order() {
        let mut state = state();
        let fresh = [
            review("a", "2024-06-01T10:00:00Z", 1),
            review("b", "2024-06-01T11:00:00Z", 5),
            review("c", "2024-06-01T12:00:00Z", 2),
        ];
        let low = Route {
            ratings: vec![1, 2],
            ..Route::default()
        };
        let destinations = [
            To("all", Route::default()),
            To("low", low),
            To("none", Route::default()),
        ];
        sent(&mut state, "a", &["all", "low", "none"]);
        sent(&mut state, "b", &["none"]);
        sent(&mut state, "c", &["none"]);
        let queues = queues(&state, &app(), &destinations, &fresh);
        let ids: Vec<(&str, Vec<&str>)> = queues
            .iter()
            .map(|(d, due)| (d.key(), due.iter().map(|r| r.id.as_str()).collect()))
            .collect();
        assert_eq!(ids, [("all", vec!["b", "c"]), ("low", vec!["c"])]);
        assert!(has_work(&state, &app(), &destinations, &fresh));
    }

    #[test]
    fn nothing_to_write_once_every_destination_has_it_and_the_watermark_is_past() {
        let mut state = state();
        let fresh = [review("a", "2024-06-01T10:00:00Z", 1)];
        let destinations = [To("chat", Route::default())];
        state
            .destinations_since
            .insert("chat".into(), state.baseline_nanos);
        assert!(has_work(&state, &app(), &destinations, &fresh), "a is due");
        sent(&mut state, "a", &["chat"]);
        assert!(
            has_work(&state, &app(), &destinations, &fresh),
            "the watermark may move"
        );
        state.watermark = Some(Watermark::of(&fresh[0]));
        assert!(!has_work(&state, &app(), &destinations, &fresh));
        let newcomer = [To("chat", Route::default()), To("new", Route::default())];
        assert!(
            has_work(&state, &app(), &newcomer, &fresh),
            "a destination to note"
        );
    }

    #[test]
    fn the_watermark_stops_below_the_oldest_review_a_destination_still_waits_for() {
        let mut state = state();
        let fresh = [
            review("a", "2024-06-01T10:00:00Z", 1),
            review("b", "2024-06-01T11:00:00Z", 1),
            review("c", "2024-06-01T12:00:00Z", 1),
        ];
        let destinations = [To("chat", Route::default()), To("ops", Route::default())];
        sent(&mut state, "a", &["chat", "ops"]);
        sent(&mut state, "b", &["chat"]);
        sent(&mut state, "c", &["chat", "ops"]);
        let now = parse_instant("2024-06-02T00:00:00Z").unwrap();
        let moved = watermark_move(&state, &app(), &destinations, &fresh, |_| true, now, 48);
        assert_eq!(moved.to.map(|r| r.id.as_str()), Some("a"));
        assert!(moved.left_behind.is_empty());
        // Nothing moves a watermark already there.
        state.watermark = Some(Watermark::of(&fresh[0]));
        let moved = watermark_move(&state, &app(), &destinations, &fresh, |_| true, now, 48);
        assert_eq!(moved.to, None);
    }

    #[test]
    fn the_watermark_leaves_behind_a_destination_failing_too_long_only_if_it_failed_again_now() {
        let mut state = state();
        let fresh = [
            review("a", "2024-06-01T10:00:00Z", 1),
            review("b", "2024-06-01T11:00:00Z", 1),
        ];
        let destinations = [To("chat", Route::default()), To("ops", Route::default())];
        sent(&mut state, "a", &["chat"]);
        sent(&mut state, "b", &["chat"]);
        let now = parse_instant("2024-06-02T00:00:00Z").unwrap();
        let after_failing = |state: &mut AppState, hours: i128, failed_now: bool| {
            state.failing_since.insert("ops".into(), now - hours * HOUR);
            let moved = watermark_move(
                state,
                &app(),
                &destinations,
                &fresh,
                |k| failed_now && k == "ops",
                now,
                48,
            );
            let to = moved.to.map(|r| r.id.clone());
            let behind: Vec<(String, Vec<String>)> = moved
                .left_behind
                .iter()
                .map(|(r, ds)| {
                    (
                        r.id.clone(),
                        ds.iter().map(|d| d.key().to_owned()).collect(),
                    )
                })
                .collect();
            (to, behind)
        };
        // Not tried in this run: waited for, however long its failure.
        assert_eq!(after_failing(&mut state, 49, false), (None, vec![]));
        // Failed again now, after more than 48 hours: passed, and named.
        let ops = || vec!["ops".to_owned()];
        assert_eq!(
            after_failing(&mut state, 49, true),
            (
                Some("b".into()),
                vec![("a".into(), ops()), ("b".into(), ops())]
            )
        );
        // Failing for less than that: waited for.
        assert_eq!(after_failing(&mut state, 47, true), (None, vec![]));
    }

    fn review(id: &str, date: &str, rating: u8) -> Review {
        let mut review = crate::domain::review::sample(id, date);
        review.rating = Some(rating);
        review
    }

    fn app() -> AppId {
        AppId::parse("1").unwrap()
    }

    fn state() -> AppState {
        AppState::first_run(parse_instant("2024-06-02T00:00:00Z").unwrap(), 24)
    }

    #[test]
    fn due_once_to_each_destination_whose_rules_take_it() {
        let mut state = state();
        let low = Route::default();
        let r = review("a", "2024-06-01T12:00:00Z", 1);
        assert!(is_due(&state, &app(), "chat", &low, &r));
        state
            .delivered
            .insert("a".into(), Delivered::To(["chat".to_owned()].into()));
        assert!(!is_due(&state, &app(), "chat", &low, &r));
        assert!(is_due(&state, &app(), "other", &low, &r));
        let before_baseline = review("old", "2024-05-31T23:00:00Z", 1);
        assert!(!is_due(&state, &app(), "chat", &low, &before_baseline));
        state.replay_from_nanos = Some(parse_instant("2024-05-31T00:00:00Z").unwrap());
        assert!(is_due(&state, &app(), "chat", &low, &before_baseline));
    }

    #[test]
    fn a_destination_added_later_starts_at_the_newest_delivered_review() {
        let mut state = state();
        let first = review("a", "2024-06-01T12:00:00Z", 5);
        let same_instant = review("b", "2024-06-01T12:00:00Z", 5);
        assert_eq!(new_destination_start(&state, &[]), state.baseline_nanos);
        state
            .destinations_since
            .insert("chat".into(), state.baseline_nanos);
        state.delivered.insert("a".into(), Delivered::All);
        state.watermark = Some(Watermark::of(&first));
        let start = new_destination_start(&state, &[first.clone(), same_instant.clone()]);
        assert_eq!(start, first.key().nanos);
        state.destinations_since.insert("new".into(), start);
        let route = Route::default();
        assert!(
            !is_due(&state, &app(), "new", &route, &first),
            "had by the others"
        );
        assert!(
            is_due(&state, &app(), "new", &route, &same_instant),
            "nobody had it"
        );
    }
}
