//! What is due to which destination, and where a destination seen for the first time starts.
//! Plain rules over values; the relay only orders the I/O.

use super::app_id::AppId;
use super::review::Review;
use super::route::Route;
use super::state::AppState;

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
