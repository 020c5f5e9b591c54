//! Bounded retries with exponential backoff and jitter, shared by App Store Connect and webhooks.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::config::RetryPolicy;

/// What one try came to.
pub enum Attempt<T, E> {
    Done(T),
    /// Certainly not taken (nothing reached the server, or it refused before acting on it): worth
    /// another try; `after` is the server's `Retry-After`, when it sent one.
    Retry {
        error: E,
        after: Option<Duration>,
    },
    /// May have been taken (a timeout after the request went out, 408, 5xx): worth another try
    /// only as far as the caller's [`AfterMaybeTaken`] allows, since that try can be a duplicate.
    RetryMaybeTaken(E),
    Fail(E),
}

/// How a failed try ended, as far as the receiver is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing reached the receiver or it refused the request: another try cannot duplicate it.
    NotTaken,
    /// The receiver may have acted on it before the failure: another try may show it twice.
    MaybeTaken,
}

/// How many tries may follow a try that may have been taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterMaybeTaken {
    /// As many as the policy allows: the receiver drops duplicates (by `Idempotency-Key`), or a
    /// duplicate is harmless (a read).
    UpToTheLimit,
    /// One, whatever it ends in: a receiver that cannot tell a duplicate shows a message at most
    /// twice in one run.
    OneMore,
}

/// Whether another try may follow `failures` (every try so far, in order; all failed) when the
/// policy allows `max_attempts` in all.
pub fn may_retry(after: AfterMaybeTaken, failures: &[Failure], max_attempts: u32) -> bool {
    let made = u32::try_from(failures.len()).unwrap_or(u32::MAX);
    if made >= max_attempts {
        return false;
    }
    match after {
        AfterMaybeTaken::UpToTheLimit => true,
        AfterMaybeTaken::OneMore => failures
            .iter()
            .position(|f| *f == Failure::MaybeTaken)
            .is_none_or(|first| first + 1 == failures.len()),
    }
}

