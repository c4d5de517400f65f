//! Reading the audit log back.

use sqlx::{Postgres, QueryBuilder};

use super::Store;
use crate::audit::{AuditEntry, AuditFilter, AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT};
use crate::error::{Error, Result, ValidationError};

impl Store {
    /// Audit rows matching every filter given, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let limit = filter.limit.unwrap_or(AUDIT_DEFAULT_LIMIT);
        if limit == 0 || limit > AUDIT_MAX_LIMIT {
            return Err(
                ValidationError::new("limit", format!("must be 1..={AUDIT_MAX_LIMIT}")).into(),
            );
        }
        let mut query: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT id, at, actor, action, tenant, target, details FROM audit_log WHERE TRUE",
        );
        if let Some(tenant) = &filter.tenant {
            query.push(" AND tenant = ").push_bind(tenant);
        }
        if let Some(action) = &filter.action {
            query.push(" AND action = ").push_bind(action);
        }
        if let Some(actor) = &filter.actor {
            query.push(" AND actor = ").push_bind(actor);
        }
        if let Some(target) = &filter.target {
            query.push(" AND target = ").push_bind(target);
        }
        if let Some(since) = filter.since {
            query.push(" AND at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            query.push(" AND at < ").push_bind(until);
        }
        if let Some(before) = filter.before_id {
            query.push(" AND id < ").push_bind(before);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        query
            .build_query_as::<AuditEntry>()
            .fetch_all(&self.pool)
            .await
            .map_err(Error::db("read the audit log"))
    }
}
