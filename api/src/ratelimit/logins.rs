//! The throttle on password guessing. Logins that need an argon2
//! verification (cache misses) are limited per username, and per client
//! address before that. Unknown usernames are throttled exactly like known
//! ones, so a 429 says nothing about which users exist. Cached sessions
//! never come here, so a flood of wrong passwords cannot lock out a user
//! whose client is already logged in.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use moka::sync::Cache;

/// Attempts allowed per key: a burst, refilled over a minute.
fn per_minute(attempts: u32) -> Quota {
    let n = NonZeroU32::new(attempts.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

/// Per-username and per-address attempt limiters, bounded in number.
pub struct LoginThrottle {
    per_user: Quota,
    per_address: Quota,
    users: Cache<String, Arc<DefaultDirectRateLimiter>>,
    addresses: Cache<IpAddr, Arc<DefaultDirectRateLimiter>>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle").finish_non_exhaustive()
    }
}

impl LoginThrottle {
    pub fn new(user_attempts_per_minute: u32, address_attempts_per_minute: u32) -> Self {
        let idle = Duration::from_secs(600);
        Self {
            per_user: per_minute(user_attempts_per_minute),
            per_address: per_minute(address_attempts_per_minute),
            users: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(idle)
                .build(),
            addresses: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(idle)
                .build(),
        }
    }

    /// Takes one attempt for this address and username; `Err` carries how
    /// long to wait.
    pub fn attempt(&self, username: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        if let Some(address) = address {
            let limiter = self
                .addresses
                .get_with(address, || Arc::new(RateLimiter::direct(self.per_address)));
            limiter
                .check()
                .map_err(|not_until| not_until.wait_time_from(now))?;
        }
        // Keyed by the name as sent, known or not.
        let key: String = username.chars().take(128).collect();
        let limiter = self
            .users
            .get_with(key, || Arc::new(RateLimiter::direct(self.per_user)));
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(now))
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy,
/// the nearest address in `X-Forwarded-For` that is not itself trusted.
pub fn client_address(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let Some(forwarded) = forwarded else {
        return Some(peer);
    };
    let hops: Vec<IpAddr> = forwarded
        .split(',')
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(Some(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_throttled_after_its_burst_whoever_asks() {
        let throttle = LoginThrottle::new(3, 1000);
        for i in 0..3u8 {
            let address = IpAddr::from([10, 0, 0, i]);
            assert!(throttle.attempt("acme.app", Some(address)).is_ok());
        }
        let wait = throttle
            .attempt("acme.app", Some(IpAddr::from([10, 0, 0, 9])))
            .unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            throttle.attempt("acme.other", None).is_ok(),
            "other users are not affected"
        );
    }

    #[test]
    fn unknown_usernames_are_throttled_like_known_ones() {
        let throttle = LoginThrottle::new(2, 1000);
        for name in ["acme.ghost", "acme.app"] {
            assert!(throttle.attempt(name, None).is_ok());
            assert!(throttle.attempt(name, None).is_ok());
            assert!(throttle.attempt(name, None).is_err(), "{name}");
        }
    }

    #[test]
    fn one_address_is_throttled_across_usernames() {
        let throttle = LoginThrottle::new(1000, 2);
        let address = Some(IpAddr::from([192, 0, 2, 1]));
        assert!(throttle.attempt("a.one", address).is_ok());
        assert!(throttle.attempt("a.two", address).is_ok());
        assert!(throttle.attempt("a.three", address).is_err());
    }
}

#[cfg(test)]
mod address_tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let via_proxy = TestRequest::default()
            .peer_addr("10.1.2.3:4000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "198.51.100.7, 10.9.9.9"))
            .to_http_request();
        assert_eq!(
            client_address(&via_proxy, &trusted()),
            Some(IpAddr::from([198, 51, 100, 7]))
        );

        let direct = TestRequest::default()
            .peer_addr("203.0.113.5:4000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "198.51.100.7"))
            .to_http_request();
        assert_eq!(
            client_address(&direct, &trusted()),
            Some(IpAddr::from([203, 0, 113, 5]))
        );
    }
}
