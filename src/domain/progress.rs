//! When the watermark stops waiting for a failing destination, and when an app that makes no
//! progress is reported as failed. Plain rules over values; the relay only orders the I/O.

use super::review::ReviewKey;
use super::window::max_reach_hours;

const NANOS_PER_HOUR: i128 = 3_600 * 1_000_000_000;

/// Runs in a row without progress (see [`stalls_after`]) before the app is reported as failed
/// (so the alarm fires).
pub const MAX_STALLS: u32 = 3;

/// How long (hours) a destination may fail before the watermark moves on without it: as long as
/// the overlap before the held watermark stays inside what the delivery records cover. Past
/// that, nothing the failing destination misses could be delivered safely anyway (see
/// [`super::coverage_floor`]), and holding the watermark would only make every run read back to
/// the floor.
pub fn give_up_after_hours(retention_days: u32, overlap_hours: u32) -> u32 {
    max_reach_hours(retention_days)
        .saturating_sub(overlap_hours)
        .max(1)
}

/// Whether the watermark stops waiting for a destination: it has been failing since
/// `failing_since_nanos` for at least `give_up_hours`, and it failed again in this run. A
/// destination this run did not try (out of time, or nothing for it yet) is waited for, however
/// long its failure.
pub fn given_up(
    failing_since_nanos: Option<i128>,
    failed_this_run: bool,
    now_nanos: i128,
    give_up_hours: u32,
) -> bool {
    failed_this_run
        && failing_since_nanos
            .is_some_and(|since| now_nanos - since >= i128::from(give_up_hours) * NANOS_PER_HOUR)
}

/// A destination's failure record after a run: set when it first fails, kept while it goes on
/// failing, cleared by a delivery that succeeds. `None` (a destination not tried this run) keeps
/// what was there.
pub fn failing_since_after(
    before: Option<i128>,
    outcome: Option<Outcome>,
    now_nanos: i128,
) -> Option<i128> {
    match outcome {
        None => before,
        Some(Outcome::Delivered) => None,
        Some(Outcome::Failed) => Some(before.unwrap_or(now_nanos)),
    }
}

/// What happened to one destination in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At least one message went out (its last message may still have failed after).
    Delivered,
    /// Tried and failed, with nothing delivered.
    Failed,
}

/// Where reading stopped when one run had no time to reach the watermark (or the window
/// start): the next run goes on from `page` instead of from the newest review.
///
/// The next run reads that page again rather than the one after it: a store that pages by
/// offset (Apple's cursor) moves every older review a place up for each review deleted in
/// between, and the link to the next page would then skip them. The page read again must
/// still hold `reached` or something newer, which proves nothing was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The store's link to the page that held `reached`; `None` for the first page.
    pub page: Option<String>,
    /// The oldest review read so far.
    pub reached: ReviewKey,
}

/// The most stops kept; past it, the shallowest is dropped: once the stops below it are done
/// with, a read from the newest review covers its stretch again (and may stop anew).
pub const MAX_STOPS: usize = 100;

/// Where an app's reading stands across runs, and how many runs in a row made no progress.
///
/// When reading down to the watermark takes longer than a run may read, each run stops where
/// its time for reading ends and the next goes on from there (`stops`, newest first, the last
/// the deepest). The run that reaches the watermark delivers what it read, oldest first: every
/// review between its stop and the watermark is in hand, so per-app order holds. Its stop is
/// then dropped, and the next run reads from the stop above down to the watermark that moved,
/// and so on back up to the newest review.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub stops: Vec<Scan>,
    /// The furthest back reading got since the last delivery, while reading spans runs.
    pub deepest: Option<ReviewKey>,
    /// Runs in a row without progress.
    pub stalls: u32,
    /// A stop's oldest review, when the stretch read on from that stop went out whole: every
    /// review listed after it went out to every destination that wants it, so reading need not
    /// go past it again. Kept while the watermark is below it.
    pub handled: Option<ReviewKey>,
    /// When the first of the runs whose reading spans runs started (ns): reading on from stops
    /// leaves the overlap re-scan out, so until a read from the newest review has gone through
    /// it, the overlap reaches back from here too, and a review published late meanwhile (up to
    /// the overlap after it was created) is still found.
    pub rescan_from: Option<i128>,
    /// Runs in a row whose read from the newest review ran out of time before the end of that
    /// re-scan; after [`MAX_STALLS`] it is given up, so no run reads far back for ever.
    pub rescan_cuts: u32,
}

