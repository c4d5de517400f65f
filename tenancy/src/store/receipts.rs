//! Receipts of manual-mode GETs: acks, nacks and extensions.
//!
//! A manual-mode GET keeps the ranges it answered with leased under a
//! receipt (see [`super::Lease::hold`]): the receipt id is the lease holder
//! on the cursor rows, and a `receipts` row remembers the receipt's tenant,
//! group, topic, expiry and how it was settled, so that a repeated ack is
//! told apart from a late one and from a forged one.
//!
//! Settling a range is computed here, in Rust, from the rows as stored:
//! acked offsets join the partition's acked set, the cursor moves past
//! every settled offset at its head, and whatever is left of the range is
//! released for redelivery (the next lease delivers the same range again,
//! skipping the acked offsets, with one more delivery counted).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use super::Store;
use crate::error::{Error, Result};
use crate::names::{TenantName, TopicName};

/// The receipt a manual-mode answer carries: opaque to clients, and
/// unguessable (a random UUID), so that it is also a capability within its
/// tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt(Uuid);

impl Receipt {
    /// Reads a receipt as a client sent it; anything malformed is simply
    /// not a receipt (and answered like an unknown one).
    pub fn parse(text: &str) -> Result<Self> {
        Uuid::try_parse(text.trim())
            .map(Receipt)
            .map_err(|_| Error::ReceiptNotFound)
    }

    /// The lease holder this receipt names on the cursor rows.
    pub fn holder(self) -> Uuid {
        self.0
    }

    pub fn from_holder(holder: Uuid) -> Self {
        Receipt(holder)
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.simple())
    }
}

/// What to do with a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Ack: the named offsets, or the whole receipt.
    Ack { offsets: Option<Vec<(i32, i64)>> },
    /// Nack: release the named offsets, or the whole receipt, for
    /// redelivery after `delay`.
    Nack {
        offsets: Option<Vec<(i32, i64)>>,
        delay: Duration,
    },
}

/// What a settlement did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// (partition, next offset) of every cursor that moved, for the
    /// mirror to Kafka group offsets.
    pub advances: Vec<(i32, i64)>,
    /// The receipt was already acked: nothing more was done.
    pub repeated: bool,
    /// The group the receipt was for.
    pub group: String,
}

/// One leased range of a receipt, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct HeldRow {
    partition: i32,
    next_offset: i64,
    /// The end of what the receipt's GET delivered.
    end: i64,
    /// The end of the range being delivered: past `end` when a
    /// redelivery was cut short by its `limit`.
    range_end: Option<i64>,
    deliveries: i32,
    acked: Vec<i64>,
    released: Vec<i64>,
}

/// A held row once settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct RowChange {
    partition: i32,
    next_offset: i64,
    acked: Vec<i64>,
    /// The rest of the range still to deliver again; `None` once the whole
    /// range is settled.
    range_end: Option<i64>,
    /// How many times what is left of the range was delivered.
    deliveries: i32,
}

/// Settles one held range: `newly` tells which of its offsets this ack
/// settles. The cursor moves past every settled offset at the head of the
/// range; settled offsets beyond the first unsettled one are remembered so
/// that they are skipped when the rest is delivered again.
///
/// What is left past `end` (a redelivery cut short by its `limit`) was not
/// delivered by this receipt: once everything before it is settled, it
/// counts one delivery less.
fn settle_row(row: &HeldRow, newly: impl Fn(i64) -> bool) -> RowChange {
    let mut acked: BTreeSet<i64> = row.acked.iter().copied().collect();
    acked.extend((row.next_offset..row.end).filter(|&offset| newly(offset)));
    let full_end = row.range_end.unwrap_or(row.end).max(row.end);
    let mut next = row.next_offset;
    while next < full_end && acked.contains(&next) {
        next += 1;
    }
    let deliveries = if next >= full_end {
        0
    } else if next >= row.end {
        (row.deliveries - 1).max(1)
    } else {
        row.deliveries
    };
    RowChange {
        partition: row.partition,
        next_offset: next,
        acked: acked.into_iter().filter(|&offset| offset > next).collect(),
        range_end: (next < full_end).then_some(full_end),
        deliveries,
    }
}

/// The offsets of `partition` in `offsets`.
fn named_in(offsets: &[(i32, i64)], partition: i32) -> BTreeSet<i64> {
    offsets
        .iter()
        .filter(|(p, _)| *p == partition)
        .map(|(_, offset)| *offset)
        .collect()
}

/// A receipt's row as found.
#[derive(Debug, sqlx::FromRow)]
struct ReceiptRow {
    group_name: String,
    settled: Option<String>,
    live: bool,
}

