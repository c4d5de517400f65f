//! `Idempotency-Key` records of produce requests, one row per (tenant,
//! key), shared by every node through Postgres.
//!
//! A request *claims* its key with one `INSERT … ON CONFLICT` statement,
//! so that of two requests with the same key on any two nodes exactly one
//! produces. The claim carries a deadline (`claimed_until`): a node that
//! dies holding it blocks the key only until then. The claimant then
//! either *records* a final answer (2xx, 4xx), which later requests with
//! the same key are answered with, or *releases* the claim (503, 504),
//! keeping which messages Kafka did acknowledge, so that the next attempt
//! sends only the others.

use std::time::Duration;

use uuid::Uuid;

use super::Store;
use crate::error::{Error, Result};
use crate::names::TenantName;

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// This request holds the key and must produce, then record or
    /// release with `claim`. `stored` is what an earlier attempt that
    /// ended in a 503 or 504 left: one entry per message, as the caller
    /// released it.
    Claimed {
        claim: Uuid,
        stored: Option<Vec<u8>>,
    },
    /// The same request already has a final answer: replay it.
    Recorded { status: u16, response: Vec<u8> },
    /// The key was first used with a different request.
    Reused,
    /// Another request holds the key right now.
    InFlight,
}

/// The row as the claim statement saw it before it ran.
#[derive(sqlx::FromRow)]
struct ClaimRow {
    mine: bool,
    stored: Option<Vec<u8>>,
    found: bool,
    same: Option<bool>,
    status: Option<i16>,
    response: Option<Vec<u8>>,
}

