//! Leases on cursor rows: how any node serves any GET without holding a
//! database connection while it reads Kafka.
//!
//! A GET takes a [`Lease`] in one short statement (`FOR UPDATE SKIP LOCKED`
//! inside it, so it never waits on another GET): each leased row gets a
//! holder, an expiry from Postgres `now()` and the end of the leased range.
//! The statement commits at once; the caller reads Kafka with no
//! transaction open, then [`Lease::commit`] advances the cursors and clears
//! the lease in another short statement, only where the lease is still the
//! caller's. A node that dies mid-read leaves leases that expire; the next
//! GET takes those partitions over and reads the same messages, so nothing
//! is lost and nothing is delivered twice.
//!
//! The rows keep a delivery count (`lease_deliveries`) for the manual-ack
//! mode, whose leases outlive the request.

use std::time::Duration;

use uuid::Uuid;

use super::Store;
use crate::error::{Error, Result};
use crate::names::{GroupName, TenantName, TopicName};

/// One partition held by a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedPartition {
    pub partition: i32,
    /// The next offset to deliver.
    pub next_offset: i64,
    /// The end of the leased range (exclusive): the high watermark the
    /// lease was decided on. Below `next_offset` when the cursor lies past
    /// the watermark as this node knows it (a truncated log, or a stale
    /// watermark): the read finds out which.
    pub end_offset: i64,
    /// How many times this range has been leased: 1 the first time, more
    /// once a lease on it expired without a commit (a node died mid-read),
    /// or a manual-mode receipt on it expired or was nacked.
    pub deliveries: i32,
    /// Offsets in the range a partial ack already settled: the read skips
    /// them, since they are never delivered again.
    pub acked: Vec<i64>,
}

impl LeasedPartition {
    /// Messages the lease expects past the cursor, by the watermark.
    pub fn expected(&self) -> i64 {
        (self.end_offset - self.next_offset).max(0)
    }
}

/// What to lease.
#[derive(Debug, Clone, Copy)]
pub struct LeaseRequest<'a> {
    pub tenant: &'a TenantName,
    pub group: &'a GroupName,
    pub topic: &'a TopicName,
    /// (partition, high watermark) as this node knows them.
    pub highs: &'a [(i32, i64)],
    /// Stop leasing once this many messages are covered.
    pub wanted: i64,
    /// How long the lease lasts, from Postgres `now()`.
    pub duration: Duration,
    /// Breaks ties between partitions read equally long ago: partitions
    /// are taken from this one on, so ties rotate instead of always going
    /// to partition 0.
    pub rotation: u32,
}

/// Partitions leased by one GET. Settle it with [`Lease::commit`] or
/// [`Lease::release`]; dropped unsettled (a request cancelled mid-read),
/// it is released in the background, and if that fails it expires.
#[derive(Debug)]
pub struct Lease {
    store: Option<Store>,
    holder: Uuid,
    tenant: String,
    group: String,
    topic: String,
    pub partitions: Vec<LeasedPartition>,
}

/// How a lease was settled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Partitions whose lease was still this GET's, so their cursors moved
    /// (or stayed) as asked. A partition missing here was taken over after
    /// the lease expired: what was read from it must not be delivered.
    pub kept: Vec<i32>,
}

impl Lease {
    /// The holder id written on the rows.
    pub fn holder(&self) -> Uuid {
        self.holder
    }

    /// Partitions that were leased again after an earlier lease on the
    /// same range expired (its holder died or overran).
    pub fn taken_over(&self) -> usize {
        self.partitions.iter().filter(|p| p.deliveries > 1).count()
    }

    /// Moves each listed partition's cursor to its new next offset, stamps
    /// the partitions in `read` as just read, and clears the lease on every
    /// leased partition: all in one statement, and only on rows this lease
    /// still holds.
    pub async fn commit(mut self, advances: &[(i32, i64)], read: &[i32]) -> Result<Settled> {
        // Only `commit`, `release` and `drop` take the store, once.
        let Some(store) = self.store.take() else {
            return Ok(Settled::default());
        };
        settle(
            &store,
            self.holder,
            &self.tenant,
            &self.group,
            &self.topic,
            &self.partitions,
            advances,
            read,
        )
        .await
    }

    /// Gives the partitions back untouched, e.g. after a failed read: a
    /// commit that advances nothing and stamps nothing as read.
    pub async fn release(self) -> Result<()> {
        self.commit(&[], &[]).await.map(|_| ())
    }

