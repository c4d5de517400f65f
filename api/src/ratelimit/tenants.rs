//! One pair of GCRA limiters (requests, bytes) per tenant, holding this
//! node's share of the tenant's quota. governor's keyed limiter would give
//! every tenant the same quota, so this is a map from tenant to its own
//! limiters, with idle tenants evicted so memory stays bounded.
//!
//! Shares: with N live nodes, each node admits `rate / N` per second (a
//! fractional rate is kept exactly, as a period) and a burst of
//! `floor(burst / N)`, but never less than 1 (one request, or one largest
//! message), so a tiny quota split over many nodes can admit slightly more
//! than its burst at once cluster-wide.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota as Gcra, RateLimiter};
use moka::sync::Cache;
use tenancy::{Quota, TenantName};

use super::Cluster;
use crate::error::{ApiError, Code};

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// How full the request bucket is after an admitted request, for the
/// `RateLimit-*` headers.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset: u64,
}

struct TenantLimiter {
    quota: Quota,
    nodes: u32,
    requests: Limiter,
    bytes: Limiter,
    byte_burst: u32,
    /// Bytes consumed but not yet charged: consume learns its size only
    /// after reading, and the bucket cannot go below empty.
    debt: AtomicU64,
    request_period: Duration,
    request_burst: u32,
}

fn share(total: f64, nodes: u32) -> f64 {
    total / f64::from(nodes)
}

fn gcra(per_second: f64, burst: u32) -> (Gcra, Duration) {
    // At most one cell per nanosecond; at least one per ~30 years.
    let period = Duration::from_secs_f64((1.0 / per_second.max(1e-9)).clamp(1e-9, 1e9));
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let quota = Gcra::with_period(period)
        .unwrap_or_else(|| Gcra::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    (quota, period)
}

impl TenantLimiter {
    fn new(quota: Quota, nodes: u32) -> Self {
        let rps = share(f64::from(quota.requests_per_second), nodes);
        let request_burst = (share(
            f64::from(quota.requests_per_second) * f64::from(quota.burst_seconds),
            nodes,
        ) as u32)
            .max(1);
        let bps = share(quota.bytes_per_second as f64, nodes);
        let byte_burst = share(
            quota.bytes_per_second as f64 * f64::from(quota.burst_seconds),
            nodes,
        )
        .min(f64::from(u32::MAX)) as u32;
        let (request_quota, request_period) = gcra(rps, request_burst);
        let (byte_quota, _) = gcra(bps, byte_burst.max(1));
        Self {
            quota,
            nodes,
            requests: RateLimiter::direct(request_quota)
                .with_middleware::<StateInformationMiddleware>(),
            bytes: RateLimiter::direct(byte_quota).with_middleware::<StateInformationMiddleware>(),
            byte_burst: byte_burst.max(1),
            debt: AtomicU64::new(0),
            request_period,
            request_burst,
        }
    }

    fn retry_after(&self, wait: Duration) -> ApiError {
        ApiError::Throttled {
            code: Code::RateLimited,
            retry_after: wait,
            message: format!(
                "over this tenant's quota ({} requests/s, {} bytes/s); retry after {} s",
                self.quota.requests_per_second,
                self.quota.bytes_per_second,
                wait.as_secs_f64().ceil()
            ),
        }
    }

    /// Takes `bytes` (at most the burst) from the byte bucket at once, or
    /// says how long to wait.
    fn take(&self, bytes: u64) -> Result<(), Duration> {
        let Some(n) = NonZeroU32::new(u32::try_from(bytes).unwrap_or(u32::MAX)) else {
            return Ok(());
        };
        match self.bytes.check_n(n) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(DefaultClock::default().now())),
            Err(_) => Err(Duration::from_secs(1)),
        }
    }

    /// Takes `bytes` in chunks no larger than the burst; what the bucket
    /// cannot take now is owed.
    fn take_or_owe(&self, bytes: u64) -> Result<(), Duration> {
        let mut left = bytes;
        while left > 0 {
            let chunk = left.min(u64::from(self.byte_burst));
            if let Err(wait) = self.take(chunk) {
                self.debt.fetch_add(left, Ordering::Relaxed);
                return Err(wait);
            }
            left -= chunk;
        }
        Ok(())
    }

    /// Pays what consumption left owing, before anything new is admitted.
    fn settle(&self) -> Result<(), Duration> {
        let debt = self.debt.swap(0, Ordering::Relaxed);
        if debt == 0 {
            return Ok(());
        }
        self.take_or_owe(debt)
    }
}

