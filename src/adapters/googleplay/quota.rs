//! Google allows 200 GET requests an hour per app; this process counts its own, per app and UTC
//! clock hour, so optional reads stop while a quarter of the hour's budget is left.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::AppId;

/// GET requests per app per hour (SOURCE.md, *quota*).
pub const HOURLY_GETS: u32 = 200;
/// Optional reads stop once this many of the hour's GETs are used.
pub const OPTIONAL_UNTIL: u32 = HOURLY_GETS - HOURLY_GETS / 4;

/// This process's GETs per app in the current clock hour.
#[derive(Default)]
pub struct HourlyGets {
    /// App → (hour since the epoch, GETs sent in it).
    counts: Mutex<HashMap<AppId, (i64, u32)>>,
    /// App → GETs sent since the process started, for the relay's tally across runs.
    totals: Mutex<HashMap<AppId, u64>>,
}

impl HourlyGets {
    /// Counts one GET for `app` at `now_secs` (Unix seconds).
    pub fn count(&self, app: &AppId, now_secs: i64) {
        let hour = now_secs.div_euclid(3600);
        let mut counts = self.lock();
        let entry = counts.entry(app.clone()).or_insert((hour, 0));
        if entry.0 != hour {
            *entry = (hour, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        drop(counts);
        let mut totals = self
            .totals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *totals.entry(app.clone()).or_default() += 1;
    }

    /// GETs sent for `app` since the process started.
    pub fn total(&self, app: &AppId) -> u64 {
        self.totals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(app)
            .copied()
            .unwrap_or_default()
    }

    /// GETs sent for `app` in the hour of `now_secs`.
    pub fn used(&self, app: &AppId, now_secs: i64) -> u32 {
        let hour = now_secs.div_euclid(3600);
        self.lock()
            .get(app)
            .filter(|(counted_in, _)| *counted_in == hour)
            .map_or(0, |(_, used)| *used)
    }

    pub fn allows_optional(&self, app: &AppId, now_secs: i64) -> bool {
        self.used(app, now_secs) < OPTIONAL_UNTIL
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AppId, (i64, u32)>> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_reads_stop_at_150_of_the_hours_200_and_resume_next_hour() {
        let gets = HourlyGets::default();
        let app = AppId::play("com.example.tally").unwrap();
        let other = AppId::play("com.example.other").unwrap();
        let hour_start = 1_795_176_000;
        for _ in 0..149 {
            gets.count(&app, hour_start + 10);
        }
        assert!(gets.allows_optional(&app, hour_start + 3599));
        gets.count(&app, hour_start + 3599);
        assert_eq!(gets.used(&app, hour_start), 150);
        assert!(!gets.allows_optional(&app, hour_start + 3599));
        assert!(gets.allows_optional(&other, hour_start), "counted per app");
        assert!(gets.allows_optional(&app, hour_start + 3600), "a new hour");
        gets.count(&app, hour_start + 3600);
        assert_eq!(gets.used(&app, hour_start + 3600), 1);
        assert_eq!(gets.total(&app), 151, "the total goes on across hours");
        assert_eq!(gets.total(&other), 0);
    }
}
