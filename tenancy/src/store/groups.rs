//! Consumer groups as things a tenant owns: counted against `max_groups`,
//! stamped when used, and removed once unused for the retention.
//!
//! A GET registers its group here before any cursor row of the group can
//! exist, so counting rows of `consumer_groups` counts groups. New groups
//! of one tenant are created under a per-tenant advisory lock, so that GETs
//! on any number of nodes cannot together squeeze past the quota.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{tenant_id, Store};
use crate::audit::{self, Actor, Change};
use crate::error::{Error, ObjectKind, Result};
use crate::names::{GroupName, TenantName};

/// What [`Store::admit_group`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAdmission {
    /// The group existed; its last-used time is now.
    Existing,
    /// The group is new and fitted in the tenant's `max_groups`.
    Created,
}

/// A group as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupRecord {
    pub group_name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// The dead-letter policy (see `group_policy`): both set or neither.
    pub max_deliveries: Option<i32>,
    pub dead_letter_topic: Option<String>,
}

/// A group the retention sweep removed, for the caller to clean up what
/// lives outside Postgres (the mirrored Kafka group).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExpiredGroup {
    pub tenant: String,
    pub group_name: String,
}

/// Serializes the creation of new groups of one tenant, cluster-wide.
const GROUP_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('sluice.groups:' || $1, 0))";

/// Lets one node at a time sweep expired groups.
const SWEEP_LOCK: &str =
    "SELECT pg_try_advisory_xact_lock(hashtextextended('sluice.group-retention', 0))";

impl Store {
    /// Marks a group as used now, creating it if it is new and the tenant
    /// has fewer groups than its quota's `max_groups` (read here, under the
    /// lock, so a quota just lowered applies at once). Refused: nothing is
    /// created and [`Error::GroupLimitReached`] says why.
    pub async fn admit_group(
        &self,
        tenant: &TenantName,
        group: &GroupName,
    ) -> Result<GroupAdmission> {
        let touched = sqlx::query(
            "UPDATE consumer_groups SET last_used_at = now() WHERE tenant = $1 AND group_name = $2",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .execute(&self.pool)
        .await
        .map_err(Error::db("mark the group as used"))?;
        if touched.rows_affected() > 0 {
            return Ok(GroupAdmission::Existing);
        }
        let mut tx = self.begin().await?;
        sqlx::query(GROUP_LOCK)
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Error::db("lock the tenant's groups"))?;
        let counted: Option<(i64, i32, bool)> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM consumer_groups WHERE tenant = t.name),
                    q.max_groups,
                    EXISTS (SELECT 1 FROM consumer_groups WHERE tenant = t.name AND group_name = $2)
             FROM tenants t JOIN quotas q ON q.tenant_id = t.id
             WHERE t.name = $1",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::db("count the tenant's groups"))?;
        let (groups, max_groups, exists) =
            counted.ok_or_else(|| Error::not_found(ObjectKind::Tenant, tenant.as_str()))?;
        if !exists && groups >= i64::from(max_groups) {
            return Err(Error::GroupLimitReached {
                tenant: tenant.as_str().to_owned(),
                max: super::unsigned(max_groups.into()),
            });
        }
        sqlx::query(
            "INSERT INTO consumer_groups (tenant, group_name) VALUES ($1, $2)
             ON CONFLICT (tenant, group_name) DO UPDATE SET last_used_at = now()",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .execute(&mut *tx)
        .await
        .map_err(Error::db("create the group"))?;
        tx.commit().await.map_err(Error::db("commit the group"))?;
        Ok(if exists {
            GroupAdmission::Existing
        } else {
            GroupAdmission::Created
        })
    }

