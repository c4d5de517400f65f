//! The group janitor: every `consume.group_sweep_interval`, one node of
//! the cluster (whichever takes the Postgres advisory lock) deletes groups
//! no GET has used for `consume.group_retention`, their cursors, and
//! then their mirrored Kafka groups.
//!
//! Their `sluice_consumer_lag` series cannot be deleted: the metrics facade
//! has no removal. Nothing updates them once the group is gone, so the
//! exporter's idle timeout (10 minutes for gauges) drops them.

use std::sync::Arc;
use std::time::Duration;

use tenancy::Store;

use crate::kafka::KafkaGroups;

/// Most groups removed in one transaction; a sweep loops until done.
const SWEEP_BATCH: i64 = 500;

/// Starts the janitor; a retention of 0 keeps groups for ever.
pub fn spawn_group_retention(
    store: Store,
    kafka: Arc<KafkaGroups>,
    retention: Duration,
    interval: Duration,
) {
    if retention.is_zero() {
        tracing::info!("consume.group_retention is 0: unused groups are kept");
        return;
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            sweep(&store, &kafka, retention).await;
        }
    });
}

/// One sweep: batches until no expired group is left (or another node
/// holds the sweep, or Postgres fails: the next tick tries again).
async fn sweep(store: &Store, kafka: &KafkaGroups, retention: Duration) {
    loop {
        let expired = match store.expire_groups(retention, SWEEP_BATCH).await {
            Ok(Some(expired)) => expired,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot expire unused groups; retrying at the next sweep");
                return;
            }
        };
        if expired.is_empty() {
            return;
        }
        for group in &expired {
            metrics::counter!("sluice_groups_expired_total", "tenant" => group.tenant.clone())
                .increment(1);
        }
        let kafka_ids: Vec<String> = expired
            .iter()
            .map(|g| format!("{}.{}", g.tenant, g.group_name))
            .collect();
        match kafka.delete(&kafka_ids).await {
            Ok(deleted) => tracing::info!(
                groups = expired.len(),
                kafka_groups = deleted,
                "deleted groups unused for longer than consume.group_retention"
            ),
            Err(err) => tracing::warn!(
                groups = expired.len(),
                error = %err,
                "deleted unused groups, but not their Kafka groups (Kafka's own offsets retention will)"
            ),
        }
        if i64::try_from(expired.len()).unwrap_or(i64::MAX) < SWEEP_BATCH {
            return;
        }
    }
}
