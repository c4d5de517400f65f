//! The node's open streams: each tenant's share of `quota.max_streams`,
//! and a way to tell the streams of a user or tenant to check their
//! credentials again when a change notice arrives (a revoked user's
//! streams end within moments, not at their next reconnect).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tenancy::{Quota, TenantName};
use tokio::sync::Notify;

use crate::error::{ApiError, Code};
use crate::ratelimit::Cluster;

/// When a client refused for its tenant's stream count should try again.
const STREAMS_RETRY_AFTER: Duration = Duration::from_secs(5);

struct Entry {
    tenant: String,
    username: String,
    recheck: Arc<Notify>,
}

#[derive(Default)]
struct Open {
    streams: HashMap<u64, Entry>,
    /// Each tenant's streams on this node, oldest first.
    by_tenant: HashMap<String, BTreeSet<u64>>,
}

/// The open streams of this node.
pub struct Streams {
    cluster: Arc<Cluster>,
    open: Mutex<Open>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").finish_non_exhaustive()
    }
}

/// One open stream's place. Dropping it (the stream ended, whatever the
/// reason) gives the place back.
#[derive(Debug)]
pub struct StreamSlot {
    streams: Arc<Streams>,
    id: u64,
    recheck: Arc<Notify>,
}

impl StreamSlot {
    /// Resolves when the stream's user or tenant changed and its
    /// credentials must be checked again (at once if that happened since
    /// the last call).
    pub async fn must_recheck(&self) {
        self.recheck.notified().await;
    }

    /// Whether this stream is still within its tenant's share of `quota`
    /// on this node: after a quota was lowered, the newest streams past
    /// the share end.
    pub fn within(&self, tenant: &TenantName, quota: &Quota) -> bool {
        let share = self.streams.node_share(quota) as usize;
        let open = self.streams.lock();
        open.by_tenant
            .get(tenant.as_str())
            .and_then(|ids| ids.iter().position(|id| *id == self.id))
            .is_none_or(|rank| rank < share)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock();
        if let Some(entry) = open.streams.remove(&self.id) {
            let now_open = match open.by_tenant.get_mut(&entry.tenant) {
                Some(ids) => {
                    ids.remove(&self.id);
                    ids.len()
                }
                None => 0,
            };
            if now_open == 0 {
                open.by_tenant.remove(&entry.tenant);
            }
            metrics::gauge!("sluice_streams_open", "tenant" => entry.tenant).set(now_open as f64);
        }
    }
}

impl Streams {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            open: Mutex::default(),
            next_id: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This node's share of the tenant's streams.
    pub fn node_share(&self, quota: &Quota) -> u32 {
        (quota.max_streams / self.cluster.live_nodes()).max(1)
    }

    /// Opens a stream for `username` of `tenant`, within the tenant's share
    /// of `quota.max_streams` on this node, or refuses with 429
    /// `too_many_streams`.
    pub fn open(
        self: &Arc<Self>,
        tenant: &TenantName,
        username: &str,
        quota: &Quota,
    ) -> Result<StreamSlot, ApiError> {
        let share = self.node_share(quota);
        let mut open = self.lock();
        let ids = open.by_tenant.entry(tenant.to_string()).or_default();
        if ids.len() >= share as usize {
            let running = ids.len();
            drop(open);
            metrics::counter!(
                "sluice_rate_limited_total",
                "tenant" => tenant.to_string(),
                "kind" => "streams",
            )
            .increment(1);
            return Err(ApiError::Throttled {
                code: Code::TooManyOpenStreams,
                retry_after: STREAMS_RETRY_AFTER,
                message: format!(
                    "this tenant already holds {running} streams on this node, its share of quota.max_streams ({} over {} node(s)); close one first",
                    quota.max_streams,
                    self.cluster.live_nodes()
                ),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        ids.insert(id);
        let now_open = ids.len();
        let recheck = Arc::new(Notify::new());
        open.streams.insert(
            id,
            Entry {
                tenant: tenant.to_string(),
                username: username.to_owned(),
                recheck: recheck.clone(),
            },
        );
        drop(open);
        metrics::gauge!("sluice_streams_open", "tenant" => tenant.to_string()).set(now_open as f64);
        Ok(StreamSlot {
            streams: self.clone(),
            id,
            recheck,
        })
    }

    fn recheck_where(&self, matches: impl Fn(&Entry) -> bool) {
        let open = self.lock();
        for entry in open.streams.values().filter(|e| matches(e)) {
            entry.recheck.notify_one();
        }
    }

    /// A user (or its grants) changed: its streams check their
    /// credentials and grants again.
    pub fn recheck_user(&self, username: &str) {
        self.recheck_where(|e| e.username == username);
    }

    /// A tenant changed (disabled, its quota, deleted): its streams check
    /// again.
    pub fn recheck_tenant(&self, tenant: &str) {
        self.recheck_where(|e| e.tenant == tenant);
    }

    /// Notices may have been lost: every stream checks again.
    pub fn recheck_all(&self) {
        self.recheck_where(|_| true);
    }

    /// Streams open on this node.
    pub fn count(&self) -> usize {
        self.lock().streams.len()
    }
}