    /// Manual mode: keeps the partitions that delivered messages leased
    /// under a receipt (the lease holder) for `visibility`, each over the
    /// range it delivered (`first..end`), and settles the others as
    /// [`Lease::commit`] does. Returns the partitions still held; one
    /// missing was taken over after the lease expired, and what was read
    /// from it must not be delivered.
    pub async fn hold(
        mut self,
        visibility: Duration,
        ranges: &[HeldRange],
        advances: &[(i32, i64)],
        read: &[i32],
    ) -> Result<Settled> {
        let Some(store) = self.store.take() else {
            return Ok(Settled::default());
        };
        let (held, others): (Vec<LeasedPartition>, Vec<LeasedPartition>) = self
            .partitions
            .iter()
            .cloned()
            .partition(|p| ranges.iter().any(|r| r.partition == p.partition));
        let mut settled = settle(
            &store,
            self.holder,
            &self.tenant,
            &self.group,
            &self.topic,
            &others,
            advances,
            read,
        )
        .await?;
        if held.is_empty() {
            return Ok(settled);
        }
        let partitions: Vec<i32> = ranges.iter().map(|r| r.partition).collect();
        let firsts: Vec<i64> = ranges.iter().map(|r| r.first).collect();
        let ends: Vec<i64> = ranges.iter().map(|r| r.end).collect();
        let millis = i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX);
        let kept: Vec<i32> = sqlx::query_scalar(
            "WITH held AS (
                 UPDATE cursors c
                 SET updated_at = CASE WHEN c.next_offset = h.first THEN c.updated_at ELSE now() END,
                     next_offset = h.first, lease_end_offset = h.range_end,
                     -- A redelivery cut short by `limit` keeps the rest of its range.
                     range_end = greatest(coalesce(c.range_end, h.range_end), h.range_end),
                     lease_expires_at = now() + $7::int8 * interval '1 millisecond',
                     last_read_at = now(),
                     acked_offsets = array(SELECT a FROM unnest(c.acked_offsets) a WHERE a >= h.first ORDER BY a)
                 FROM unnest($4::int4[], $5::int8[], $6::int8[]) AS h(partition, first, range_end)
                 WHERE c.tenant = $1 AND c.group_name = $2 AND c.topic = $3
                   AND c.partition = h.partition AND c.lease_holder = $8
                 RETURNING c.partition
             ),
             receipt AS (
                 INSERT INTO receipts (id, tenant, group_name, topic, expires_at)
                 SELECT $8, $1, $2, $3, now() + $7::int8 * interval '1 millisecond'
                 WHERE EXISTS (SELECT 1 FROM held)
             )
             SELECT partition FROM held",
        )
        .bind(&self.tenant)
        .bind(&self.group)
        .bind(&self.topic)
        .bind(&partitions)
        .bind(&firsts)
        .bind(&ends)
        .bind(millis)
        .bind(self.holder)
        .fetch_all(store.pool())
        .await
        .map_err(Error::db("hold the leased ranges"))?;
        settled.kept.extend(kept);
        Ok(settled)
    }
}

/// A range a manual-mode GET delivered from one partition: its first
/// delivered offset and the offset after the last one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldRange {
    pub partition: i32,
    pub first: i64,
    pub end: i64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        if self.partitions.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (holder, tenant, group, topic) = (
            self.holder,
            std::mem::take(&mut self.tenant),
            std::mem::take(&mut self.group),
            std::mem::take(&mut self.topic),
        );
        let partitions = std::mem::take(&mut self.partitions);
        runtime.spawn(async move {
            let released = settle(
                &store,
                holder,
                &tenant,
                &group,
                &topic,
                &partitions,
                &[],
                &[],
            )
            .await;
            if let Err(err) = released {
                tracing::debug!(error = %err, "cannot release an abandoned lease; it will expire");
            }
        });
    }
}

#[allow(clippy::too_many_arguments)]
async fn settle(
    store: &Store,
    holder: Uuid,
    tenant: &str,
    group: &str,
    topic: &str,
    leased: &[LeasedPartition],
    advances: &[(i32, i64)],
    read: &[i32],
) -> Result<Settled> {
    if leased.is_empty() {
        return Ok(Settled::default());
    }
    let partitions: Vec<i32> = leased.iter().map(|p| p.partition).collect();
    let (moved, to): (Vec<i32>, Vec<i64>) = advances.iter().copied().unzip();
    let kept: Vec<i32> = sqlx::query_scalar(
        "UPDATE cursors c
         SET next_offset = coalesce(a.next_offset, c.next_offset),
             last_read_at = CASE WHEN p.partition = ANY($7::int4[]) THEN now() ELSE c.last_read_at END,
             updated_at = CASE WHEN a.next_offset IS NULL THEN c.updated_at ELSE now() END,
             lease_holder = NULL, lease_expires_at = NULL, lease_end_offset = NULL,
             lease_deliveries = CASE WHEN a.next_offset IS NULL AND c.range_end IS NOT NULL
                                     THEN greatest(c.lease_deliveries - 1, 0) ELSE 0 END,
             range_end = CASE WHEN a.next_offset IS NULL THEN c.range_end END,
             acked_offsets = CASE WHEN a.next_offset IS NULL THEN c.acked_offsets
                 ELSE array(SELECT x FROM unnest(c.acked_offsets) x WHERE x >= a.next_offset ORDER BY x) END,
             lease_released = '{}'
         FROM unnest($4::int4[]) AS p(partition)
         LEFT JOIN unnest($5::int4[], $6::int8[]) AS a(partition, next_offset) ON a.partition = p.partition
         WHERE c.tenant = $1 AND c.group_name = $2 AND c.topic = $3 AND c.partition = p.partition
           AND c.lease_holder = $8
         RETURNING c.partition",
    )
    .bind(tenant)
    .bind(group)
    .bind(topic)
    .bind(&partitions)
    .bind(&moved)
    .bind(&to)
    .bind(read)
    .bind(holder)
    .fetch_all(store.pool())
    .await
    .map_err(Error::db("commit the leased cursors"))?;
    Ok(Settled { kept })
}

