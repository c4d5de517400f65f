//! Tenants and their quotas.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{tenant_id, tenant_id_exclusive, QuotaRow, Store};
use crate::audit::{self, Actor, Change};
use crate::error::{Error, ObjectKind, Result};
use crate::names::TenantName;
use crate::quota::{Quota, QuotaPatch};

/// A tenant as stored, with counts of what it owns.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub disabled: bool,
    pub quota: Quota,
    pub users: i64,
    pub topics: i64,
    /// Consumer groups, which `quota.max_groups` bounds.
    pub groups: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an update of a tenant may change; unset fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub quota: Option<QuotaPatch>,
    pub disabled: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    name: String,
    disabled: bool,
    #[sqlx(flatten)]
    quota: QuotaRow,
    users: i64,
    topics: i64,
    groups: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        Tenant {
            name: row.name,
            disabled: row.disabled,
            quota: row.quota.into(),
            users: row.users,
            topics: row.topics,
            groups: row.groups,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const SELECT_TENANT: &str = "
    SELECT t.name, t.disabled, t.created_at, t.updated_at,
           q.requests_per_second, q.bytes_per_second, q.burst_seconds,
           q.max_topics, q.max_partitions, q.max_groups, q.max_concurrent_consumes, q.max_streams,
           (SELECT count(*) FROM users u WHERE u.tenant_id = t.id) AS users,
           (SELECT count(*) FROM topics p WHERE p.tenant_id = t.id) AS topics,
           (SELECT count(*) FROM consumer_groups g WHERE g.tenant = t.name) AS groups
    FROM tenants t JOIN quotas q ON q.tenant_id = t.id";

fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Creates a tenant with a complete, already-validated quota.
    pub async fn create_tenant(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        quota: Quota,
    ) -> Result<Tenant> {
        quota.validate()?;
        let mut tx = self.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO tenants (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(tenant.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::db("create the tenant"))?;
        let id = id.ok_or_else(|| Error::exists(ObjectKind::Tenant, tenant.as_str()))?;
        sqlx::query(
            "INSERT INTO quotas (tenant_id, requests_per_second, bytes_per_second, burst_seconds, max_topics, max_partitions,
                                 max_groups, max_concurrent_consumes, max_streams)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(to_db(quota.requests_per_second.into()))
        .bind(to_db(quota.bytes_per_second))
        .bind(to_db(quota.burst_seconds.into()))
        .bind(to_db(quota.max_topics.into()))
        .bind(to_db(quota.max_partitions.into()))
        .bind(to_db(quota.max_groups.into()))
        .bind(to_db(quota.max_concurrent_consumes.into()))
        .bind(to_db(quota.max_streams.into()))
        .execute(&mut *tx)
        .await
        .map_err(Error::db("store the quota"))?;
        let change = Change {
            action: "tenant.create",
            tenant: Some(tenant.as_str()),
            target: tenant.as_str(),
            details: json!({ "quota": quota }),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit().await.map_err(Error::db("commit the tenant"))?;
        self.tenant(tenant).await
    }

    /// All tenants, by name.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let rows: Vec<TenantRow> = sqlx::query_as(&format!("{SELECT_TENANT} ORDER BY t.name"))
            .fetch_all(&self.pool)
            .await
            .map_err(Error::db("list tenants"))?;
        Ok(rows.into_iter().map(Tenant::from).collect())
    }

    /// One tenant.
    pub async fn tenant(&self, tenant: &TenantName) -> Result<Tenant> {
        let row: Option<TenantRow> = sqlx::query_as(&format!("{SELECT_TENANT} WHERE t.name = $1"))
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::db("read the tenant"))?;
        row.map(Tenant::from)
            .ok_or_else(|| Error::not_found(ObjectKind::Tenant, tenant.as_str()))
    }

    /// Changes a tenant's quota and/or disabled flag.
    pub async fn update_tenant(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        patch: &TenantPatch,
    ) -> Result<Tenant> {
        let current = self.tenant(tenant).await?;
        let quota = match &patch.quota {
            Some(q) => current.quota.apply(q)?,
            None => current.quota,
        };
        let mut tx = self.begin().await?;
        let id = tenant_id(&mut tx, tenant).await?;
        if let Some(disabled) = patch.disabled {
            sqlx::query("UPDATE tenants SET disabled = $2, updated_at = now() WHERE id = $1")
                .bind(id)
                .bind(disabled)
                .execute(&mut *tx)
                .await
                .map_err(Error::db("update the tenant"))?;
        }
        if patch.quota.is_some() {
            sqlx::query(
                "UPDATE quotas SET requests_per_second = $2, bytes_per_second = $3, burst_seconds = $4,
                        max_topics = $5, max_partitions = $6, max_groups = $7,
                        max_concurrent_consumes = $8, max_streams = $9, updated_at = now()
                 WHERE tenant_id = $1",
            )
            .bind(id)
            .bind(to_db(quota.requests_per_second.into()))
            .bind(to_db(quota.bytes_per_second))
            .bind(to_db(quota.burst_seconds.into()))
            .bind(to_db(quota.max_topics.into()))
            .bind(to_db(quota.max_partitions.into()))
            .bind(to_db(quota.max_groups.into()))
            .bind(to_db(quota.max_concurrent_consumes.into()))
            .bind(to_db(quota.max_streams.into()))
            .execute(&mut *tx)
            .await
            .map_err(Error::db("update the quota"))?;
            sqlx::query("UPDATE tenants SET updated_at = now() WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(Error::db("update the tenant"))?;
        }
        let change = Change {
            action: "tenant.update",
            tenant: Some(tenant.as_str()),
            target: tenant.as_str(),
            details: json!({ "quota": patch.quota.map(|_| quota), "disabled": patch.disabled }),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit().await.map_err(Error::db("commit the tenant"))?;
        self.tenant(tenant).await
    }

    /// Deletes a tenant. One that still owns users or topics is refused
    /// unless `force`, which removes them (and their grants) too. Topics are
    /// removed here only as records: deleting them from Kafka is the
    /// caller's job, done before this call.
    pub async fn delete_tenant(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        force: bool,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let id = tenant_id_exclusive(&mut tx, tenant).await?;
        let (users, topics): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM users WHERE tenant_id = $1),
                    (SELECT count(*) FROM topics WHERE tenant_id = $1)",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::db("count the tenant's users and topics"))?;
        if (users > 0 || topics > 0) && !force {
            return Err(Error::TenantInUse {
                name: tenant.as_str().to_owned(),
                users,
                topics,
            });
        }
        for statement in [
            "DELETE FROM users WHERE tenant_id = $1",
            "DELETE FROM topics WHERE tenant_id = $1",
            "DELETE FROM tenants WHERE id = $1",
        ] {
            sqlx::query(statement)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(Error::db("delete the tenant"))?;
        }
        let change = Change {
            action: "tenant.delete",
            tenant: Some(tenant.as_str()),
            target: tenant.as_str(),
            details: json!({ "force": force, "users_deleted": users, "topics_deleted": topics }),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit()
            .await
            .map_err(Error::db("commit the deletion"))?;
        Ok(())
    }
}