impl Store {
    /// Acks or nacks a receipt of `tenant` on `topic`. A receipt of
    /// another tenant or topic is not found, exactly like a forged one.
    pub async fn settle_receipt(
        &self,
        tenant: &TenantName,
        topic: &TopicName,
        receipt: Receipt,
        settlement: &Settlement,
    ) -> Result<Settled> {
        let mut tx = self.begin().await?;
        let found = lock_receipt(&mut tx, tenant, topic, receipt).await?;
        let acking = matches!(settlement, Settlement::Ack { .. });
        match (found.settled.as_deref(), acking) {
            (Some("acked"), true) | (Some("released"), false) => {
                return Ok(Settled {
                    repeated: true,
                    group: found.group_name,
                    ..Settled::default()
                })
            }
            (Some("acked"), false) => return Err(Error::ReceiptSettled),
            (Some(_), true) => return Err(Error::ReceiptExpired),
            _ if !found.live => return Err(Error::ReceiptExpired),
            _ => {}
        }
        let rows: Vec<HeldRow> = sqlx::query_as(
            "SELECT partition, next_offset, lease_end_offset AS end, range_end,
                    lease_deliveries AS deliveries,
                    acked_offsets AS acked, lease_released AS released
             FROM cursors
             WHERE tenant = $1 AND group_name = $2 AND topic = $3 AND lease_holder = $4
               AND lease_expires_at > clock_timestamp()
             FOR UPDATE",
        )
        .bind(tenant.as_str())
        .bind(&found.group_name)
        .bind(topic.as_str())
        .bind(receipt.holder())
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::db("read the receipt's ranges"))?;
        if rows.is_empty() {
            // Reset, or taken over at the very instant it expired.
            return Err(Error::ReceiptExpired);
        }
        let key = RangeKey {
            tenant: tenant.as_str(),
            group: &found.group_name,
            topic: topic.as_str(),
            receipt,
        };
        let (changes, delay) = match settlement {
            Settlement::Ack { offsets: None } => {
                let changes = rows
                    .iter()
                    .map(|row| settle_row(row, |offset| !row.released.contains(&offset)))
                    .collect::<Vec<_>>();
                (changes, Duration::ZERO)
            }
            Settlement::Ack {
                offsets: Some(named),
            } => {
                let changes = rows
                    .iter()
                    .map(|row| {
                        let mine = named_in(named, row.partition);
                        settle_row(row, |offset| mine.contains(&offset))
                    })
                    .collect::<Vec<_>>();
                (changes, Duration::ZERO)
            }
            Settlement::Nack {
                offsets: None,
                delay,
            } => {
                let changes = rows.iter().map(|row| settle_row(row, |_| false)).collect();
                (changes, *delay)
            }
            Settlement::Nack {
                offsets: Some(named),
                delay,
            } => {
                release_offsets(&mut tx, &key, &rows, named, *delay).await?;
                tx.commit().await.map_err(Error::db("commit the nack"))?;
                return Ok(Settled {
                    group: found.group_name.clone(),
                    ..Settled::default()
                });
            }
        };
        let advances = apply(&mut tx, &key, &rows, &changes, delay, acking).await?;
        tx.commit().await.map_err(Error::db("commit the receipt"))?;
        Ok(Settled {
            advances,
            repeated: false,
            group: found.group_name.clone(),
        })
    }

    /// Moves a live receipt's expiry to `visibility` from now.
    pub async fn extend_receipt(
        &self,
        tenant: &TenantName,
        topic: &TopicName,
        receipt: Receipt,
        visibility: Duration,
    ) -> Result<()> {
        let millis = i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.begin().await?;
        let found = lock_receipt(&mut tx, tenant, topic, receipt).await?;
        match found.settled.as_deref() {
            Some("acked") => return Err(Error::ReceiptSettled),
            Some(_) => return Err(Error::ReceiptExpired),
            None if !found.live => return Err(Error::ReceiptExpired),
            None => {}
        }
        let extended = sqlx::query(
            "UPDATE cursors SET lease_expires_at = clock_timestamp() + $5::int8 * interval '1 millisecond'
             WHERE tenant = $1 AND group_name = $2 AND topic = $3 AND lease_holder = $4
               AND lease_expires_at > clock_timestamp()",
        )
        .bind(tenant.as_str())
        .bind(&found.group_name)
        .bind(topic.as_str())
        .bind(receipt.holder())
        .bind(millis)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("extend the receipt's leases"))?;
        if extended.rows_affected() == 0 {
            return Err(Error::ReceiptExpired);
        }
        sqlx::query(
            "UPDATE receipts SET expires_at = clock_timestamp() + $2::int8 * interval '1 millisecond'
             WHERE id = $1",
        )
        .bind(receipt.holder())
        .bind(millis)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("extend the receipt"))?;
        tx.commit().await.map_err(Error::db("commit the extension"))
    }

    /// Forgets receipts settled or expired longer ago than `keep`: past
    /// that, an ack is answered `receipt_not_found` instead of
    /// `receipt_expired` or a repeated 204.
    pub async fn purge_receipts(&self, keep: Duration) -> Result<u64> {
        let millis = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let purged = sqlx::query(
            "DELETE FROM receipts WHERE expires_at < now() - $1::int8 * interval '1 millisecond'",
        )
        .bind(millis)
        .execute(self.pool())
        .await
        .map_err(Error::db("purge old receipts"))?;
        Ok(purged.rows_affected())
    }
}