impl Store {
    /// Leases partitions of a topic for a group: those with messages past
    /// their cursor (by the given watermarks), no live lease and no reset
    /// in progress, least
    /// recently read first, until about `wanted` messages are covered.
    /// Partitions whose cursor lies past the watermark come last (the read
    /// tells a truncated log from a stale watermark). Rows another GET is
    /// leasing at this instant are skipped, never waited for.
    pub async fn lease(&self, request: LeaseRequest<'_>) -> Result<Lease> {
        let holder = Uuid::new_v4();
        let (partitions, highs): (Vec<i32>, Vec<i64>) = request.highs.iter().copied().unzip();
        let count = i32::try_from(partitions.len().max(1)).unwrap_or(i32::MAX);
        let rotation = i32::try_from(request.rotation % count.unsigned_abs()).unwrap_or(0);
        // Each partition with messages covers at least one: no more rows
        // than `wanted` are needed, so no more are locked.
        let most = request.wanted.clamp(1, i64::from(count));
        let millis = i64::try_from(request.duration.as_millis()).unwrap_or(i64::MAX);
        let mut rows: Vec<(i32, i64, i64, i32, i64, Vec<i64>)> = sqlx::query_as(
            "WITH candidates AS (
                 SELECT c.partition, c.next_offset,
                        CASE WHEN c.range_end IS NULL THEN w.high ELSE least(w.high, c.range_end) END AS high,
                        c.next_offset > w.high AS beyond,
                        c.last_read_at,
                        (c.partition - $7 + $8) % $8 AS turn
                 FROM cursors c
                 JOIN unnest($4::int4[], $5::int8[]) AS w(partition, high) ON w.partition = c.partition
                 WHERE c.tenant = $1 AND c.group_name = $2 AND c.topic = $3
                   AND c.next_offset <> w.high
                   AND (c.lease_expires_at IS NULL OR c.lease_expires_at <= now())
                   AND (c.fenced_until IS NULL OR c.fenced_until <= now())
                   AND (c.available_at IS NULL OR c.available_at <= now())
                 ORDER BY c.next_offset > w.high, c.last_read_at, (c.partition - $7 + $8) % $8
                 LIMIT $6
                 FOR UPDATE OF c SKIP LOCKED
             ),
             chosen AS (
                 SELECT partition, high,
                        row_number() OVER (ORDER BY beyond, last_read_at, turn) AS rank,
                        coalesce(sum(greatest(high - next_offset, 0)) OVER (
                            ORDER BY beyond, last_read_at, turn
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS covered_before
                 FROM candidates
             )
             UPDATE cursors c
             SET lease_holder = $9,
                 lease_expires_at = now() + $10::int8 * interval '1 millisecond',
                 lease_end_offset = ch.high,
                 lease_deliveries = CASE WHEN c.lease_holder IS NULL AND c.range_end IS NULL
                                         THEN 1 ELSE c.lease_deliveries + 1 END,
                 lease_released = '{}', available_at = NULL
             FROM chosen ch
             WHERE c.tenant = $1 AND c.group_name = $2 AND c.topic = $3
               AND c.partition = ch.partition AND ch.covered_before < $11
             RETURNING c.partition, c.next_offset, ch.high, c.lease_deliveries, ch.rank, c.acked_offsets",
        )
        .bind(request.tenant.as_str())
        .bind(request.group.as_str())
        .bind(request.topic.as_str())
        .bind(&partitions)
        .bind(&highs)
        .bind(most)
        .bind(rotation)
        .bind(count)
        .bind(holder)
        .bind(millis)
        .bind(request.wanted.max(1))
        .fetch_all(self.pool())
        .await
        .map_err(Error::db("lease partitions"))?;
        // Read in the order they were chosen: messages first, least
        // recently read first, ties rotating.
        rows.sort_by_key(|row| row.4);
        let leased: Vec<LeasedPartition> = rows
            .into_iter()
            .map(
                |(partition, next_offset, end_offset, deliveries, _, acked)| LeasedPartition {
                    partition,
                    next_offset,
                    end_offset,
                    deliveries,
                    acked,
                },
            )
            .collect();
        Ok(Lease {
            store: Some(self.clone()),
            holder,
            tenant: request.tenant.as_str().to_owned(),
            group: request.group.as_str().to_owned(),
            topic: request.topic.as_str().to_owned(),
            partitions: leased,
        })
    }
}
