use std::collections::HashSet;

use super::review::{Review, ReviewKey};

/// The last delivered review of an app: nothing at or before it is delivered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    pub key: ReviewKey,
    /// Apple's `createdDate` string of that review, kept for people reading the table.
    pub created_date: String,
}

impl Watermark {
    pub fn of(review: &Review) -> Self {
        Self {
            key: review.key().clone(),
            created_date: review.created_date.clone(),
        }
    }
}

/// What the table remembers about one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppState {
    /// Reviews created before this instant (ns since the epoch) are never delivered.
    pub baseline_nanos: i128,
    pub watermark: Option<Watermark>,
}

impl AppState {
    pub fn first_run(now_nanos: i128, backfill_hours: u32) -> Self {
        let backfill = i128::from(backfill_hours) * 3_600 * 1_000_000_000;
        Self {
            baseline_nanos: (now_nanos - backfill).max(0),
            watermark: None,
        }
    }

    pub fn is_new(&self, review: &Review) -> bool {
        review.key().nanos >= self.baseline_nanos
            && self
                .watermark
                .as_ref()
                .is_none_or(|mark| review.key() > &mark.key)
    }

    /// Pages come newest first. Once a page reaches reviews older than this instant, later pages
    /// can hold nothing new. Reviews at exactly this instant may still be new (ties on
    /// `createdDate` are split by id, and Apple may split them across pages), so keep reading those.
    pub fn oldest_possible_new(&self) -> i128 {
        self.watermark.as_ref().map_or(self.baseline_nanos, |mark| {
            mark.key.nanos.max(self.baseline_nanos)
        })
    }
}

/// The new reviews among `fetched`, once each, oldest first (ties by id).
pub fn select_new(state: &AppState, fetched: impl IntoIterator<Item = Review>) -> Vec<Review> {
    let mut fresh: Vec<Review> = fetched.into_iter().filter(|r| state.is_new(r)).collect();
    fresh.sort_by(Review::delivery_order);
    // A review can show up twice when the list shifts between two page reads.
    let mut seen = HashSet::new();
    fresh.retain(|r| seen.insert(r.id.clone()));
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i128 = 3_600 * 1_000_000_000;

    fn review(id: &str, date: &str) -> Review {
        Review::new(
            id.into(),
            Some(4),
            None,
            None,
            None,
            None,
            date.into(),
            None,
        )
        .unwrap()
    }

    fn nanos(date: &str) -> i128 {
        crate::domain::parse_instant(date).unwrap()
    }

    #[test]
    fn first_run_keeps_only_the_backfill_window() {
        let now = nanos("2024-05-02T12:00:00Z");
        let state = AppState::first_run(now, 24);
        let picked = select_new(
            &state,
            [
                review("old", "2024-05-01T11:59:59Z"),
                review("edge", "2024-05-01T12:00:00Z"),
                review("new", "2024-05-02T11:00:00Z"),
            ],
        );
        let ids: Vec<_> = picked.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["edge", "new"]);
    }

    #[test]
    fn zero_backfill_delivers_nothing_that_exists() {
        let now = nanos("2024-05-02T12:00:00Z");
        let state = AppState::first_run(now, 0);
        assert!(select_new(&state, [review("a", "2024-05-02T11:59:59Z")]).is_empty());
        assert_eq!(state.baseline_nanos, now);
    }

    #[test]
    fn after_the_watermark_only_and_in_order_with_ties_by_id() {
        let mark = review("5", "2024-05-02T10:00:00Z");
        let state = AppState {
            baseline_nanos: 0,
            watermark: Some(Watermark::of(&mark)),
        };
        let picked = select_new(
            &state,
            [
                review("9", "2024-05-02T11:00:00Z"),
                review("6", "2024-05-02T10:00:00Z"),
                review("4", "2024-05-02T10:00:00Z"),
                review("5", "2024-05-02T10:00:00Z"),
                review("7", "2024-05-02T03:00:00-07:00"),
                review("9", "2024-05-02T11:00:00Z"),
            ],
        );
        let ids: Vec<_> = picked.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["6", "7", "9"]);
    }

    #[test]
    fn paging_stops_below_the_watermark_instant_not_at_it() {
        let mark = review("5", "2024-05-02T10:00:00Z");
        let state = AppState {
            baseline_nanos: nanos("2024-05-01T00:00:00Z"),
            watermark: Some(Watermark::of(&mark)),
        };
        assert_eq!(state.oldest_possible_new(), mark.key().nanos);
        let before_baseline = AppState {
            baseline_nanos: nanos("2024-05-03T00:00:00Z"),
            ..state
        };
        assert_eq!(
            before_baseline.oldest_possible_new(),
            nanos("2024-05-03T00:00:00Z")
        );
        assert_eq!(AppState::first_run(10 * HOUR, 24).baseline_nanos, 0);
    }
}