/// How a run's read went, for the re-scan reaching back from when reading began to span runs
/// (`Progress::rescan_from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RescanRead {
    /// From the newest review to the window start, and all it found went out (a destination that
    /// failed aside: it gets late reviews only while they are in the overlap window).
    Through,
    /// From the newest review, out of time past the watermark before the window start.
    Cut,
    /// Anything else: read on from a stop, short of budget, or cut short while delivering.
    Other,
}

impl Progress {
    /// Notes what `read` did to the re-scan, in a run starting at `now_nanos`, once the stops
    /// are settled: stops that appear start it from now; a read through it ends it; after
    /// [`MAX_STALLS`] cut reads in a row it is given up (returns true), so no run goes on
    /// reading far back for ever.
    pub fn rescan_after(&mut self, read: RescanRead, now_nanos: i128) -> bool {
        if !self.stops.is_empty() {
            self.rescan_from.get_or_insert(now_nanos);
            return false;
        }
        match read {
            RescanRead::Through => {
                self.rescan_from = None;
                self.rescan_cuts = 0;
                false
            }
            RescanRead::Cut if self.rescan_from.is_some() => {
                self.rescan_cuts += 1;
                let given_up = self.rescan_cuts >= MAX_STALLS;
                if given_up {
                    self.rescan_from = None;
                    self.rescan_cuts = 0;
                }
                given_up
            }
            _ => false,
        }
    }

    /// The stops after a run that read on from the deepest stop and stopped reading at `stop`
    /// for lack of time. A stop no deeper than the deepest (the listing moved down, as new
    /// reviews came in) takes its place: reading on from it goes down through the other's
    /// stretch.
    pub fn stopped(&self, stop: Scan) -> Vec<Scan> {
        let mut stops = self.stops.clone();
        if stops
            .last()
            .is_some_and(|deepest| stop.reached >= deepest.reached)
        {
            stops.pop();
        }
        if stops.len() >= MAX_STOPS {
            stops.remove(0);
        }
        stops.push(stop);
        stops
    }

    /// Where reading stands after a run that read without running out of time for reading:
    /// the stops and [`Progress::handled`]. A read from the newest review (`continued` false)
    /// leaves no stops: they are of no use any more, or could not be read on from. A read on from
    /// the deepest stop that is `unfinished` (cut short while delivering, or unable to record)
    /// keeps the stops, so the next run reads on from the same stop and per-app order holds;
    /// one that finished drops that stop, and when all it read `went_out_whole` (no review held
    /// back for the stretch above), that stretch need not be read below the stop again.
    pub fn settled(
        &self,
        continued: bool,
        unfinished: bool,
        went_out_whole: bool,
    ) -> (Vec<Scan>, Option<ReviewKey>) {
        if !continued {
            (Vec::new(), self.handled.clone())
        } else if unfinished {
            (self.stops.clone(), self.handled.clone())
        } else if went_out_whole {
            let handled = self.stops.last().map(|stop| stop.reached.clone());
            (self.unwound(), handled)
        } else {
            (self.unwound(), self.handled.clone())
        }
    }

    /// The stops after a run that read on from the deepest stop and delivered all it read
    /// there (or all that did not wait for a destination that failed).
    pub fn unwound(&self) -> Vec<Scan> {
        let mut stops = self.stops.clone();
        stops.pop();
        stops
    }