impl RetryPolicy {
    /// The wait after try `attempt` (1-based): doubling from `first_delay` up to `max_delay`, then
    /// "equal jitter" (half fixed, half random) so that many clients do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .first_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(20));
        let delay = doubled.min(self.max_delay);
        let half = delay / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Runs `attempt(n)` for n = 1, 2, … until it is done, fails for good, the policy's tries are used
/// up, or the next wait would end past `give_up_at`; a wait is cut to the time left. A try that
/// may have been taken is retried as a certain failure is.
pub async fn with_retries<T, E, F, Fut>(
    policy: &RetryPolicy,
    give_up_at: Option<Instant>,
    attempt: F,
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    with_retries_bounded(policy, AfterMaybeTaken::UpToTheLimit, give_up_at, attempt).await
}

/// [`with_retries`], with the tries after one that may have been taken bounded by `after` (see
/// [`may_retry`]).
pub async fn with_retries_bounded<T, E, F, Fut>(
    policy: &RetryPolicy,
    after_maybe_taken: AfterMaybeTaken,
    give_up_at: Option<Instant>,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let mut failures = Vec::new();
    let mut n = 1;
    loop {
        let (error, after) = match attempt(n).await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(error) => return Err(error),
            Attempt::Retry { error, after } => {
                failures.push(Failure::NotTaken);
                (error, after)
            }
            Attempt::RetryMaybeTaken(error) => {
                failures.push(Failure::MaybeTaken);
                (error, None)
            }
        };
        if !may_retry(after_maybe_taken, &failures, policy.attempts) {
            return Err(error);
        }
        let mut wait = after.map_or_else(|| policy.backoff(n), |w| w.min(policy.retry_after_max));
        if let Some(limit) = give_up_at {
            let left = limit.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(error);
            }
            wait = wait.min(left);
        }
        tokio::time::sleep(wait).await;
        n += 1;
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare on webhooks and treated as absent).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        attempts: 5,
        first_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(8),
        retry_after_max: Duration::from_secs(60),
        request_timeout: Duration::from_secs(10),
    };

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        for (attempt, full) in [
            (1, 500),
            (2, 1_000),
            (3, 2_000),
            (4, 4_000),
            (5, 8_000),
            (9, 8_000),
        ] {
            for _ in 0..50 {
                let wait = POLICY.backoff(attempt).as_millis();
                assert!(wait >= full / 2 && wait <= full, "try {attempt}: {wait} ms");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stops_after_the_last_attempt_and_reports_its_error() {
        let mut seen = Vec::new();
        let result: Result<(), u32> = with_retries(&POLICY, None, |n| {
            seen.push(n);
            async move {
                Attempt::Retry {
                    error: n,
                    after: None,
                }
            }
        })
        .await;
        assert_eq!(result, Err(5));
        assert_eq!(seen, [1, 2, 3, 4, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_error_is_not_retried() {
        let mut tries = 0;
        let result: Result<(), &str> = with_retries(&POLICY, None, |_| {
            tries += 1;
            async { Attempt::Fail("400") }
        })
        .await;
        assert_eq!((result, tries), (Err("400"), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_obeyed_but_capped() {
        let started = tokio::time::Instant::now();
        let result: Result<u32, ()> = with_retries(&POLICY, None, |n| async move {
            if n == 1 {
                Attempt::Retry {
                    error: (),
                    after: Some(Duration::from_secs(3_600)),
                }
            } else {
                Attempt::Done(n)
            }
        })
        .await;
        assert_eq!(result, Ok(2));
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    use AfterMaybeTaken::{OneMore, UpToTheLimit};
    use Failure::{MaybeTaken as Maybe, NotTaken as Not};

    #[test]
    fn no_try_follows_the_last_one_the_policy_allows() {
        for after in [UpToTheLimit, OneMore] {
            assert!(may_retry(after, &[Not], 2));
            assert!(!may_retry(after, &[Not, Not], 2));
            assert!(!may_retry(after, &[Not], 1));
            assert!(!may_retry(after, &[Maybe], 1));
            assert!(!may_retry(after, &[Not, Not, Not, Maybe], 4));
        }
    }

    #[test]
    fn failures_certainly_not_taken_are_retried_up_to_the_limit() {
        for after in [UpToTheLimit, OneMore] {
            assert!(may_retry(after, &[Not, Not, Not], 4));
        }
    }

    #[test]
    fn after_a_try_that_may_have_been_taken_one_more_try_at_most() {
        assert!(may_retry(OneMore, &[Maybe], 4));
        assert!(may_retry(OneMore, &[Not, Not, Maybe], 4));
        // The one more try was made, whatever it ended in.
        assert!(!may_retry(OneMore, &[Maybe, Maybe], 4));
        assert!(!may_retry(OneMore, &[Maybe, Not], 4));
        assert!(!may_retry(OneMore, &[Not, Maybe, Not], 5));
    }

    #[test]
    fn a_receiver_that_drops_duplicates_gets_every_try_the_policy_allows() {
        assert!(may_retry(UpToTheLimit, &[Maybe, Maybe, Maybe], 4));
        assert!(may_retry(UpToTheLimit, &[Maybe, Not, Maybe, Not], 5));
    }

    #[tokio::test(start_paused = true)]
    async fn tries_after_one_that_may_have_been_taken_follow_the_bound() {
        let policy = RetryPolicy {
            attempts: 4,
            ..POLICY
        };
        // 429, 429, 503, 429 … with 5 tries allowed: two certain failures, then one more try
        // after the 503, and no fifth.
        let script = |n: u32| -> Attempt<(), u32> {
            if n == 3 {
                Attempt::RetryMaybeTaken(n)
            } else {
                Attempt::Retry {
                    error: n,
                    after: None,
                }
            }
        };
        let mut bounded = Vec::new();
        let result = with_retries_bounded(&POLICY, OneMore, None, |n| {
            bounded.push(n);
            async move { script(n) }
        })
        .await;
        assert_eq!((result, bounded), (Err(4), vec![1, 2, 3, 4]));

        let mut seen = Vec::new();
        let result: Result<(), u32> = with_retries_bounded(&policy, OneMore, None, |n| {
            seen.push(n);
            async move { Attempt::RetryMaybeTaken(n) }
        })
        .await;
        assert_eq!((result, seen), (Err(2), vec![1, 2]));

        let mut seen = Vec::new();
        let result: Result<(), u32> = with_retries(&policy, None, |n| {
            seen.push(n);
            async move { Attempt::RetryMaybeTaken(n) }
        })
        .await;
        assert_eq!((result, seen), (Err(4), vec![1, 2, 3, 4]));

        let result = with_retries_bounded(&policy, OneMore, None, |n| async move {
            if n == 1 {
                Attempt::RetryMaybeTaken(())
            } else {
                Attempt::Done(n)
            }
        })
        .await;
        assert_eq!(result, Ok(2));
    }

    #[test]
    fn parses_retry_after_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
