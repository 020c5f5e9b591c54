//! How far back a run may look for new reviews: no further than the delivery records reach.
//!
//! A delivered review's record expires `retention` after the run that delivered it started (and
//! counts as gone from then on, whenever DynamoDB's TTL actually removes it). That run started no
//! earlier than the review was created, less the run's own length (a review can be created while
//! a run reads). So a review created at or after `now − retention + COVERAGE_MARGIN_HOURS` has
//! its record, if it was ever delivered; an older one may have been delivered and forgotten, so it
//! is never treated as new, whatever the watermark, the overlap or a replay says.

const NANOS_PER_HOUR: i128 = 3_600 * 1_000_000_000;

/// Hours kept between the oldest review a run may treat as new and the oldest delivery record
/// that may still exist: a run's length (at most 15 minutes) and clock differences with the
/// store, with room to spare.
pub const COVERAGE_MARGIN_HOURS: u32 = 1;

/// The oldest instant (ns) at which a review can still be new at `now_nanos`: the delivery
/// records of anything created since are all still there.
pub fn coverage_floor(now_nanos: i128, retention_days: u32) -> i128 {
    let covered = i128::from(retention_days) * 24 - i128::from(COVERAGE_MARGIN_HOURS);
    now_nanos - covered.max(0) * NANOS_PER_HOUR
}

/// The most hours `OVERLAP_HOURS`, `BACKFILL_HOURS` or a replay may reach back with
/// `retention_days` of delivery records: anything from `retention_days × 24 −
/// COVERAGE_MARGIN_HOURS` on would reach reviews whose records may be gone.
pub fn max_reach_hours(retention_days: u32) -> u32 {
    (retention_days * 24).saturating_sub(COVERAGE_MARGIN_HOURS + 1)
}

/// What a run may look back over at `now_nanos`: the overlap before the watermark, never before
/// what the delivery records cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookback {
    pub overlap_hours: u32,
    pub retention_days: u32,
    /// The run's start (ns since the epoch), from the clock the run was given.
    pub now_nanos: i128,
}

impl Lookback {
    /// See [`coverage_floor`].
    pub fn floor_nanos(&self) -> i128 {
        coverage_floor(self.now_nanos, self.retention_days)
    }

    pub fn overlap_nanos(&self) -> i128 {
        i128::from(self.overlap_hours) * NANOS_PER_HOUR
    }

    /// Whether a delivery record that expires at `expires_at_secs` counts as gone (DynamoDB's TTL
    /// removes it some time after; until then it is there but no longer relied on).
    pub fn expired(&self, expires_at_secs: i64) -> bool {
        i128::from(expires_at_secs) * 1_000_000_000 <= self.now_nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_retention_less_the_margin() {
        let now = 1_000 * NANOS_PER_HOUR;
        assert_eq!(coverage_floor(now, 30), now - 719 * NANOS_PER_HOUR);
        assert_eq!(max_reach_hours(30), 718);
        assert_eq!(max_reach_hours(1), 22);
        // A review created exactly at the floor, delivered by a run that began up to the margin
        // earlier, still has its record at `now`.
        let created = coverage_floor(now, 30);
        let run_started = created - i128::from(COVERAGE_MARGIN_HOURS) * NANOS_PER_HOUR + 1;
        let expires = run_started + 30 * 24 * NANOS_PER_HOUR;
        assert!(expires > now);
    }

    #[test]
    fn a_record_counts_as_gone_from_its_expiry_on() {
        let lookback = Lookback {
            overlap_hours: 72,
            retention_days: 30,
            now_nanos: 1_000 * 1_000_000_000,
        };
        assert!(lookback.expired(1_000));
        assert!(lookback.expired(999));
        assert!(!lookback.expired(1_001));
        assert_eq!(
            lookback.floor_nanos(),
            coverage_floor(lookback.now_nanos, 30)
        );
    }
}