/// Finds and locks a receipt of `tenant` on `topic`: one of another
/// tenant or topic is not found, exactly like a forged one.
async fn lock_receipt(
    tx: &mut sqlx::PgConnection,
    tenant: &TenantName,
    topic: &TopicName,
    receipt: Receipt,
) -> Result<ReceiptRow> {
    let found: Option<ReceiptRow> = sqlx::query_as(
        "SELECT group_name, settled, expires_at > clock_timestamp() AS live FROM receipts
         WHERE id = $1 AND tenant = $2 AND topic = $3 FOR UPDATE",
    )
    .bind(receipt.holder())
    .bind(tenant.as_str())
    .bind(topic.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(Error::db("look the receipt up"))?;
    found.ok_or(Error::ReceiptNotFound)
}

/// Writes settled rows back, ends their leases and marks the receipt.
async fn apply(
    tx: &mut sqlx::PgConnection,
    key: &RangeKey<'_>,
    rows: &[HeldRow],
    changes: &[RowChange],
    delay: Duration,
    acking: bool,
) -> Result<Vec<(i32, i64)>> {
    let millis = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    let encoded = serde_json::to_value(changes).unwrap_or_default();
    let moved: Vec<(i32, i64)> = sqlx::query_as(
        "WITH moved AS (
             UPDATE cursors c
             SET updated_at = CASE WHEN c.next_offset = ch.next_offset THEN c.updated_at ELSE now() END,
                 next_offset = ch.next_offset,
                 acked_offsets = array(SELECT x::int8 FROM jsonb_array_elements_text(ch.acked) x),
                 range_end = ch.range_end,
                 lease_deliveries = ch.deliveries,
                 lease_holder = NULL, lease_expires_at = NULL, lease_end_offset = NULL,
                 lease_released = '{}',
                 available_at = CASE WHEN $2::int8 > 0 AND ch.range_end IS NOT NULL
                                     THEN now() + $2::int8 * interval '1 millisecond' END
             FROM jsonb_to_recordset($1) AS ch(partition int4, next_offset int8, acked jsonb, range_end int8, deliveries int4)
             WHERE c.tenant = $5 AND c.group_name = $6 AND c.topic = $7
               AND c.lease_holder = $3 AND c.partition = ch.partition
             RETURNING c.partition, c.next_offset
         ),
         marked AS (
             UPDATE receipts SET settled = $4, settled_at = now(),
                 -- Settled, it is kept `receipt_retention` from now, not
                 -- from the end of a long visibility.
                 expires_at = least(expires_at, now())
             WHERE id = $3
         )
         SELECT partition, next_offset FROM moved",
    )
    .bind(encoded)
    .bind(millis)
    .bind(key.receipt.holder())
    .bind(if acking { "acked" } else { "released" })
    .bind(key.tenant)
    .bind(key.group)
    .bind(key.topic)
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::db("settle the receipt's ranges"))?;
    Ok(moved
        .into_iter()
        .filter(|(partition, next)| {
            rows.iter()
                .any(|row| row.partition == *partition && row.next_offset != *next)
        })
        .collect())
}

