//! Consumer cursors in Postgres: the claim that lets any node serve any GET.
//!
//! A GET runs one short READ COMMITTED transaction: it locks the cursor
//! rows of partitions that have messages past their cursor with
//! `FOR UPDATE SKIP LOCKED` (so it never waits on another GET), the caller
//! reads from Kafka at those cursors, then [`Claim::commit`] advances them.
//! If the node dies before that, Postgres rolls the transaction back.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Postgres, Transaction};

use super::Store;
use crate::error::{Error, ObjectKind, Result};
use crate::names::{GroupName, TenantName, TopicName};

/// One partition held by a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimedPartition {
    pub partition: i32,
    /// The next offset to deliver.
    pub next_offset: i64,
    /// The high watermark the claim was decided on.
    pub high: i64,
}

/// Partitions locked for one GET. Dropping it without [`Claim::commit`]
/// rolls back: nothing is delivered, nothing is lost.
#[derive(Debug)]
pub struct Claim {
    tx: Transaction<'static, Postgres>,
    tenant: String,
    group: String,
    topic: String,
    pub partitions: Vec<ClaimedPartition>,
}

/// A cursor row as the admin API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CursorRow {
    pub group_name: String,
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
    pub updated_at: DateTime<Utc>,
}

impl Claim {
    /// Moves each listed partition's cursor to its new next offset, marks
    /// every claimed partition as just claimed, and commits.
    pub async fn commit(mut self, advances: &[(i32, i64)]) -> Result<()> {
        let partitions: Vec<i32> = self.partitions.iter().map(|p| p.partition).collect();
        let (moved, to): (Vec<i32>, Vec<i64>) = advances.iter().copied().unzip();
        sqlx::query(
            "UPDATE cursors c
             SET next_offset = coalesce(a.next_offset, c.next_offset),
                 last_claimed_at = now(),
                 updated_at = CASE WHEN a.next_offset IS NULL THEN c.updated_at ELSE now() END
             FROM unnest($4::int4[]) AS p(partition)
             LEFT JOIN unnest($5::int4[], $6::int8[]) AS a(partition, next_offset) ON a.partition = p.partition
             WHERE c.tenant = $1 AND c.group_name = $2 AND c.topic = $3 AND c.partition = p.partition",
        )
        .bind(&self.tenant)
        .bind(&self.group)
        .bind(&self.topic)
        .bind(&partitions)
        .bind(&moved)
        .bind(&to)
        .execute(&mut *self.tx)
        .await
        .map_err(Error::db("advance the cursors"))?;
        self.tx
            .commit()
            .await
            .map_err(Error::db("commit the cursors"))
    }
}

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

    /// Claims partitions of `topic` for `group` that have messages past
    /// their cursor according to `highs` (partition, high watermark), least
    /// recently claimed first, until about `wanted` messages are covered.
    /// Rows other GETs hold are skipped, never waited for.
    pub async fn claim(
        &self,
        tenant: &TenantName,
        group: &GroupName,
        topic: &TopicName,
        highs: &[(i32, i64)],
        wanted: i64,
    ) -> Result<Claim> {
        let mut tx = self.begin().await?;
        let (partitions, marks): (Vec<i32>, Vec<i64>) = highs.iter().copied().unzip();
        let mut claimed: Vec<ClaimedPartition> = Vec::new();
        let mut covered = 0i64;
        while covered < wanted && claimed.len() < highs.len() {
            let taken: Vec<i32> = claimed.iter().map(|c| c.partition).collect();
            let row: Option<(i32, i64, i64)> = sqlx::query_as(
                "SELECT c.partition, c.next_offset, w.high
                 FROM cursors c
                 JOIN unnest($4::int4[], $5::int8[]) AS w(partition, high) ON w.partition = c.partition
                 WHERE c.tenant = $1 AND c.group_name = $2 AND c.topic = $3
                   AND c.next_offset < w.high AND c.partition <> ALL($6::int4[])
                 ORDER BY c.last_claimed_at, c.partition
                 LIMIT 1
                 FOR UPDATE OF c SKIP LOCKED",
            )
            .bind(tenant.as_str())
            .bind(group.as_str())
            .bind(topic.as_str())
            .bind(&partitions)
            .bind(&marks)
            .bind(&taken)
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::db("claim partitions"))?;
            let Some((partition, next_offset, high)) = row else {
                break;
            };
            covered += high - next_offset;
            claimed.push(ClaimedPartition {
                partition,
                next_offset,
                high,
            });
        }
        Ok(Claim {
            tx,
            tenant: tenant.as_str().to_owned(),
            group: group.as_str().to_owned(),
            topic: topic.as_str().to_owned(),
            partitions: claimed,
        })
    }

    /// Every cursor of a tenant, for listing groups and their lag.
    pub async fn cursors(&self, tenant: &TenantName) -> Result<Vec<CursorRow>> {
        sqlx::query_as(
            "SELECT group_name, topic, partition, next_offset, updated_at FROM cursors
             WHERE tenant = $1 ORDER BY group_name, topic, partition",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(Error::db("list cursors"))
    }

    /// Moves a group's cursors on a topic to the given offsets. It takes
    /// the row locks, so it waits for GETs in flight to commit first: no
    /// message after the reset point can be delivered twice.
    pub async fn reset_cursors(
        &self,
        tenant: &TenantName,
        actor: &crate::audit::Actor,
        group: &GroupName,
        topic: &TopicName,
        offsets: &[(i32, i64)],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let (partitions, to): (Vec<i32>, Vec<i64>) = offsets.iter().copied().unzip();
        let updated = sqlx::query(
            "UPDATE cursors c SET next_offset = r.next_offset, updated_at = now()
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
        if updated.rows_affected() == 0 {
            return Err(Error::not_found(ObjectKind::Group, group.as_str()));
        }
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
