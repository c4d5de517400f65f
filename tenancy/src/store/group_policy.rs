//! A group's dead-letter policy, set by its own tenant: a range delivered
//! more than `max_deliveries` times goes to `dead_letter_topic` (a topic of
//! the same tenant) instead of being delivered again.

use serde_json::json;

use super::Store;
use crate::audit::{self, Actor, Change};
use crate::error::{Error, ObjectKind, Result, ValidationError};
use crate::names::{GroupName, TenantName, TopicName};

/// Most deliveries a policy may allow before dead-lettering.
pub const MAX_DELIVERIES_LIMIT: i32 = 1000;

/// Where a group's messages go after too many deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetters {
    /// Deliveries of a range before it is dead-lettered: 1..=1000.
    pub max_deliveries: i32,
    pub dead_letter_topic: TopicName,
}

impl DeadLetters {
    /// Checks the bounds the schema also enforces, so that a bad value is
    /// a 400 that names the field rather than a database error.
    pub fn new(max_deliveries: i32, dead_letter_topic: TopicName) -> Result<Self> {
        if !(1..=MAX_DELIVERIES_LIMIT).contains(&max_deliveries) {
            return Err(ValidationError::new(
                "dead_letters",
                format!("max_deliveries must be 1..={MAX_DELIVERIES_LIMIT}"),
            )
            .into());
        }
        Ok(Self {
            max_deliveries,
            dead_letter_topic,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    max_deliveries: Option<i32>,
    dead_letter_topic: Option<String>,
}

impl PolicyRow {
    fn into_policy(self, tenant: &TenantName) -> Option<DeadLetters> {
        let topic = TopicName::parse(tenant, self.dead_letter_topic.as_deref()?).ok()?;
        Some(DeadLetters {
            max_deliveries: self.max_deliveries?,
            dead_letter_topic: topic,
        })
    }
}

impl Store {
    /// Sets (`Some`) or clears (`None`) a group's dead-letter policy,
    /// audited as `group.dead_letters`. The group must exist: the caller
    /// admits it first, within `max_groups`.
    pub async fn set_dead_letters(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        group: &GroupName,
        policy: Option<&DeadLetters>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE consumer_groups SET max_deliveries = $3, dead_letter_topic = $4
             WHERE tenant = $1 AND group_name = $2",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(policy.map(|p| p.max_deliveries))
        .bind(policy.map(|p| p.dead_letter_topic.as_str()))
        .execute(&mut *tx)
        .await
        .map_err(Error::db("set the dead-letter policy"))?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found(ObjectKind::Group, group.as_str()));
        }
        let change = Change {
            action: "group.dead_letters",
            tenant: Some(tenant.as_str()),
            target: group.as_str(),
            details: json!({
                "max_deliveries": policy.map(|p| p.max_deliveries),
                "dead_letter_topic": policy.map(|p| p.dead_letter_topic.as_str()),
            }),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit()
            .await
            .map_err(Error::db("commit the dead-letter policy"))
    }

    /// A group's dead-letter policy; `None` when it has none. A group that
    /// does not exist is `group_not_found`.
    pub async fn dead_letters(
        &self,
        tenant: &TenantName,
        group: &GroupName,
    ) -> Result<Option<DeadLetters>> {
        let row: Option<PolicyRow> = sqlx::query_as(
            "SELECT max_deliveries, dead_letter_topic FROM consumer_groups
             WHERE tenant = $1 AND group_name = $2",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::db("read the dead-letter policy"))?;
        let row = row.ok_or_else(|| Error::not_found(ObjectKind::Group, group.as_str()))?;
        Ok(row.into_policy(tenant))
    }
}
