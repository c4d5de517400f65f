//! What the admin API answers, as its own types: the tenancy crate keeps
//! stored rows and rules, and knows nothing of HTTP or OpenAPI. Each view
//! is built `From` its row and serializes to exactly the JSON the API has
//! always answered, field for field and in the same order.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use tenancy::{AuditEntry, Grant, NewCredentials, Password, Quota, Tenant, TopicRecord, User};
use utoipa::ToSchema;

use crate::kafka::PartitionInfo;
use crate::name_schemas as names;

/// A tenant with its quota and counts of what it owns.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Tenant)]
pub struct TenantView {
    #[schema(value_type = names::TenantName)]
    name: String,
    disabled: bool,
    quota: QuotaView,
    users: i64,
    topics: i64,
    /// Consumer groups, which `quota.max_groups` bounds.
    groups: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            name: t.name,
            disabled: t.disabled,
            quota: t.quota.into(),
            users: t.users,
            topics: t.topics,
            groups: t.groups,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A tenant's limits. Bursts are in seconds of rate, so one number scales
/// both the request and the byte bucket.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Quota)]
pub struct QuotaView {
    requests_per_second: u32,
    bytes_per_second: u64,
    burst_seconds: u32,
    max_topics: u32,
    max_partitions: u32,
    /// Consumer groups the tenant may have at once.
    max_groups: u32,
    /// Consumes (long polls included) the tenant may run at once over the
    /// cluster; each live node admits its share.
    max_concurrent_consumes: u32,
    /// SSE and WebSocket streams the tenant may hold open at once over the
    /// cluster; each live node admits its share.
    max_streams: u32,
}

impl From<Quota> for QuotaView {
    fn from(q: Quota) -> Self {
        Self {
            requests_per_second: q.requests_per_second,
            bytes_per_second: q.bytes_per_second,
            burst_seconds: q.burst_seconds,
            max_topics: q.max_topics,
            max_partitions: q.max_partitions,
            max_groups: q.max_groups,
            max_concurrent_consumes: q.max_concurrent_consumes,
            max_streams: q.max_streams,
        }
    }
}

/// A user; its password hash never leaves the store.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    #[schema(value_type = names::UserName)]
    name: String,
    #[schema(value_type = names::TenantName)]
    tenant: String,
    disabled: bool,
    grants: Vec<GrantView>,
    created_at: DateTime<Utc>,
    password_changed_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            name: u.name,
            tenant: u.tenant,
            disabled: u.disabled,
            grants: u.grants.into_iter().map(GrantView::from).collect(),
            created_at: u.created_at,
            password_changed_at: u.password_changed_at,
        }
    }
}

/// Read, write and/or manage on the topics under a prefix.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Grant)]
pub struct GrantView {
    #[schema(value_type = names::GrantPrefix)]
    prefix: String,
    read: bool,
    write: bool,
    /// Create and delete the tenant's topics under the prefix on the data
    /// plane (`POST /topics`, `DELETE /topics/{topic}`).
    manage: bool,
}

impl From<Grant> for GrantView {
    fn from(g: Grant) -> Self {
        Self {
            prefix: g.prefix.as_str().to_owned(),
            read: g.read,
            write: g.write,
            manage: g.manage,
        }
    }
}

/// A username and its password, shown this once only.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NewCredentials)]
pub struct CredentialsView {
    #[schema(value_type = names::UserName)]
    username: String,
    /// The generated password, shown this once only; absent when the
    /// request imported a `password` or `password_hash`, which is never
    /// echoed. The password stays a secret until it is written out.
    #[serde(serialize_with = "expose", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    password: Option<Password>,
}

fn expose<S: Serializer>(password: &Option<Password>, s: S) -> Result<S::Ok, S::Error> {
    match password {
        Some(password) => s.serialize_str(password.expose()),
        None => s.serialize_none(),
    }
}

impl CredentialsView {
    /// A user created with an imported password: its name only.
    pub fn imported(username: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: None,
        }
    }
}

impl From<NewCredentials> for CredentialsView {
    fn from(c: NewCredentials) -> Self {
        Self {
            username: c.username,
            password: Some(c.password),
        }
    }
}

/// A topic with what Kafka says about it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicView {
    #[schema(value_type = names::TopicName)]
    name: String,
    partitions: u32,
    created_at: DateTime<Utc>,
    /// Absent (`null`) when Kafka could not be asked.
    partitions_detail: Option<Vec<PartitionView>>,
}

impl TopicView {
    pub fn new(record: TopicRecord, detail: Option<Vec<PartitionInfo>>) -> Self {
        Self {
            name: record.name,
            partitions: record.partitions,
            created_at: record.created_at,
            partitions_detail: detail.map(|d| d.into_iter().map(PartitionView::from).collect()),
        }
    }
}

/// One partition's watermarks.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PartitionInfo)]
pub struct PartitionView {
    partition: i32,
    /// The earliest offset still in the log.
    low: i64,
    /// The offset the next message will get.
    high: i64,
}

impl From<PartitionInfo> for PartitionView {
    fn from(p: PartitionInfo) -> Self {
        Self {
            partition: p.partition,
            low: p.low,
            high: p.high,
        }
    }
}

/// One audit row: who changed what, when, on which target.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditEntryView {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    tenant: Option<String>,
    target: String,
    /// What changed; never a secret.
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            tenant: e.tenant,
            target: e.target,
            details: e.details,
        }
    }
}

/// Maps a list of rows to their views.
pub fn all<T, V: From<T>>(rows: Vec<T>) -> Vec<V> {
    rows.into_iter().map(V::from).collect()
}
