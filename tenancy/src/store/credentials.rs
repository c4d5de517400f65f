//! What the data plane needs to authenticate and authorize a user.

use secrecy::SecretString;

use super::{QuotaRow, Store};
use crate::error::{Error, Result};
use crate::grant::Grant;
use crate::names::{GrantPrefix, TenantName};
use crate::quota::Quota;

/// A user's stored credentials and rights, as one row set. The hash is a
/// secret in the sense that it must never be logged or returned.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub tenant: TenantName,
    pub password_hash: SecretString,
    /// The user or its tenant is disabled: authentication must fail.
    pub disabled: bool,
    pub grants: Vec<Grant>,
    pub quota: Quota,
}

#[derive(sqlx::FromRow)]
struct Row {
    tenant: String,
    password_hash: String,
    user_disabled: bool,
    tenant_disabled: bool,
    #[sqlx(flatten)]
    quota: QuotaRow,
    prefixes: Vec<String>,
    reads: Vec<bool>,
    writes: Vec<bool>,
    manages: Vec<bool>,
}

impl Store {
    /// Looks a user up by its full name (`acme.app`). `None` if there is no
    /// such user; the caller must treat that exactly like a wrong password.
    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT t.name AS tenant, u.password_hash, u.disabled AS user_disabled, t.disabled AS tenant_disabled,
                    q.requests_per_second, q.bytes_per_second, q.burst_seconds, q.max_topics, q.max_partitions,
                    q.max_groups, q.max_concurrent_consumes, q.max_streams,
                    coalesce(array_agg(g.prefix ORDER BY g.prefix) FILTER (WHERE g.prefix IS NOT NULL), '{}') AS prefixes,
                    coalesce(array_agg(g.can_read ORDER BY g.prefix) FILTER (WHERE g.prefix IS NOT NULL), '{}') AS reads,
                    coalesce(array_agg(g.can_write ORDER BY g.prefix) FILTER (WHERE g.prefix IS NOT NULL), '{}') AS writes,
                    coalesce(array_agg(g.can_manage ORDER BY g.prefix) FILTER (WHERE g.prefix IS NOT NULL), '{}') AS manages
             FROM users u
             JOIN tenants t ON t.id = u.tenant_id
             JOIN quotas q ON q.tenant_id = t.id
             LEFT JOIN grants g ON g.user_id = u.id
             WHERE u.name = $1
             GROUP BY t.name, u.password_hash, u.disabled, t.disabled, q.requests_per_second, q.bytes_per_second,
                      q.burst_seconds, q.max_topics, q.max_partitions, q.max_groups,
                      q.max_concurrent_consumes, q.max_streams",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::db("look up credentials"))?;
        let Some(row) = row else { return Ok(None) };
        let tenant = TenantName::parse(&row.tenant)?;
        let grants = row
            .prefixes
            .iter()
            .zip(row.reads.iter().zip(row.writes.iter()))
            .zip(row.manages.iter())
            .map(|((prefix, (read, write)), manage)| Grant {
                prefix: GrantPrefix::parse(&tenant, prefix)
                    .unwrap_or_else(|_| GrantPrefix::unchecked(prefix)),
                read: *read,
                write: *write,
                manage: *manage,
            })
            .collect();
        Ok(Some(Credentials {
            username: username.to_owned(),
            tenant,
            password_hash: SecretString::from(row.password_hash),
            disabled: row.user_disabled || row.tenant_disabled,
            grants,
            quota: row.quota.into(),
        }))
    }
}