/// Milliseconds for an interval bound, saturating.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Claims `key` of `tenant` for a request whose hash is
    /// `request_hash`, for `hold` (the produce deadline: how long a dead
    /// node can block the key) and, once answered, for `ttl`.
    ///
    /// One round trip when the key is new. An expired record is replaced;
    /// a released or abandoned claim of the same request is taken over.
    pub async fn claim_idempotency_key(
        &self,
        tenant: &TenantName,
        key: &str,
        request_hash: &[u8],
        hold: Duration,
        ttl: Duration,
    ) -> Result<KeyClaim> {
        // A concurrent insert committed after this statement's snapshot
        // is neither claimed nor seen: the second try sees it.
        for _ in 0..3 {
            let claim = Uuid::new_v4();
            let row: ClaimRow = sqlx::query_as(
                "WITH claimed AS (
                    INSERT INTO idempotency_keys AS k
                        (tenant, key, request_hash, claim, claimed_until, expires_at)
                    VALUES ($1, $2, $3, $4,
                            clock_timestamp() + $5::int8 * interval '1 millisecond',
                            clock_timestamp() + $6::int8 * interval '1 millisecond')
                    ON CONFLICT (tenant, key) DO UPDATE SET
                        request_hash = EXCLUDED.request_hash,
                        claim = EXCLUDED.claim,
                        claimed_until = EXCLUDED.claimed_until,
                        expires_at = EXCLUDED.expires_at,
                        status = NULL,
                        response = NULL,
                        stored = CASE WHEN k.expires_at <= clock_timestamp() THEN NULL
                                      ELSE k.stored END,
                        created_at = CASE WHEN k.expires_at <= clock_timestamp()
                                          THEN clock_timestamp() ELSE k.created_at END
                    WHERE k.expires_at <= clock_timestamp()
                       OR (k.status IS NULL AND k.request_hash = EXCLUDED.request_hash
                           AND (k.claimed_until IS NULL
                                OR k.claimed_until <= clock_timestamp()))
                    RETURNING k.stored
                )
                SELECT EXISTS (SELECT 1 FROM claimed) AS mine,
                       (SELECT stored FROM claimed) AS stored,
                       k.tenant IS NOT NULL AS found,
                       k.request_hash = $3 AS same,
                       k.status,
                       k.response
                FROM (SELECT 1) AS one
                LEFT JOIN idempotency_keys k ON k.tenant = $1 AND k.key = $2",
            )
            .bind(tenant.as_str())
            .bind(key)
            .bind(request_hash)
            .bind(claim)
            .bind(millis(hold))
            .bind(millis(ttl))
            .fetch_one(self.pool())
            .await
            .map_err(Error::db("claim an idempotency key"))?;
            if row.mine {
                return Ok(KeyClaim::Claimed {
                    claim,
                    stored: row.stored,
                });
            }
            if !row.found {
                continue;
            }
            if row.same != Some(true) {
                return Ok(KeyClaim::Reused);
            }
            return Ok(match (row.status, row.response) {
                (Some(status), Some(response)) => KeyClaim::Recorded {
                    status: u16::try_from(status).unwrap_or(500),
                    response,
                },
                // Released between the snapshot and the insert's check,
                // or still claimed: the caller waits and tries again.
                _ => KeyClaim::InFlight,
            });
        }
        Ok(KeyClaim::InFlight)
    }

    /// Records the final answer of the request holding `claim`. False if
    /// the claim was lost (it outlived its deadline and another request
    /// took the key over).
    pub async fn record_idempotent_answer(
        &self,
        tenant: &TenantName,
        key: &str,
        claim: Uuid,
        status: u16,
        response: &[u8],
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE idempotency_keys
             SET status = $4, response = $5, stored = NULL, claim = NULL, claimed_until = NULL
             WHERE tenant = $1 AND key = $2 AND claim = $3",
        )
        .bind(tenant.as_str())
        .bind(key)
        .bind(claim)
        .bind(i16::try_from(status).unwrap_or(500))
        .bind(response)
        .execute(self.pool())
        .await
        .map_err(Error::db("record an idempotent answer"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Releases `claim` without an answer (a 503 or 504), keeping `stored`
    /// for the next attempt. False if the claim was lost.
    pub async fn release_idempotency_key(
        &self,
        tenant: &TenantName,
        key: &str,
        claim: Uuid,
        stored: &[u8],
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE idempotency_keys SET stored = $4, claim = NULL, claimed_until = NULL
             WHERE tenant = $1 AND key = $2 AND claim = $3",
        )
        .bind(tenant.as_str())
        .bind(key)
        .bind(claim)
        .bind(stored)
        .execute(self.pool())
        .await
        .map_err(Error::db("release an idempotency key"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes expired keys, then each tenant's oldest keys beyond
    /// `max_per_tenant`, so that a tenant flooding unique keys fills only
    /// its own share of the table. Claims still in flight are never
    /// deleted. Idempotent, so nodes may run it at once.
    pub async fn purge_idempotency_keys(&self, max_per_tenant: u64) -> Result<u64> {
        let expired = sqlx::query(
            "DELETE FROM idempotency_keys WHERE expires_at < clock_timestamp()
               AND (claimed_until IS NULL OR claimed_until < clock_timestamp())",
        )
        .execute(self.pool())
        .await
        .map_err(Error::db("purge expired idempotency keys"))?;
        let cap = i64::try_from(max_per_tenant).unwrap_or(i64::MAX);
        let evicted = sqlx::query(
            "DELETE FROM idempotency_keys k
             USING (
                 SELECT t.tenant,
                        (SELECT i.created_at FROM idempotency_keys i
                         WHERE i.tenant = t.tenant
                         ORDER BY i.created_at DESC OFFSET $1 LIMIT 1) AS cutoff
                 FROM (SELECT tenant FROM idempotency_keys
                       GROUP BY tenant HAVING count(*) > $1) t
             ) over
             WHERE k.tenant = over.tenant AND k.created_at <= over.cutoff
               AND (k.claimed_until IS NULL OR k.claimed_until < clock_timestamp())",
        )
        .bind(cap)
        .execute(self.pool())
        .await
        .map_err(Error::db("evict idempotency keys over the per-tenant cap"))?;
        Ok(expired.rows_affected() + evicted.rows_affected())
    }
}
