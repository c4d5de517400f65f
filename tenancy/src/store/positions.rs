//! Where groups stand, read-only: each cursor with the range a GET or a
//! receipt holds on it, for the groups views; and every cursor of the
//! cluster, for the lag gauge, read by one node at a time.

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres};

use super::Store;
use crate::error::{Error, Result};
use crate::names::{GroupName, TenantName, TopicName};

/// A range leased to a GET or a manual-mode receipt, not yet settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedRange {
    /// The first offset of the range (the cursor's next offset).
    pub from: i64,
    /// Its end (exclusive), when the lease knows it.
    pub to: Option<i64>,
    pub expires_at: DateTime<Utc>,
    /// How many times the range has been delivered.
    pub deliveries: i32,
}

/// One cursor: a group's position on one partition of a topic.
#[derive(Debug, Clone)]
pub struct Position {
    pub group_name: String,
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
    /// `None` when nothing holds the partition right now.
    pub leased: Option<LeasedRange>,
}

#[derive(sqlx::FromRow)]
struct PositionRow {
    group_name: String,
    topic: String,
    partition: i32,
    next_offset: i64,
    lease_end_offset: Option<i64>,
    lease_expires_at: Option<DateTime<Utc>>,
    lease_deliveries: i32,
}

impl From<PositionRow> for Position {
    fn from(row: PositionRow) -> Self {
        let leased = row.lease_expires_at.map(|expires_at| LeasedRange {
            from: row.next_offset,
            to: row.lease_end_offset,
            expires_at,
            deliveries: row.lease_deliveries,
        });
        Position {
            group_name: row.group_name,
            topic: row.topic,
            partition: row.partition,
            next_offset: row.next_offset,
            leased,
        }
    }
}

/// Which of a tenant's cursors to read: all of them, or those of one topic,
/// or of one group on one topic.
#[derive(Debug, Clone, Copy, Default)]
pub struct PositionFilter<'a> {
    pub topic: Option<&'a TopicName>,
    pub group: Option<&'a GroupName>,
}

/// A (tenant, group, topic) with its cursors, for the lag gauge.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupCursors {
    pub tenant: String,
    pub group_name: String,
    pub topic: String,
    pub partitions: Vec<i32>,
    pub offsets: Vec<i64>,
}

/// The lag measurer's claim to be the one node that measures: a
/// connection out of the pool on which Postgres holds a session advisory
/// lock for as long as the connection lives. A node that dies or loses
/// its connection lets another node take over at its next tick.
#[derive(Debug, Default)]
pub struct LagLeadership {
    conn: Option<PgConnection>,
}

/// Lets one node at a time measure every group's lag.
const LAG_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended('sluice.group-lag', 0))";

impl Store {
    /// A tenant's cursors (all, of one topic, or of one group on one
    /// topic), by group, topic and partition, each with the range leased
    /// on it if a lease is live.
    pub async fn positions(
        &self,
        tenant: &TenantName,
        filter: PositionFilter<'_>,
    ) -> Result<Vec<Position>> {
        let rows: Vec<PositionRow> = sqlx::query_as(
            "SELECT group_name, topic, partition, next_offset, lease_deliveries,
                    CASE WHEN lease_holder IS NOT NULL AND lease_expires_at > now()
                         THEN lease_end_offset END AS lease_end_offset,
                    CASE WHEN lease_holder IS NOT NULL AND lease_expires_at > now()
                         THEN lease_expires_at END AS lease_expires_at
             FROM cursors
             WHERE tenant = $1 AND ($2::text IS NULL OR topic = $2)
               AND ($3::text IS NULL OR group_name = $3)
             ORDER BY group_name, topic, partition",
        )
        .bind(tenant.as_str())
        .bind(filter.topic.map(TopicName::as_str))
        .bind(filter.group.map(GroupName::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(Error::db("list the group positions"))?;
        Ok(rows.into_iter().map(Position::from).collect())
    }

    /// Up to `cap` (tenant, group, topic) with their cursors, in one query,
    /// if this node is the one that measures lag (see [`LagLeadership`]);
    /// `None` while another node is. The query runs on the connection that
    /// holds the lock, so an answer proves the lock is still held.
    pub async fn lag_cursors(
        &self,
        leadership: &mut LagLeadership,
        cap: i64,
    ) -> Result<Option<Vec<GroupCursors>>> {
        if leadership.conn.is_none() {
            let mut conn: PoolConnection<Postgres> = self
                .pool
                .acquire()
                .await
                .map_err(Error::db("take a connection for the lag lock"))?;
            let ours: bool = sqlx::query_scalar(LAG_LOCK)
                .fetch_one(&mut *conn)
                .await
                .map_err(Error::db("take the lag lock"))?;
            if !ours {
                // Back to the pool: it holds no lock.
                return Ok(None);
            }
            // Out of the pool, so that the lock never travels with a
            // connection into someone else's hands.
            leadership.conn = Some(conn.detach());
        }
        let Some(conn) = leadership.conn.as_mut() else {
            return Ok(None);
        };
        let read = sqlx::query_as(
            "SELECT tenant, group_name, topic,
                        array_agg(partition ORDER BY partition) AS partitions,
                        array_agg(next_offset ORDER BY partition) AS offsets
                 FROM cursors GROUP BY tenant, group_name, topic
                 ORDER BY tenant, group_name, topic LIMIT $1",
        )
        .bind(cap)
        .fetch_all(&mut *conn)
        .await;
        match read {
            Ok(rows) => Ok(Some(rows)),
            Err(err) => {
                // Whatever went wrong, the lock may be gone with the
                // connection: the next tick competes for it afresh.
                leadership.conn = None;
                Err(Error::db("read every group's cursors")(err))
            }
        }
    }
}
