//! The Postgres store. Every function that acts inside a tenant takes the
//! tenant first, so tenant scoping is visible at every call site; every
//! change writes its audit row in the same transaction.

mod audit_log;
mod credentials;
mod cursors;
mod grants;
mod group_filters;
mod group_policy;
mod groups;
mod idempotency;
mod leases;
mod nodes;
mod positions;
mod receipts;
mod tenants;
mod topics;
mod users;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};

pub use credentials::Credentials;
pub use group_policy::{DeadLetters, MAX_DELIVERIES_LIMIT};
pub use groups::{ExpiredGroup, GroupAdmission, GroupRecord};
pub use idempotency::KeyClaim;
pub use leases::{HeldRange, Lease, LeaseRequest, LeasedPartition, Settled};
pub use positions::{GroupCursors, LagLeadership, LeasedRange, Position, PositionFilter};
pub use receipts::{Receipt, Settled as ReceiptSettled, Settlement};
pub use tenants::{Tenant, TenantPatch};
pub use topics::{TopicRecord, TopicReservation};
pub use users::User;

use crate::error::{Error, ObjectKind, Result};
use crate::names::{TenantName, UserName};

/// The migrations, embedded in the binary so `sluice migrate` needs no files.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A handle on the tenancy database. Cheap to clone: it is a pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

/// How to reach Postgres. `acquire_timeout` bounds how long a request waits
/// for a connection before it is told the database is unavailable.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Store {
    /// Creates the pool without connecting, so that a node can start (and
    /// report itself not ready) while Postgres is still coming up.
    pub fn connect_lazy(options: &StoreOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy(options.url.expose_secret())
            .map_err(Error::db("parse the database URL"))?;
        Ok(Self { pool })
    }

    /// Connects now, failing if Postgres is unreachable.
    pub async fn connect(options: &StoreOptions) -> Result<Self> {
        let store = Self::connect_lazy(options)?;
        store.ping().await?;
        Ok(store)
    }

    /// Applies the embedded migrations; safe to run on every start.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// A round trip to Postgres, for readiness.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(Error::db("ping the database"))?;
        Ok(())
    }

    /// Connections in the pool, and how many of them are idle.
    pub fn pool_stats(&self) -> (u32, u32) {
        (
            self.pool.size(),
            u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
        )
    }

    /// The underlying pool, for this crate's listeners.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool
            .begin()
            .await
            .map_err(Error::db("begin a transaction"))
    }
}

/// The id of a tenant, locked against deletion until the transaction ends.
async fn tenant_id(conn: &mut PgConnection, tenant: &TenantName) -> Result<i64> {
    locked_tenant_id(
        conn,
        tenant,
        "SELECT id FROM tenants WHERE name = $1 FOR SHARE",
    )
    .await
}

/// The id of a tenant, locked exclusively until the transaction ends: for
/// changes that must not race with each other (quota checks, deletion).
async fn tenant_id_exclusive(conn: &mut PgConnection, tenant: &TenantName) -> Result<i64> {
    locked_tenant_id(
        conn,
        tenant,
        "SELECT id FROM tenants WHERE name = $1 FOR UPDATE",
    )
    .await
}

async fn locked_tenant_id(
    conn: &mut PgConnection,
    tenant: &TenantName,
    query: &'static str,
) -> Result<i64> {
    sqlx::query_scalar(query)
        .bind(tenant.as_str())
        .fetch_optional(conn)
        .await
        .map_err(Error::db("look up the tenant"))?
        .ok_or_else(|| Error::not_found(ObjectKind::Tenant, tenant.as_str()))
}

/// The id of a user inside a tenant: the tenant must exist, then the user.
async fn user_id(conn: &mut PgConnection, tenant: &TenantName, user: &UserName) -> Result<i64> {
    let tenant_id = tenant_id(&mut *conn, tenant).await?;
    sqlx::query_scalar("SELECT id FROM users WHERE tenant_id = $1 AND name = $2 FOR UPDATE")
        .bind(tenant_id)
        .bind(user.as_str())
        .fetch_optional(conn)
        .await
        .map_err(Error::db("look up the user"))?
        .ok_or_else(|| Error::not_found(ObjectKind::User, user.as_str()))
}

/// Converts a non-negative database integer into the unsigned type the
/// model uses; the schema's CHECK constraints make failure impossible, but a
/// clamp is kinder than a panic if someone edits rows by hand.
fn unsigned<T: TryFrom<i64> + Default>(value: i64) -> T {
    T::try_from(value).unwrap_or_default()
}

/// A quota as stored: flattened into the rows of the queries that read it.
#[derive(sqlx::FromRow)]
struct QuotaRow {
    requests_per_second: i32,
    bytes_per_second: i64,
    burst_seconds: i32,
    max_topics: i32,
    max_partitions: i32,
    max_groups: i32,
    max_concurrent_consumes: i32,
    max_streams: i32,
}

impl From<QuotaRow> for crate::quota::Quota {
    fn from(row: QuotaRow) -> Self {
        crate::quota::Quota {
            requests_per_second: unsigned(row.requests_per_second.into()),
            bytes_per_second: unsigned(row.bytes_per_second),
            burst_seconds: unsigned(row.burst_seconds.into()),
            max_topics: unsigned(row.max_topics.into()),
            max_partitions: unsigned(row.max_partitions.into()),
            max_groups: unsigned(row.max_groups.into()),
            max_concurrent_consumes: unsigned(row.max_concurrent_consumes.into()),
            max_streams: unsigned(row.max_streams.into()),
        }
    }
}
