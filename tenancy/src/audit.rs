//! The audit log: who changed what, when, on which target. Rows are written
//! in the same transaction as the change they describe, so a change without
//! its audit row cannot exist.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgConnection;

use crate::error::{Error, Result};

/// Who made a change. For the admin API this is the bearer-token holder,
/// optionally named by the operator's CLI; for the data plane, the user
/// ([`Actor::user`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// Keeps only printable, bounded input: the name comes from a request
    /// header and must not be able to forge log lines.
    pub fn new(name: &str) -> Self {
        let clean: String = name
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(64)
            .collect();
        if clean.trim().is_empty() {
            Actor("admin".to_owned())
        } else {
            Actor(clean)
        }
    }

    /// A data-plane user acting on its own tenant's groups (a seek, a
    /// dead-letter policy): `user:<name>`, so that the audit log tells a
    /// tenant's own change from an operator's.
    pub fn user(username: &str) -> Self {
        let clean: String = username
            .chars()
            .filter(char::is_ascii_graphic)
            .take(64)
            .collect();
        Actor(format!("user:{clean}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One audit row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub tenant: Option<String>,
    pub target: String,
    pub details: serde_json::Value,
}

/// Filters for listing the audit log; all optional, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only rows with an id below this one: for paging backwards.
    pub before_id: Option<i64>,
    pub limit: Option<u32>,
}

/// Default and maximum page sizes of the audit listing.
pub const AUDIT_DEFAULT_LIMIT: u32 = 100;
pub const AUDIT_MAX_LIMIT: u32 = 1_000;

/// A change about to be recorded. `details` must never hold a secret; the
/// callers in this crate only ever put names, flags and quotas there.
pub(crate) struct Change<'a> {
    pub action: &'static str,
    pub tenant: Option<&'a str>,
    pub target: &'a str,
    pub details: serde_json::Value,
}

pub(crate) async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    change: Change<'_>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (actor, action, tenant, target, details) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(actor.as_str())
    .bind(change.action)
    .bind(change.tenant)
    .bind(change.target)
    .bind(change.details)
    .execute(&mut *conn)
    .await
    .map_err(Error::db("write the audit log"))?;
    // Every node listens on this channel and drops what it cached about the
    // target; Postgres delivers it only if the transaction commits.
    let payload = serde_json::json!({ "action": change.action, "tenant": change.tenant, "target": change.target });
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(payload.to_string())
        .execute(conn)
        .await
        .map_err(Error::db("notify the other nodes"))?;
    Ok(())
}

/// The LISTEN/NOTIFY channel on which every tenancy change is announced.
pub const CHANGES_CHANNEL: &str = "sluice_tenancy_changes";

/// A change as announced on [`CHANGES_CHANNEL`].
#[derive(Debug, Clone, Deserialize)]
pub struct ChangeNotice {
    pub action: String,
    pub tenant: Option<String>,
    pub target: String,
}
