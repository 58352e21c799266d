//! The wall clock the statistics read. Rates, namespace colours and the activity log's expiry
//! all depend on "now"; a test that waited real minutes to see a namespace turn yellow would be
//! slow and flaky, so the app reads time through [`Clock`], which a test can replace with a
//! [`ManualClock`] it moves by hand.
//!
//! Only statistics use it. Liveness (heartbeats, rate limits) keeps the hub's monotonic clock:
//! moving the statistics clock an hour ahead must not time out every connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the statistics get the time: the system clock, or a clock a test sets.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// Real time (production).
    #[default]
    System,
    /// Time that moves only when told to (tests).
    Manual(ManualClock),
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            Clock::Manual(clock) => clock.now_ms(),
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(clock: ManualClock) -> Self {
        Clock::Manual(clock)
    }
}

/// A clock that stands still until [`ManualClock::advance`] or [`ManualClock::set_ms`] moves it.
/// Clones share the same time, so a test keeps one and hands another to the app.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now_ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock showing `unix_ms` milliseconds since the Unix epoch.
    pub fn new(unix_ms: u64) -> Self {
        Self {
            now_ms: Arc::new(AtomicU64::new(unix_ms)),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    pub fn set_ms(&self, unix_ms: u64) {
        self.now_ms.store(unix_ms, Ordering::Relaxed);
    }

    pub fn advance(&self, by: Duration) {
        self.now_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }
}

/// `unix_ms` as an ISO 8601 UTC timestamp with milliseconds (`2024-05-01T12:00:00.000Z`).
pub fn iso8601(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        unix_ms % 1000
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), so timestamps need no date library.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_714_564_800_000), "2024-05-01T12:00:00.000Z");
        assert_eq!(iso8601(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let manual = ManualClock::new(1_000);
        let clock = Clock::from(manual.clone());
        assert_eq!(clock.now_ms(), 1_000);
        manual.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3_000);
        manual.set_ms(10);
        assert_eq!(clock.now_ms(), 10);
    }
}
