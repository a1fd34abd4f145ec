//! Per-endpoint webhook rate limits: [`WebhookRateLimit`] keeps one GCRA state per
//! webhook token (`sluice serve --webhook-rate-limit`, requests per second with bursts
//! of as many), so a flood at one webhook URL is refused before it reaches the store.

use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// How often states that are back to fresh (full burst available again) are dropped.
/// A key stays at most about this plus one second after its last request, so the map
/// holds only the tokens seen in the last couple of seconds.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The limiter of the webhook ingress, shared by all requests; off when built with 0.
pub struct WebhookRateLimit {
    limiter: Option<Limiter>,
}

/// Keyed by a hash of the token rather than the token itself: the token comes from the
/// URL, so unknown (even arbitrarily long) tokens are counted too, and a fixed-size key
/// keeps what a flood of made-up tokens can occupy small. The hasher's seed is random
/// per process, so a caller cannot aim a token at another endpoint's bucket.
struct Limiter {
    per_second: NonZeroU32,
    states: RateLimiter<u64, DashMapStateStore<u64>, MonotonicClock, NoOpMiddleware<Instant>>,
    hasher: RandomState,
    started: Instant,
    /// Milliseconds after `started` of the last sweep.
    last_sweep_ms: AtomicU64,
}

/// A request over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// The configured limit, for the message.
    pub per_second: u32,
    /// How long until this endpoint accepts a request again.
    pub retry_after: Duration,
}

impl Limited {
    /// `retry_after` in whole seconds, rounded up and at least 1 (`Retry-After` has
    /// no fractions, and 0 would invite an immediate retry that is refused again).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after
            .as_nanos()
            .div_ceil(1_000_000_000)
            .clamp(1, u128::from(u64::MAX))
            .try_into()
            .unwrap_or(u64::MAX)
    }
}

impl WebhookRateLimit {
    /// `per_second` requests per second per endpoint, bursts of as many; 0 turns the
    /// limit off.
    pub fn new(per_second: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|per_second| Limiter {
            per_second,
            states: RateLimiter::dashmap_with_clock(Quota::per_second(per_second), MonotonicClock),
            hasher: RandomState::new(),
            started: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
        });
        WebhookRateLimit { limiter }
    }

    /// The limit, `None` when off.
    pub fn per_second(&self) -> Option<u32> {
        self.limiter
            .as_ref()
            .map(|limiter| limiter.per_second.get())
    }

    /// Counts one request to the webhook `token`, or refuses it. A refused request
    /// does not count against the endpoint.
    pub fn check(&self, token: &str) -> Result<(), Limited> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.sweep_if_due();
        let key = limiter.hasher.hash_one(token);
        limiter.states.check_key(&key).map_err(|not_until| Limited {
            per_second: limiter.per_second.get(),
            retry_after: not_until.wait_time_from(limiter.states.clock().now()),
        })
    }

    /// How many endpoints the limiter holds a state for (they are dropped once their
    /// burst is available again).
    pub fn tracked(&self) -> usize {
        self.limiter
            .as_ref()
            .map_or(0, |limiter| limiter.states.len())
    }

    /// Drops the states that are back to fresh now, whatever the time of the last
    /// sweep.
    pub fn sweep(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.sweep();
        }
    }
}

impl Limiter {
    /// Sweeps at most once per [`SWEEP_EVERY`], from whichever request comes first:
    /// cheaper than a task of its own, and an idle server has nothing to sweep.
    fn sweep_if_due(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let every = u64::try_from(SWEEP_EVERY.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(last) < every {
            return;
        }
        // One request sweeps; the others that saw the same due time go on unhindered.
        if self
            .last_sweep_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.sweep();
        }
    }

    fn sweep(&self) {
        let before = self.states.len();
        self.states.retain_recent();
        // After a flood of made-up tokens the map keeps its peak capacity; give most of
        // it back once the flood is over.
        if self.states.len() < before / 4 {
            self.states.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_limit_then_refusals_with_a_retry_time() {
        let limit = WebhookRateLimit::new(2);
        assert_eq!(limit.per_second(), Some(2));
        for _ in 0..2 {
            assert_eq!(limit.check("endpoint"), Ok(()));
        }
        let refused = limit.check("endpoint").expect_err("over the limit");
        assert_eq!(refused.per_second, 2);
        // One request comes back every 500 ms; rounded up to whole seconds.
        assert!(
            refused.retry_after <= Duration::from_millis(500),
            "{refused:?}"
        );
        assert_eq!(refused.retry_after_secs(), 1);
        // Refusals do not count: the next request is still refused, not pushed further.
        assert!(limit.check("endpoint").is_err());
    }

    #[test]
    fn endpoints_have_their_own_budget() {
        let limit = WebhookRateLimit::new(1);
        assert_eq!(limit.check("one"), Ok(()));
        assert!(limit.check("one").is_err());
        assert_eq!(limit.check("two"), Ok(()));
        assert_eq!(limit.tracked(), 2);
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limit = WebhookRateLimit::new(0);
        assert_eq!(limit.per_second(), None);
        for _ in 0..10_000 {
            assert_eq!(limit.check("endpoint"), Ok(()));
        }
        assert_eq!(limit.tracked(), 0);
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_a_second() {
        let at = |retry_after| {
            Limited {
                per_second: 1,
                retry_after,
            }
            .retry_after_secs()
        };
        assert_eq!(at(Duration::ZERO), 1);
        assert_eq!(at(Duration::from_millis(1)), 1);
        assert_eq!(at(Duration::from_secs(1)), 1);
        assert_eq!(at(Duration::from_millis(1001)), 2);
        assert_eq!(at(Duration::MAX), u64::MAX);
    }

    #[test]
    fn made_up_tokens_do_not_pile_up() {
        // 1000/s: a used state is fresh again 2 ms after its request.
        let limit = WebhookRateLimit::new(1000);
        for n in 0..10_000 {
            let _ = limit.check(&format!("made-up-{n}"));
        }
        assert!(limit.tracked() > 0);
        // Waits far longer than needed, so a slow machine does not matter.
        std::thread::sleep(Duration::from_millis(100));
        limit.sweep();
        assert_eq!(limit.tracked(), 0);
    }
}
