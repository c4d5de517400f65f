//! Consumer cursors in Postgres: one row per (tenant, group, topic,
//! partition) holding the next offset to deliver. GETs lease them (see
//! `leases`); this module creates, lists and resets them.

use std::time::{Duration, Instant};

use super::Store;
use crate::error::{Error, ObjectKind, Result};
use crate::names::{GroupName, TenantName, TopicName};

impl Store {
    /// Creates the cursor rows a group needs on a topic, each starting at
    /// the given offset (the earliest retained one). Existing rows stay.
    pub async fn ensure_cursors(
        &self,
        tenant: &TenantName,
        group: &GroupName,
        topic: &TopicName,
        starts: &[(i32, i64)],
    ) -> Result<()> {
        let (partitions, offsets): (Vec<i32>, Vec<i64>) = starts.iter().copied().unzip();
        sqlx::query(
            "INSERT INTO cursors (tenant, group_name, topic, partition, next_offset)
             SELECT $1, $2, $3, p.partition, p.next_offset
             FROM unnest($4::int4[], $5::int8[]) AS p(partition, next_offset)
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(topic.as_str())
        .bind(&partitions)
        .bind(&offsets)
        .execute(&self.pool)
        .await
        .map_err(Error::db("create the cursors"))?;
        Ok(())
    }

    /// Moves a group's cursors on a topic to the given offsets. It fences
    /// the partitions first (no new lease is taken on them), waits for the
    /// GETs in flight to commit (their leases end within `consume.lease`),
    /// then moves them: no message after the reset point can be delivered
    /// twice. Manual-mode receipts are not waited for (they may last
    /// hours): they end, and their ranges are replaced.
    pub async fn reset_cursors(
        &self,
        tenant: &TenantName,
        actor: &crate::audit::Actor,
        group: &GroupName,
        topic: &TopicName,
        offsets: &[(i32, i64)],
    ) -> Result<()> {
        let (partitions, to): (Vec<i32>, Vec<i64>) = offsets.iter().copied().unzip();
        let started = Instant::now();
        let mut told = false;
        loop {
            // Fences (again, so a long wait never outlives the fence) and
            // tells which partitions are still leased.
            let leased: Vec<bool> = sqlx::query_scalar(
                "UPDATE cursors SET fenced_until = now() + interval '30 seconds'
                 WHERE tenant = $1 AND group_name = $2 AND topic = $3 AND partition = ANY($4::int4[])
                 RETURNING lease_holder IS NOT NULL AND lease_expires_at > now()
                     AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.id = lease_holder)",
            )
            .bind(tenant.as_str())
            .bind(group.as_str())
            .bind(topic.as_str())
            .bind(&partitions)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::db("fence the cursors"))?;
            if leased.is_empty() {
                return Err(Error::not_found(ObjectKind::Group, group.as_str()));
            }
            if !leased.contains(&true) {
                break;
            }
            if !told && started.elapsed() > Duration::from_secs(1) {
                told = true;
                tracing::info!(%tenant, %group, %topic, "a reset waits for GETs in flight");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut tx = self.begin().await?;
        // Receipts of manual-mode leases on these partitions end: their
        // ranges are replaced, so an ack of them gets `receipt_expired`.
        sqlx::query(
            "UPDATE receipts SET expires_at = least(expires_at, now())
             WHERE id IN (SELECT lease_holder FROM cursors
                          WHERE tenant = $1 AND group_name = $2 AND topic = $3
                            AND partition = ANY($4::int4[]) AND lease_holder IS NOT NULL)",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(topic.as_str())
        .bind(&partitions)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("end the receipts of a reset group"))?;
        // Leases that expired meanwhile (a holder died), manual-mode leases
        // (whose receipts just ended), ranges awaiting redelivery and
        // partial acks are all for offsets the reset replaces: cleared
        // with the fence.
        sqlx::query(
            "UPDATE cursors c SET next_offset = r.next_offset, updated_at = now(),
                 lease_holder = NULL, lease_expires_at = NULL, lease_end_offset = NULL,
                 lease_deliveries = 0, fenced_until = NULL, range_end = NULL,
                 acked_offsets = '{}', lease_released = '{}', available_at = NULL
             FROM unnest($4::int4[], $5::int8[]) AS r(partition, next_offset)
             WHERE c.tenant = $1 AND c.group_name = $2 AND c.topic = $3 AND c.partition = r.partition",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(topic.as_str())
        .bind(&partitions)
        .bind(&to)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("reset the cursors"))?;
        let change = crate::audit::Change {
            action: "group.reset",
            tenant: Some(tenant.as_str()),
            target: group.as_str(),
            details: serde_json::json!({ "topic": topic, "offsets": offsets }),
        };
        crate::audit::record(&mut tx, actor, change).await?;
        tx.commit().await.map_err(Error::db("commit the reset"))
    }
}
