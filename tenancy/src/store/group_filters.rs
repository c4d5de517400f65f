//! A group's filter on one topic, set by its own tenant: the node skips
//! the messages that do not match for that group. The text is stored as
//! written; the API parses it (and refuses a bad one) before it gets here.

use std::collections::HashMap;

use serde_json::json;

use super::Store;
use crate::audit::{self, Actor, Change};
use crate::error::{Error, ObjectKind, Result};
use crate::names::{GroupName, TenantName, TopicName};

impl Store {
    /// Sets (`Some`) or clears (`None`) the filter of `group` on `topic`,
    /// audited as `group.filter` (which tells every node to drop the filter
    /// it cached). The group must exist: the caller admits it first.
    pub async fn set_group_filter(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        group: &GroupName,
        topic: &TopicName,
        filter: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let written = match filter {
            Some(filter) => sqlx::query(
                "INSERT INTO group_filters (tenant, group_name, topic, filter)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, group_name, topic)
                 DO UPDATE SET filter = excluded.filter, updated_at = now()",
            )
            .bind(tenant.as_str())
            .bind(group.as_str())
            .bind(topic.as_str())
            .bind(filter),
            None => sqlx::query(
                "DELETE FROM group_filters WHERE tenant = $1 AND group_name = $2 AND topic = $3",
            )
            .bind(tenant.as_str())
            .bind(group.as_str())
            .bind(topic.as_str()),
        };
        written.execute(&mut *tx).await.map_err(|err| match &err {
            // The group or the topic went away since the caller looked.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Error::not_found(ObjectKind::Group, group.as_str())
            }
            _ => Error::db("set the group's filter")(err),
        })?;
        let change = Change {
            action: "group.filter",
            tenant: Some(tenant.as_str()),
            target: group.as_str(),
            details: json!({ "topic": topic.as_str(), "filter": filter }),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit()
            .await
            .map_err(Error::db("commit the group's filter"))
    }

    /// The filter of `group` on `topic`, as written; `None` when it has none.
    pub async fn group_filter(
        &self,
        tenant: &TenantName,
        group: &GroupName,
        topic: &TopicName,
    ) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT filter FROM group_filters
             WHERE tenant = $1 AND group_name = $2 AND topic = $3",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(topic.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::db("read the group's filter"))
    }

    /// Every filter of the tenant's groups, by (group, topic), for the
    /// groups views.
    pub async fn group_filters(
        &self,
        tenant: &TenantName,
    ) -> Result<HashMap<(String, String), String>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT group_name, topic, filter FROM group_filters WHERE tenant = $1")
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(Error::db("list the groups' filters"))?;
        Ok(rows
            .into_iter()
            .map(|(group, topic, filter)| ((group, topic), filter))
            .collect())
    }
}