    /// After a run that delivered `delivered` reviews and left `stops`, ending short of time or
    /// not.
    ///
    /// Progress is a review delivered, or reading further back than it got since the last
    /// delivery. A run short of time without progress adds a stall. A run that read on from a
    /// stop without delivering anything (everything there had gone out, or waits for a failing
    /// destination) keeps the count and the depth: the runs after it may stop where the last
    /// ones did, forever, unless counted. Only a whole read from the newest review, which proves
    /// reading fits in a run, starts over.
    pub fn after(&self, delivered: usize, stops: Vec<Scan>, ran_short: bool) -> Progress {
        let reached = stops.last().map(|s| s.reached.clone());
        if delivered > 0 {
            return Progress {
                stops,
                deepest: reached,
                stalls: 0,
                handled: self.handled.clone(),
                rescan_from: self.rescan_from,
                rescan_cuts: self.rescan_cuts,
            };
        }
        let further = reached.as_ref().is_some_and(|reached| {
            self.deepest
                .as_ref()
                .is_none_or(|deepest| reached < deepest)
        });
        let deepest = match (&self.deepest, reached) {
            (Some(deepest), Some(reached)) => Some(deepest.clone().min(reached)),
            (deepest, reached) => deepest.clone().or(reached),
        };
        let stalls = if further {
            0
        } else if ran_short {
            self.stalls.saturating_add(1)
        } else if !self.stops.is_empty() {
            self.stalls
        } else {
            return Progress {
                handled: self.handled.clone(),
                rescan_from: self.rescan_from,
                rescan_cuts: self.rescan_cuts,
                ..Progress::default()
            };
        };
        Progress {
            stops,
            deepest,
            stalls,
            handled: self.handled.clone(),
            rescan_from: self.rescan_from,
            rescan_cuts: self.rescan_cuts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(nanos: i128) -> Scan {
        Scan {
            page: Some(format!("page-{nanos}")),
            reached: ReviewKey {
                nanos,
                id: format!("r{nanos}"),
            },
        }
    }

    #[test]
    fn a_stretch_read_on_from_a_stop_drops_it_only_once_it_went_out() {
        let before = Progress {
            stops: vec![stop(30), stop(20)],
            handled: Some(stop(40).reached),
            ..Progress::default()
        };
        // From the newest review: no stops left, what was handled stays.
        assert_eq!(
            before.settled(false, false, true),
            (Vec::new(), Some(stop(40).reached))
        );
        // Cut short while delivering: the same stop again next time.
        assert_eq!(
            before.settled(true, true, true),
            (before.stops.clone(), Some(stop(40).reached))
        );
        // Went out whole: the deepest stop is dropped and its stretch is handled down to it.
        assert_eq!(
            before.settled(true, false, true),
            (vec![stop(30)], Some(stop(20).reached))
        );
        // Went out but some waits (or was held back for the stretch above): dropped, not handled.
        assert_eq!(
            before.settled(true, false, false),
            (vec![stop(30)], Some(stop(40).reached))
        );
    }

    const H: i128 = NANOS_PER_HOUR;

    #[test]
    fn the_bound_keeps_the_overlap_inside_what_records_cover() {
        assert_eq!(give_up_after_hours(30, 72), 718 - 72);
        assert_eq!(give_up_after_hours(30, 718), 1);
        assert_eq!(give_up_after_hours(1, 72), 1);
    }

    #[test]
    fn only_a_destination_failing_past_the_bound_and_tried_again_is_given_up() {
        let now = 10_000 * H;
        assert!(given_up(Some(now - 646 * H), true, now, 646));
        assert!(!given_up(Some(now - 645 * H), true, now, 646));
        assert!(!given_up(Some(now - 900 * H), false, now, 646), "not tried");
        assert!(!given_up(None, true, now, 646), "healthy until this run");
    }

    #[test]
    fn failing_since_is_set_once_and_cleared_by_a_delivery() {
        let now = 50 * H;
        assert_eq!(
            failing_since_after(None, Some(Outcome::Failed), now),
            Some(now)
        );
        assert_eq!(
            failing_since_after(Some(3 * H), Some(Outcome::Failed), now),
            Some(3 * H)
        );
        assert_eq!(
            failing_since_after(Some(3 * H), Some(Outcome::Delivered), now),
            None
        );
        assert_eq!(failing_since_after(Some(3 * H), None, now), Some(3 * H));
        assert_eq!(failing_since_after(None, None, now), None);
    }

    fn key(nanos: i128) -> ReviewKey {
        ReviewKey {
            nanos,
            id: "r".into(),
        }
    }

    fn scan(nanos: i128) -> Scan {
        Scan {
            page: Some(format!("https://api.example/p?at={nanos}")),
            reached: key(nanos),
        }
    }

    fn at(reached: &[i128]) -> Progress {
        Progress {
            stops: reached.iter().map(|&n| scan(n)).collect(),
            deepest: reached.last().map(|&n| key(n)),
            stalls: 0,
            handled: None,
            rescan_from: None,
            rescan_cuts: 0,
        }
    }

    #[test]
    fn reading_on_further_back_or_delivering_is_progress() {
        let reading = Progress {
            stalls: 2,
            ..at(&[70, 50])
        };
        let further = reading.after(0, reading.stopped(scan(40)), true);
        assert_eq!((further.stalls, further.deepest), (0, Some(key(40))));
        assert_eq!(further.stops, at(&[70, 50, 40]).stops);
        let delivered = reading.after(3, reading.unwound(), false);
        assert_eq!(delivered, at(&[70]));
        let delivered_short = reading.after(3, reading.stops.clone(), true);
        assert_eq!(delivered_short.stalls, 0);
        assert_eq!(delivered_short.stops, reading.stops);
        assert_eq!(at(&[70]).after(1, Vec::new(), false), Progress::default());
    }

    #[test]
    fn a_run_short_of_time_that_gets_no_further_is_a_stall() {
        let reading = Progress {
            deepest: Some(key(40)),
            stalls: 1,
            ..at(&[70])
        };
        // Read on from 70 and stopped before the deepest point so far.
        let again = reading.after(0, reading.stopped(scan(60)), true);
        assert_eq!(again.stalls, 2);
        assert_eq!(again.deepest, Some(key(40)));
        assert_eq!(again.stops, at(&[70, 60]).stops);
        // Deliveries all cut short by the deadline.
        assert_eq!(reading.after(0, reading.stops.clone(), true).stalls, 2);
    }

    #[test]
    fn finishing_a_read_on_without_delivering_keeps_the_count_and_a_whole_read_clears_it() {
        let reading = Progress {
            stalls: 2,
            ..at(&[40])
        };
        let finished = reading.after(0, reading.unwound(), false);
        assert_eq!(
            finished,
            Progress {
                stops: Vec::new(),
                deepest: Some(key(40)),
                stalls: 2,
                handled: None,
                rescan_from: None,
                rescan_cuts: 0,
            }
        );
        assert_eq!(finished.after(0, Vec::new(), false), Progress::default());
    }

    #[test]
    fn the_first_stop_counts_as_reading_further() {
        let first = Progress::default().after(0, vec![scan(70)], true);
        assert_eq!((first.stalls, first.deepest), (0, Some(key(70))));
    }

    #[test]
    fn the_re_scan_starts_with_the_stops_and_ends_read_through_or_after_three_cuts() {
        let mut reading = at(&[70]);
        assert!(!reading.rescan_after(RescanRead::Other, 5));
        assert!(!reading.rescan_after(RescanRead::Through, 9));
        assert_eq!(
            reading.rescan_from,
            Some(5),
            "set once, kept while stops remain"
        );
        reading.stops.clear();
        let mut through = reading.clone();
        through.rescan_cuts = 2;
        assert!(!through.rescan_after(RescanRead::Through, 9));
        assert_eq!((through.rescan_from, through.rescan_cuts), (None, 0));
        let mut other = reading.clone();
        assert!(!other.rescan_after(RescanRead::Other, 9));
        assert_eq!(other, reading);
        for cut in 1..MAX_STALLS {
            assert!(!reading.rescan_after(RescanRead::Cut, 9));
            assert_eq!((reading.rescan_from, reading.rescan_cuts), (Some(5), cut));
        }
        assert!(reading.rescan_after(RescanRead::Cut, 9));
        assert_eq!((reading.rescan_from, reading.rescan_cuts), (None, 0));
        let mut none = Progress::default();
        assert!(!none.rescan_after(RescanRead::Cut, 9));
        assert_eq!(none, Progress::default());
    }

    #[test]
    fn a_stop_no_deeper_than_the_deepest_takes_its_place() {
        let reading = at(&[70, 50]);
        assert_eq!(reading.stopped(scan(55)), at(&[70, 55]).stops);
        assert_eq!(reading.stopped(scan(50)), at(&[70, 50]).stops);
        assert_eq!(reading.stopped(scan(49)), at(&[70, 50, 49]).stops);
    }

    #[test]
    fn stops_are_bounded_and_the_shallowest_is_dropped() {
        let many: Vec<i128> = (0..MAX_STOPS as i128).map(|i| 1_000 - i).collect();
        let full = at(&many);
        let stops = full.stopped(scan(1));
        assert_eq!(stops.len(), MAX_STOPS);
        assert_eq!(stops.last().unwrap().reached, key(1));
        assert_eq!(stops[0].reached, key(999));
        assert_eq!(
            stops[MAX_STOPS - 2].reached,
            full.stops[MAX_STOPS - 1].reached
        );
    }
}
