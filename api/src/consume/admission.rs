//! What a GET must be let in by before it reads: a slot among its tenant's
//! concurrent consumes on this node, and a place for its group within the
//! tenant's `max_groups`.
//!
//! Slots bound what one tenant can hold of a node: a consume (a long poll
//! above all) keeps a connection, a worker's attention and a reader's time
//! for up to `consume.max_wait`. Each node admits its share of
//! `quota.max_concurrent_consumes` (the quota over the live nodes, at least
//! one), so a thousand open long polls from one tenant get 429s past their
//! share, and other tenants keep theirs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use moka::future::Cache;
use tenancy::{GroupAdmission, GroupName, Quota, Store, TenantName};

use crate::error::{ApiError, Code};
use crate::ratelimit::Cluster;

/// How long a node trusts that a group exists and was recently marked as
/// used, before it marks it again: the granularity of "last used", which
/// retention counts in days.
const KNOWN_GROUP_TTL: Duration = Duration::from_secs(60);

/// When a client refused for concurrency should try again: a consume slot
/// frees up as soon as one of the tenant's GETs answers.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Running consumes per tenant on this node.
#[derive(Debug, Default)]
struct Running(Mutex<HashMap<String, u32>>);

impl Running {
    fn try_take(&self, tenant: &str, share: u32) -> Result<(), u32> {
        let mut running = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = running.entry(tenant.to_owned()).or_insert(0);
        if *count >= share {
            return Err(*count);
        }
        *count += 1;
        Ok(())
    }

    fn give_back(&self, tenant: &str) {
        let mut running = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = running.get_mut(tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(tenant);
            }
        }
    }

    fn of(&self, tenant: &str) -> u32 {
        let running = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        running.get(tenant).copied().unwrap_or(0)
    }
}

/// One running consume. Dropping it (the GET answered, failed, or its
/// client went away) frees the slot.
#[derive(Debug)]
pub struct ConsumeSlot {
    running: Arc<Running>,
    tenant: String,
}

impl Drop for ConsumeSlot {
    fn drop(&mut self) {
        self.running.give_back(&self.tenant);
        metrics::gauge!("sluice_consumes_running", "tenant" => self.tenant.clone())
            .set(f64::from(self.running.of(&self.tenant)));
    }
}

/// The node's consume admission: slots per tenant, and the groups known
/// to exist.
pub struct ConsumeAdmission {
    store: Store,
    cluster: Arc<Cluster>,
    running: Arc<Running>,
    /// (tenant, group) recently admitted on this node, to skip Postgres.
    known_groups: Cache<(String, String), ()>,
}

impl std::fmt::Debug for ConsumeAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumeAdmission").finish_non_exhaustive()
    }
}

impl ConsumeAdmission {
    pub fn new(store: Store, cluster: Arc<Cluster>) -> Self {
        Self {
            store,
            cluster,
            running: Arc::default(),
            known_groups: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KNOWN_GROUP_TTL)
                .build(),
        }
    }

    /// This node's share of the tenant's concurrent consumes.
    pub fn node_share(&self, quota: &Quota) -> u32 {
        (quota.max_concurrent_consumes / self.cluster.live_nodes()).max(1)
    }

    /// Takes one of the tenant's consume slots on this node, or refuses
    /// with 429 `too_many_consumes`.
    pub fn take_slot(&self, tenant: &TenantName, quota: &Quota) -> Result<ConsumeSlot, ApiError> {
        let share = self.node_share(quota);
        if let Err(running) = self.running.try_take(tenant.as_str(), share) {
            metrics::counter!(
                "sluice_rate_limited_total",
                "tenant" => tenant.to_string(),
                "kind" => "concurrent_consumes",
            )
            .increment(1);
            return Err(ApiError::Throttled {
                code: Code::TooManyConsumes,
                retry_after: BUSY_RETRY_AFTER,
                message: format!(
                    "this tenant already runs {running} consumes on this node, its share of quota.max_concurrent_consumes ({} over {} node(s)); retry when one of them has answered",
                    quota.max_concurrent_consumes,
                    self.cluster.live_nodes()
                ),
            });
        }
        metrics::gauge!("sluice_consumes_running", "tenant" => tenant.to_string())
            .set(f64::from(self.running.of(tenant.as_str())));
        Ok(ConsumeSlot {
            running: self.running.clone(),
            tenant: tenant.as_str().to_owned(),
        })
    }

    /// Makes sure the group exists and counts as used, creating it within
    /// the tenant's `max_groups` (409 `group_limit_reached` past it, with
    /// nothing created).
    pub async fn admit_group(
        &self,
        tenant: &TenantName,
        group: &GroupName,
    ) -> Result<(), ApiError> {
        let key = (tenant.to_string(), group.to_string());
        if self.known_groups.contains_key(&key) {
            return Ok(());
        }
        match self.store.admit_group(tenant, group).await {
            Ok(admission) => {
                if admission == GroupAdmission::Created {
                    tracing::info!(%tenant, %group, "consumer group created");
                }
                self.known_groups.insert(key, ()).await;
                Ok(())
            }
            Err(err @ tenancy::Error::GroupLimitReached { .. }) => {
                metrics::counter!("sluice_group_limit_reached_total", "tenant" => tenant.to_string())
                    .increment(1);
                Err(err.into())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Forgets which groups exist, after a group was deleted somewhere in
    /// the cluster.
    pub fn forget_groups(&self) {
        self.known_groups.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_given_back_can_be_taken_again_and_tenants_do_not_share() {
        let running = Running::default();
        assert!(running.try_take("a", 2).is_ok());
        assert!(running.try_take("a", 2).is_ok());
        assert_eq!(running.try_take("a", 2), Err(2));
        assert!(running.try_take("b", 2).is_ok());
        running.give_back("a");
        assert!(running.try_take("a", 2).is_ok());
        running.give_back("b");
        assert_eq!(running.of("b"), 0);
    }
}
