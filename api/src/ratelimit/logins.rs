//! The throttle on password guessing.
//!
//! It counts *failed* verifications, never attempts, per (username, client
//! network) and per client network, where a client network is an IPv4
//! address or an IPv6 /64 (what one host can cheaply change its address
//! within). A key that failed too often is refused for a while before any
//! database or argon2 work. Because only the network that fails is slowed,
//! nobody can aim the throttle at a user: a correct password from a network
//! with no failures is never refused because of other networks' guesses.
//! There is deliberately no per-username cap: any such cap, whoever trips
//! it, is a lockout button.
//!
//! Each network may also have only a few verifications queued or running at
//! once, so that one network's flood cannot fill the argon2 queue that every
//! other network's first logins wait in.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use moka::sync::Cache;

/// The network a client address belongs to, for throttling and caps: the
/// address itself for IPv4 (and IPv4-mapped IPv6), its /64 for IPv6.
pub fn client_network(address: IpAddr) -> IpNet {
    match address {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpNet::V4(Ipv4Net::from(v4)),
            None => IpNet::V6(Ipv6Net::new(v6, 64).map_or(Ipv6Net::from(v6), |n| n.trunc())),
        },
    }
}

/// Failures allowed per key: a burst, refilled over a minute.
fn per_minute(failures: u32) -> Quota {
    let n = NonZeroU32::new(failures.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

/// A GCRA bucket that reports what is left after each draw.
type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// The failures of one key: a GCRA bucket that each failure draws from, and
/// the moment until which the key is refused once the bucket ran dry.
struct Failures {
    bucket: Bucket,
    blocked_until: Mutex<Option<Instant>>,
    /// A check of this key is in progress. Once a key has failed, its
    /// checks go one at a time: otherwise every check admitted before the
    /// failures that block it land would be a free guess, and a network
    /// with `max_pending` requests in flight would guess that many times
    /// faster than the budget says.
    checking: AtomicBool,
}

impl Failures {
    fn new(quota: Quota) -> Self {
        Self {
            bucket: RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>(),
            blocked_until: Mutex::new(None),
            checking: AtomicBool::new(false),
        }
    }

    /// How long this key is still refused, if it is.
    fn blocked_for(&self, now: Instant) -> Option<Duration> {
        let until = (*self.blocked_until.lock().ok()?)?;
        (until > now).then(|| until - now)
    }

    /// Records one failure; once the burst is used up, the key is refused
    /// until the bucket allows another attempt.
    fn record(&self) {
        let wait = match self.bucket.check() {
            Ok(snapshot) if snapshot.remaining_burst_capacity() > 0 => return,
            Ok(snapshot) => snapshot.quota().replenish_interval(),
            Err(not_until) => not_until.wait_time_from(DefaultClock::default().now()),
        };
        if let Ok(mut blocked) = self.blocked_until.lock() {
            *blocked = Some(Instant::now() + wait);
        }
    }
}

/// Failure counters per (username, network) and per network, and the
/// verifications in progress per network, all bounded in number.
pub struct LoginThrottle {
    per_user: Quota,
    per_network: Quota,
    max_pending: usize,
    pairs: Cache<(String, IpNet), Arc<Failures>>,
    networks: Cache<IpNet, Arc<Failures>>,
    pending: Cache<IpNet, Arc<AtomicUsize>>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle").finish_non_exhaustive()
    }
}

/// A verification admitted for a network; dropping it frees the network's
/// slot.
pub struct LoginPermit {
    pending: Arc<AtomicUsize>,
    /// The (username, network) key whose one check this is, if it failed
    /// before.
    pair: Option<Arc<Failures>>,
}

impl std::fmt::Debug for LoginPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginPermit").finish_non_exhaustive()
    }
}

impl Drop for LoginPermit {
    fn drop(&mut self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
        if let Some(pair) = &self.pair {
            pair.checking.store(false, Ordering::Release);
        }
    }
}

/// How long a refused login should wait before it tries again.
const PENDING_RETRY: Duration = Duration::from_secs(1);

/// Stand-in network for requests whose peer address is unknown.
const UNKNOWN_NETWORK: IpNet = IpNet::V4(Ipv4Net::new_assert(std::net::Ipv4Addr::UNSPECIFIED, 32));

impl LoginThrottle {
    /// `user_failures_per_minute` per (username, network),
    /// `network_failures_per_minute` per network, and at most
    /// `max_pending_per_network` verifications queued or running per network.
    pub fn new(
        user_failures_per_minute: u32,
        network_failures_per_minute: u32,
        max_pending_per_network: usize,
    ) -> Self {
        let idle = Duration::from_secs(600);
        Self {
            per_user: per_minute(user_failures_per_minute),
            per_network: per_minute(network_failures_per_minute),
            max_pending: max_pending_per_network.max(1),
            pairs: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(idle)
                .build(),
            networks: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(idle)
                .build(),
            pending: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(idle)
                .build(),
        }
    }

    fn pair_key(username: &str, network: IpNet) -> (String, IpNet) {
        // Keyed by the name as sent, known or not.
        (username.chars().take(128).collect(), network)
    }