/// A nack naming offsets: they are released (delivered again once the
/// receipt's range ends), while the rest stays leased under the receipt.
async fn release_offsets(
    tx: &mut sqlx::PgConnection,
    key: &RangeKey<'_>,
    rows: &[HeldRow],
    named: &[(i32, i64)],
    delay: Duration,
) -> Result<()> {
    let millis = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    let (partitions, offsets): (Vec<i32>, Vec<i64>) = named
        .iter()
        .copied()
        .filter(|(partition, offset)| {
            rows.iter().any(|row| {
                row.partition == *partition && (row.next_offset..row.end).contains(offset)
            })
        })
        .unzip();
    if partitions.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE cursors c
         SET lease_released = array(SELECT DISTINCT x FROM unnest(c.lease_released || r.offsets) x ORDER BY x),
             available_at = CASE WHEN $7::int8 > 0
                                 THEN greatest(c.available_at, now() + $7::int8 * interval '1 millisecond')
                                 ELSE c.available_at END
         FROM (SELECT partition, array_agg(offset_) AS offsets
               FROM unnest($5::int4[], $6::int8[]) AS n(partition, offset_) GROUP BY partition) r
         WHERE c.tenant = $1 AND c.group_name = $2 AND c.topic = $3 AND c.lease_holder = $4
           AND c.partition = r.partition",
    )
    .bind(key.tenant)
    .bind(key.group)
    .bind(key.topic)
    .bind(key.receipt.holder())
    .bind(&partitions)
    .bind(&offsets)
    .bind(millis)
    .execute(&mut *tx)
    .await
    .map_err(Error::db("release the named offsets"))?;
    Ok(())
}

/// The cursor rows a receipt holds: by their primary key's prefix (so the
/// index is used) and the holder.
struct RangeKey<'a> {
    tenant: &'a str,
    group: &'a str,
    topic: &'a str,
    receipt: Receipt,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(next: i64, end: i64, acked: &[i64], released: &[i64]) -> HeldRow {
        HeldRow {
            partition: 0,
            next_offset: next,
            end,
            range_end: Some(end),
            deliveries: 1,
            acked: acked.to_vec(),
            released: released.to_vec(),
        }
    }

    #[test]
    fn the_rest_of_a_redelivery_cut_short_counts_one_delivery_less_once_its_head_is_acked() {
        // Offsets 0..6 delivered once, expired; 0..4 delivered again
        // (limit 4) and acked: 4 and 5 were delivered once.
        let mut held = row(0, 4, &[], &[]);
        held.range_end = Some(6);
        held.deliveries = 2;
        let change = settle_row(&held, |_| true);
        assert_eq!(change.next_offset, 4);
        assert_eq!(change.range_end, Some(6));
        assert_eq!(change.deliveries, 1);
        // Nacked instead, the head keeps its count.
        let change = settle_row(&held, |_| false);
        assert_eq!((change.next_offset, change.deliveries), (0, 2));
    }

    #[test]
    fn a_whole_ack_settles_the_range_and_ends_it() {
        let change = settle_row(&row(40, 50, &[], &[]), |_| true);
        assert_eq!(change.next_offset, 50);
        assert!(change.acked.is_empty());
        assert_eq!(change.range_end, None);
    }

    #[test]
    fn a_partial_ack_moves_past_the_settled_head_and_remembers_the_rest() {
        // 40 and 41 and 45 acked: the cursor moves to 42, 45 is skipped
        // when 42..50 is delivered again.
        let change = settle_row(&row(40, 50, &[], &[]), |o| [40, 41, 45].contains(&o));
        assert_eq!(change.next_offset, 42);
        assert_eq!(change.acked, vec![45]);
        assert_eq!(change.range_end, Some(50));
    }

    #[test]
    fn ninety_nine_of_a_hundred_acked_leaves_exactly_the_one() {
        let change = settle_row(&row(0, 100, &[], &[]), |o| o != 57);
        assert_eq!(change.next_offset, 57);
        assert_eq!(change.acked, (58..100).collect::<Vec<_>>());
        assert_eq!(change.range_end, Some(100));
    }

    #[test]
    fn earlier_partial_acks_count_when_the_rest_is_acked() {
        let change = settle_row(&row(42, 50, &[45], &[]), |o| o != 45);
        assert_eq!(change.next_offset, 50);
        assert_eq!(change.range_end, None);
    }

    #[test]
    fn a_nack_keeps_the_whole_range_for_redelivery() {
        let change = settle_row(&row(42, 50, &[45], &[]), |_| false);
        assert_eq!(change.next_offset, 42);
        assert_eq!(change.acked, vec![45]);
        assert_eq!(change.range_end, Some(50));
    }

    #[test]
    fn named_offsets_are_per_partition() {
        let named = [(0, 1), (1, 2), (0, 3)];
        assert_eq!(named_in(&named, 0), BTreeSet::from([1, 3]));
        assert_eq!(named_in(&named, 2), BTreeSet::new());
    }

    #[test]
    fn receipts_read_back_as_written_and_garbage_is_unknown() {
        let receipt = Receipt::from_holder(Uuid::new_v4());
        assert_eq!(Receipt::parse(&receipt.to_string()).unwrap(), receipt);
        for bad in ["", "nope", "'; DROP TABLE receipts; --"] {
            assert!(matches!(Receipt::parse(bad), Err(Error::ReceiptNotFound)));
        }
    }
}