/// The node's tenant limiters.
pub struct TenantLimits {
    tenants: Cache<String, Arc<TenantLimiter>>,
    cluster: Arc<Cluster>,
}

impl std::fmt::Debug for TenantLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantLimits").finish_non_exhaustive()
    }
}

impl TenantLimits {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            tenants: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            cluster,
        }
    }

    /// The tenant's limiter for its current quota and node count; a change
    /// of either starts a fresh one.
    fn limiter(&self, tenant: &TenantName, quota: Quota) -> Arc<TenantLimiter> {
        let nodes = self.cluster.live_nodes();
        if let Some(existing) = self.tenants.get(tenant.as_str()) {
            if existing.quota == quota && existing.nodes == nodes {
                return existing;
            }
        }
        let fresh = Arc::new(TenantLimiter::new(quota, nodes));
        self.tenants
            .insert(tenant.as_str().to_owned(), fresh.clone());
        fresh
    }

    /// Admits one request, or says how long to wait.
    pub fn admit_request(&self, tenant: &TenantName, quota: Quota) -> Result<Admission, ApiError> {
        let limiter = self.limiter(tenant, quota);
        if let Err(wait) = limiter.settle() {
            metrics::counter!("sluice_rate_limited_total", "tenant" => tenant.to_string(), "kind" => "bytes").increment(1);
            return Err(limiter.retry_after(wait));
        }
        match limiter.requests.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = u64::from(limiter.request_burst.saturating_sub(remaining));
                let reset = (limiter.request_period.as_secs_f64() * missing as f64).ceil() as u64;
                Ok(Admission {
                    limit: limiter.request_burst,
                    remaining,
                    reset,
                })
            }
            Err(not_until) => {
                metrics::counter!("sluice_rate_limited_total", "tenant" => tenant.to_string(), "kind" => "requests").increment(1);
                Err(limiter.retry_after(not_until.wait_time_from(DefaultClock::default().now())))
            }
        }
    }

    /// Charges bytes known before the work (a produce). A request larger
    /// than the byte burst can never pass, so it is 413, not a 429 that
    /// would repeat forever.
    pub fn charge_before(
        &self,
        tenant: &TenantName,
        quota: Quota,
        bytes: u64,
    ) -> Result<(), ApiError> {
        let limiter = self.limiter(tenant, quota);
        if bytes > u64::from(limiter.byte_burst) {
            return Err(ApiError::Input {
                code: Code::ExceedsQuotaBurst,
                message: format!(
                    "the request carries {bytes} bytes, more than this node's share of the tenant's byte burst ({})",
                    limiter.byte_burst
                ),
            });
        }
        limiter.take(bytes).map_err(|wait| {
            metrics::counter!("sluice_rate_limited_total", "tenant" => tenant.to_string(), "kind" => "bytes").increment(1);
            limiter.retry_after(wait)
        })
    }

    /// Charges bytes learnt after the work (a consume). They always count:
    /// what the bucket cannot take now is owed and paid before the
    /// tenant's next request is admitted.
    pub fn charge_after(&self, tenant: &TenantName, quota: Quota, bytes: u64) {
        let limiter = self.limiter(tenant, quota);
        let _ = limiter.take_or_owe(bytes);
    }

    /// Pays what the tenant's consumption owes, or says how long until it
    /// can: a stream over its byte quota pauses this long rather than
    /// being refused.
    pub fn pay_owed(&self, tenant: &TenantName, quota: Quota) -> Result<(), Duration> {
        self.limiter(tenant, quota).settle()
    }

    /// The tenant's remaining burst on this node, for `GET /me`, without
    /// taking anything.
    pub fn node_share(&self, tenant: &TenantName, quota: Quota) -> (u32, u32, f64, f64) {
        let limiter = self.limiter(tenant, quota);
        let nodes = limiter.nodes;
        (
            nodes,
            limiter.request_burst,
            share(f64::from(quota.requests_per_second), nodes),
            share(quota.bytes_per_second as f64, nodes),
        )
    }
}