    /// The tenant's groups, by name.
    pub async fn list_groups(&self, tenant: &TenantName) -> Result<Vec<GroupRecord>> {
        sqlx::query_as(
            "SELECT group_name, created_at, last_used_at, max_deliveries, dead_letter_topic
             FROM consumer_groups
             WHERE tenant = $1 ORDER BY group_name",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(Error::db("list groups"))
    }

    /// Deletes a group and its cursors; returns how many cursor rows went.
    /// A GET in flight for it finds its cursors gone and delivers nothing
    /// more; the next GET naming it creates it afresh (at the earliest
    /// offset), within the quota.
    pub async fn delete_group(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        group: &GroupName,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        tenant_id(&mut tx, tenant).await?;
        let registered =
            sqlx::query("DELETE FROM consumer_groups WHERE tenant = $1 AND group_name = $2")
                .bind(tenant.as_str())
                .bind(group.as_str())
                .execute(&mut *tx)
                .await
                .map_err(Error::db("delete the group"))?
                .rows_affected();
        let cursors = sqlx::query("DELETE FROM cursors WHERE tenant = $1 AND group_name = $2")
            .bind(tenant.as_str())
            .bind(group.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Error::db("delete the group's cursors"))?
            .rows_affected();
        if registered == 0 && cursors == 0 {
            return Err(Error::not_found(ObjectKind::Group, group.as_str()));
        }
        let change = Change {
            action: "group.delete",
            tenant: Some(tenant.as_str()),
            target: group.as_str(),
            details: json!({ "cursors_deleted": cursors }),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit()
            .await
            .map_err(Error::db("commit the group deletion"))?;
        Ok(cursors)
    }

    /// Removes up to `batch` groups unused for longer than `retention`,
    /// with their cursors, and cursor rows left without a group (by a
    /// removal racing a GET) once they too are older than the retention.
    /// Each removal is audited as `group.expire`. One node sweeps at a
    /// time: `None` means another node holds the sweep right now.
    pub async fn expire_groups(
        &self,
        retention: std::time::Duration,
        batch: i64,
    ) -> Result<Option<Vec<ExpiredGroup>>> {
        let mut tx = self.begin().await?;
        let ours: bool = sqlx::query_scalar(SWEEP_LOCK)
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::db("take the group retention lock"))?;
        if !ours {
            return Ok(None);
        }
        let seconds = retention.as_secs_f64();
        // The outer condition is checked again on the locked row, so a GET
        // that marked the group as used meanwhile keeps it.
        let mut expired: Vec<ExpiredGroup> = sqlx::query_as(
            "DELETE FROM consumer_groups g
             USING (SELECT tenant, group_name FROM consumer_groups
                    WHERE last_used_at < now() - $1 * interval '1 second'
                    ORDER BY last_used_at LIMIT $2
                    FOR UPDATE SKIP LOCKED) old
             WHERE g.tenant = old.tenant AND g.group_name = old.group_name
               AND g.last_used_at < now() - $1 * interval '1 second'
             RETURNING g.tenant, g.group_name",
        )
        .bind(seconds)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::db("expire unused groups"))?;
        let (tenants, names): (Vec<String>, Vec<String>) = expired
            .iter()
            .map(|g| (g.tenant.clone(), g.group_name.clone()))
            .unzip();
        sqlx::query(
            "DELETE FROM cursors c USING unnest($1::text[], $2::text[]) AS g(tenant, group_name)
             WHERE c.tenant = g.tenant AND c.group_name = g.group_name",
        )
        .bind(&tenants)
        .bind(&names)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("delete the cursors of expired groups"))?;
        let orphans: Vec<ExpiredGroup> = sqlx::query_as(
            "WITH orphan AS (
                 SELECT c.tenant, c.group_name FROM cursors c
                 WHERE NOT EXISTS (SELECT 1 FROM consumer_groups g
                                   WHERE g.tenant = c.tenant AND g.group_name = c.group_name)
                 GROUP BY c.tenant, c.group_name
                 HAVING max(c.updated_at) < now() - $1 * interval '1 second'
                 LIMIT $2),
             gone AS (
                 DELETE FROM cursors c USING orphan o
                 WHERE c.tenant = o.tenant AND c.group_name = o.group_name
                 RETURNING c.tenant, c.group_name)
             SELECT DISTINCT tenant, group_name FROM gone",
        )
        .bind(seconds)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::db("delete cursors left without a group"))?;
        expired.extend(orphans);
        let actor = Actor::new("sluice (group retention)");
        for group in &expired {
            let change = Change {
                action: "group.expire",
                tenant: Some(&group.tenant),
                target: &group.group_name,
                details: json!({ "unused_for_more_than_seconds": retention.as_secs() }),
            };
            audit::record(&mut tx, &actor, change).await?;
        }
        tx.commit()
            .await
            .map_err(Error::db("commit the group expiry"))?;
        Ok(Some(expired))
    }
}
