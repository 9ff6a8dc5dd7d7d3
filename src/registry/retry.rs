//! Retries with exponential backoff and jitter for failures that may heal: connection errors,
//! 408, 429 (honouring `Retry-After`) and 5xx. Everything else fails at once.

use std::time::Duration;

use reqwest::StatusCode;

/// How often and how patiently failures that may heal are tried again. The defaults ride out
/// an outage of half a minute (every wait is at least half its nominal length, and those sum
/// to more than 30 s) and keep a single request under about two minutes of waiting.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (skopeo's `--retry-times` plus one).
    pub max_attempts: u32,
    /// Attempts at the first contact with a registry that cannot be connected to at all:
    /// a registry never reached in a run fails it quickly.
    pub first_contact_attempts: u32,
    /// First backoff (doubled per attempt).
    pub base_delay: Duration,
    /// Longest backoff.
    pub max_delay: Duration,
    /// A longer `Retry-After` is not waited for: the request fails, saying so.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            first_contact_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Whether a `Retry-After` asks for more than this policy waits: then the request fails.
    pub fn too_long(&self, retry_after: Option<Duration>) -> bool {
        retry_after.is_some_and(|d| d > self.max_retry_after)
    }

    /// Wait before attempt `attempt + 1` (0-based `attempt` just failed): half to all of
    /// `base * 2^attempt`, capped; or the server's `Retry-After`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            if d > Duration::from_secs(5) {
                tracing::warn!(
                    "the registry asks to wait {} s before trying again; waiting",
                    d.as_secs()
                );
            }
            return d.min(self.max_retry_after);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let half = exp / 2;
        // full jitter over the upper half keeps concurrent retries from moving in lockstep
        half + Duration::from_nanos(fastrand::u64(0..=half.as_nanos() as u64))
    }
}

/// 408, 429 and 5xx: statuses a later attempt may not get.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` as delta-seconds or as an HTTP-date (a date in the past means now).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    parse_retry_after(value, std::time::SystemTime::now())
}

fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = RetryPolicy::default();
        for attempt in 0..10 {
            let d = p.delay(attempt, None);
            let full = (p.base_delay * 2u32.pow(attempt)).min(p.max_delay);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert_eq!(p.delay(0, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.delay(0, Some(Duration::from_secs(3600))), p.max_retry_after);
    }

    #[test]
    fn the_defaults_ride_out_half_a_minute() {
        let p = RetryPolicy::default();
        let least: Duration = (0..p.max_attempts - 1)
            .map(|a| p.base_delay.saturating_mul(1 << a).min(p.max_delay) / 2)
            .sum();
        let most: Duration = (0..p.max_attempts - 1)
            .map(|a| p.base_delay.saturating_mul(1 << a).min(p.max_delay))
            .sum();
        assert!(least > Duration::from_secs(30), "{least:?}");
        assert!(most < Duration::from_secs(120), "{most:?}");
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 20:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 02 Dec 2026 20:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 02 Dec 2026 19:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn which_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 409] {
            assert!(!is_retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