    /// Admits one login that needs a password check, before any database
    /// or argon2 work; `Err` carries how long to wait. Hold the permit until
    /// the check is over.
    pub fn admit(&self, username: &str, address: Option<IpAddr>) -> Result<LoginPermit, Duration> {
        let network = address.map_or(UNKNOWN_NETWORK, client_network);
        let now = Instant::now();
        let pair = self.pairs.get(&Self::pair_key(username, network));
        let blocked = [self.networks.get(&network), pair.clone()]
            .into_iter()
            .flatten()
            .filter_map(|failures| failures.blocked_for(now))
            .max();
        if let Some(wait) = blocked {
            return Err(wait);
        }
        if let Some(pair) = &pair {
            if pair.checking.swap(true, Ordering::AcqRel) {
                return Err(PENDING_RETRY);
            }
        }
        let pending = self
            .pending
            .get_with(network, || Arc::new(AtomicUsize::new(0)));
        let permit = LoginPermit { pending, pair };
        if permit.pending.fetch_add(1, Ordering::AcqRel) >= self.max_pending {
            // Dropping the permit gives back both.
            return Err(PENDING_RETRY);
        }
        Ok(permit)
    }

    /// Records a failed verification for this username from this address.
    pub fn fail(&self, username: &str, address: Option<IpAddr>) {
        let network = address.map_or(UNKNOWN_NETWORK, client_network);
        self.networks
            .get_with(network, || Arc::new(Failures::new(self.per_network)))
            .record();
        self.pairs
            .get_with(Self::pair_key(username, network), || {
                Arc::new(Failures::new(self.per_user))
            })
            .record();
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

    fn v4(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn only_the_failing_network_is_refused_for_a_username() {
        let throttle = LoginThrottle::new(3, 1000, 100);
        for _ in 0..3 {
            drop(throttle.admit("acme.app", v4(2)).unwrap());
            throttle.fail("acme.app", v4(2));
        }
        let wait = throttle.admit("acme.app", v4(2)).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            throttle.admit("acme.app", v4(1)).is_ok(),
            "another network is not affected"
        );
        assert!(
            throttle.admit("acme.other", v4(2)).is_ok(),
            "another user from the same network is not affected"
        );
    }

    #[test]
    fn successful_logins_never_count() {
        let throttle = LoginThrottle::new(1, 1, 100);
        for _ in 0..100 {
            drop(throttle.admit("acme.app", v4(1)).unwrap());
        }
    }

    #[test]
    fn unknown_usernames_are_throttled_like_known_ones() {
        let throttle = LoginThrottle::new(2, 1000, 100);
        for name in ["acme.ghost", "acme.app"] {
            for _ in 0..2 {
                drop(throttle.admit(name, None).unwrap());
                throttle.fail(name, None);
            }
            assert!(throttle.admit(name, None).is_err(), "{name}");
        }
    }

    #[test]
    fn one_network_is_throttled_across_usernames() {
        let throttle = LoginThrottle::new(1000, 2, 100);
        throttle.fail("a.one", v4(1));
        throttle.fail("a.two", v4(1));
        assert!(throttle.admit("a.three", v4(1)).is_err());
        assert!(throttle.admit("a.three", v4(2)).is_ok());
    }

    #[test]
    fn an_ipv6_network_is_its_64() {
        let throttle = LoginThrottle::new(1000, 1, 100);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::7".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        throttle.fail("a.one", Some(a));
        assert!(throttle.admit("a.two", Some(b)).is_err(), "same /64");
        assert!(throttle.admit("a.two", Some(c)).is_ok(), "another /64");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            client_network(mapped),
            client_network(IpAddr::from([192, 0, 2, 1]))
        );
    }

    #[test]
    fn a_network_has_a_bounded_number_of_checks_in_progress() {
        let throttle = LoginThrottle::new(1000, 1000, 2);
        let first = throttle.admit("a.one", v4(1)).unwrap();
        let _second = throttle.admit("a.two", v4(1)).unwrap();
        assert!(throttle.admit("a.three", v4(1)).is_err());
        assert!(
            throttle.admit("a.three", v4(2)).is_ok(),
            "other networks unaffected"
        );
        drop(first);
        assert!(throttle.admit("a.three", v4(1)).is_ok());
    }

    #[test]
    fn once_a_username_failed_from_a_network_its_checks_there_go_one_at_a_time() {
        let throttle = LoginThrottle::new(10, 1000, 8);
        // Before any failure, checks run side by side (a client's burst).
        let first = throttle.admit("acme.app", v4(1)).unwrap();
        let second = throttle.admit("acme.app", v4(1)).unwrap();
        drop((first, second));
        throttle.fail("acme.app", v4(1));
        let checking = throttle.admit("acme.app", v4(1)).unwrap();
        assert!(
            throttle.admit("acme.app", v4(1)).is_err(),
            "a second guess in flight"
        );
        assert!(
            throttle.admit("acme.app", v4(2)).is_ok(),
            "another network is not affected"
        );
        assert!(throttle.admit("acme.other", v4(1)).is_ok());
        drop(checking);
        assert!(throttle.admit("acme.app", v4(1)).is_ok());
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
