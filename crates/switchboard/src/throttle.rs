//! Attempt throttles for the account endpoints: a token bucket per key (an address, an email),
//! refilled at `per_minute / 60` per second up to `per_minute`, in a map of bounded size.
//!
//! The map is the part an attacker controls (every new address or email is a new key), so it is
//! capped at `max_keys`: a new key past the cap first sweeps out buckets that are full again
//! (they remember nothing), and if that is not enough, forgets the least recently used half.
//! At worst an attacker with very many addresses makes the throttle forget some keys early; it
//! can never make it grow.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::AccountsConfig;
use crate::token_bucket::{Rate, TokenBucket};

/// Attempts per key per minute, within a bounded map. A `per_minute` of 0 never refuses.
#[derive(Debug)]
pub struct Throttle<K> {
    rate: Rate,
    max_keys: usize,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(per_minute: u32, max_keys: usize) -> Self {
        Self {
            rate: Rate::new(f64::from(per_minute) / 60.0, f64::from(per_minute)),
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Spend one attempt for `key`; `Err(wait)` if none is left, with the time until one is.
    pub fn spend(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.rate.is_unlimited() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.make_room(&mut buckets, now);
        }
        buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::full(&self.rate, now))
            .take(&self.rate, now)
    }

    /// Give back an attempt spent by [`Throttle::spend`] that turned out not to count (a
    /// successful login, or one refused for lack of capacity).
    pub fn refund(&self, key: &K, now: Instant) {
        if let Some(bucket) = self.buckets.lock().get_mut(key) {
            bucket.give_back(&self.rate, now);
        }
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().len()
    }

    fn make_room(&self, buckets: &mut HashMap<K, TokenBucket>, now: Instant) {
        buckets.retain(|_, bucket| !bucket.is_full(&self.rate, now));
        if buckets.len() < self.max_keys {
            return;
        }
        // Still full of live buckets: forget the least recently used half. Amortised, this is
        // O(log n) per new key, because the next max_keys / 2 new keys fit without a sweep.
        let mut by_age: Vec<(Instant, K)> = buckets
            .iter()
            .map(|(key, bucket)| (bucket.updated(), key.clone()))
            .collect();
        let half = by_age.len() / 2;
        by_age.select_nth_unstable_by_key(half, |(updated, _)| *updated);
        for (_, key) in by_age.into_iter().take(half.max(1)) {
            buckets.remove(&key);
        }
    }
}

/// The account endpoints' throttles (policy in [`AccountsConfig`]).
#[derive(Debug)]
pub struct AccountThrottles {
    /// `POST /user/register` per address.
    pub registrations_per_address: Throttle<IpAddr>,
    /// `POST /user/login` per address, successful or not.
    pub logins_per_address: Throttle<IpAddr>,
    /// Failed `POST /user/login` per normalised email, whether or not the account exists (so
    /// the throttle tells nobody which accounts exist).
    pub failed_logins_per_email: Throttle<String>,
}

impl AccountThrottles {
    pub fn new(config: &AccountsConfig) -> Self {
        let keys = config.throttle_max_keys;
        Self {
            registrations_per_address: Throttle::new(
                config.registrations_per_address_per_min,
                keys,
            ),
            logins_per_address: Throttle::new(config.logins_per_address_per_min, keys),
            failed_logins_per_email: Throttle::new(config.failed_logins_per_email_per_min, keys),
        }
    }
}

/// The key for an address: IPv4 as is; IPv6 by its /64 prefix, the block one subscriber
/// usually holds, so rotating through one's own addresses does not reset the count.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_attempts_per_minute_then_waits() {
        let start = Instant::now();
        let throttle = Throttle::new(3, 100);
        for _ in 0..3 {
            assert!(throttle.spend(&"a", start).is_ok());
        }
        let wait = throttle.spend(&"a", start).unwrap_err();
        assert_eq!(wait.as_secs(), 20, "one attempt back every 60 / 3 seconds");
        assert!(throttle.spend(&"b", start).is_ok(), "keys are separate");
        assert!(throttle.spend(&"a", start + wait).is_ok());
        assert!(throttle.spend(&"a", start + wait).is_err());
    }

    #[test]
    fn a_refund_gives_an_attempt_back() {
        let start = Instant::now();
        let throttle = Throttle::new(1, 100);
        assert!(throttle.spend(&"a", start).is_ok());
        throttle.refund(&"a", start);
        assert!(throttle.spend(&"a", start).is_ok());
        assert!(throttle.spend(&"a", start).is_err());
    }

    #[test]
    fn zero_per_minute_never_refuses_and_tracks_nothing() {
        let start = Instant::now();
        let throttle = Throttle::new(0, 100);
        for n in 0..1000 {
            assert!(throttle.spend(&n, start).is_ok());
        }
        assert_eq!(throttle.tracked(), 0);
    }

    #[test]
    fn the_map_never_grows_past_max_keys() {
        let start = Instant::now();
        let throttle = Throttle::new(5, 64);
        for n in 0..10_000u32 {
            let now = start + Duration::from_millis(u64::from(n));
            assert!(throttle.spend(&n, now).is_ok());
            assert!(throttle.tracked() <= 64);
        }
    }

    #[test]
    fn refilled_buckets_are_swept_before_live_ones() {
        let start = Instant::now();
        let throttle = Throttle::new(60, 4);
        for n in 0..4u32 {
            assert!(throttle.spend(&n, start).is_ok());
        }
        // One second later every bucket is full again: all four go, none is evicted live.
        let later = start + Duration::from_secs(1);
        assert!(throttle.spend(&99, later).is_ok());
        assert_eq!(throttle.tracked(), 1);
    }

    #[test]
    fn ipv6_addresses_count_by_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
