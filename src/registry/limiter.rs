//! How many requests go to one registry at once: all that are asked for, until it answers
//! 429; then half as many, growing back by one after as many successes as the limit.

use std::sync::Mutex;

use tokio::sync::Notify;

/// An adaptive limit on requests in flight to one registry (additive increase,
/// multiplicative decrease).
pub(crate) struct Limiter {
    state: Mutex<State>,
    freed: Notify,
}

struct State {
    limit: usize,
    ceiling: usize,
    in_flight: usize,
    successes: usize,
}

/// A request in flight; dropping it frees its place.
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
}

impl Limiter {
    pub fn new(ceiling: usize) -> Self {
        Limiter {
            state: Mutex::new(State {
                limit: ceiling,
                ceiling,
                in_flight: 0,
                successes: 0,
            }),
            freed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("limiter lock")
    }

    /// Waits for a place under the current limit.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let notified = self.freed.notified();
            {
                let mut s = self.state();
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    return Permit { limiter: self };
                }
            }
            notified.await;
        }
    }

    /// The registry asked to slow down: halve the limit.
    pub fn too_many(&self) {
        let mut s = self.state();
        let halved = (s.limit / 2).max(1);
        if halved < s.limit {
            tracing::debug!("429: {halved} request(s) in flight at most, from {}", s.limit);
        }
        s.limit = halved;
        s.successes = 0;
    }

    /// A request went through: after as many as the limit, allow one more.
    pub fn succeeded(&self) {
        let mut s = self.state();
        s.successes += 1;
        if s.successes >= s.limit && s.limit < s.ceiling {
            s.limit += 1;
            s.successes = 0;
            drop(s);
            self.freed.notify_waiters();
        }
    }

    #[cfg(test)]
    fn limit(&self) -> usize {
        self.state().limit
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limiter.state().in_flight -= 1;
        self.limiter.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn halves_on_429_and_grows_back_by_one() {
        let l = Limiter::new(8);
        l.too_many();
        l.too_many();
        assert_eq!(l.limit(), 2);
        let (a, b) = (l.acquire().await, l.acquire().await);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), l.acquire())
                .await
                .is_err(),
            "a third waits"
        );
        drop(a);
        let _c = l.acquire().await;
        drop(b);
        for _ in 0..2 {
            l.succeeded();
        }
        assert_eq!(l.limit(), 3);
    }
}
