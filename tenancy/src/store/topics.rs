//! The topics sluice manages: a record per Kafka topic, so that quotas on
//! topics and partitions can be enforced and tenants cannot be deleted with
//! topics still in them.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Postgres, Transaction};

use super::{tenant_id, tenant_id_exclusive, unsigned, Store};
use crate::audit::{self, Actor, Change};
use crate::error::{Error, ObjectKind, Result};
use crate::names::{TenantName, TopicName};

/// A managed topic as the store knows it.
#[derive(Debug, Clone)]
pub struct TopicRecord {
    pub name: String,
    pub partitions: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    partitions: i32,
    created_at: DateTime<Utc>,
}

impl From<Row> for TopicRecord {
    fn from(row: Row) -> Self {
        TopicRecord {
            name: row.name,
            partitions: unsigned(row.partitions.into()),
            created_at: row.created_at,
        }
    }
}

/// A topic that passed the quota checks and is recorded, but not yet
/// committed. The caller creates it in Kafka, then calls
/// [`TopicReservation::commit`]; dropping the reservation (because Kafka
/// refused) rolls the record back, so the store and Kafka never disagree.
#[derive(Debug)]
pub struct TopicReservation {
    tx: Transaction<'static, Postgres>,
    tenant: TenantName,
    topic: TopicName,
    partitions: u32,
}

impl TopicReservation {
    /// Records the audit row and commits.
    pub async fn commit(mut self, actor: &Actor, config: serde_json::Value) -> Result<()> {
        let change = Change {
            action: "topic.create",
            tenant: Some(self.tenant.as_str()),
            target: self.topic.as_str(),
            details: json!({ "partitions": self.partitions, "config": config }),
        };
        audit::record(&mut self.tx, actor, change).await?;
        self.tx
            .commit()
            .await
            .map_err(Error::db("commit the topic"))
    }
}

impl Store {
    /// Checks the tenant's topic and partition quotas and records the topic,
    /// holding the tenant's row lock so that concurrent creations cannot
    /// both squeeze under the quota.
    pub async fn reserve_topic(
        &self,
        tenant: &TenantName,
        topic: &TopicName,
        partitions: u32,
    ) -> Result<TopicReservation> {
        let mut tx = self.begin().await?;
        let id = tenant_id_exclusive(&mut tx, tenant).await?;
        let (topics, used, max_topics, max_partitions): (i64, i64, i32, i32) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM topics WHERE tenant_id = $1),
                    (SELECT coalesce(sum(partitions), 0)::bigint FROM topics WHERE tenant_id = $1),
                    q.max_topics, q.max_partitions
             FROM quotas q WHERE q.tenant_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::db("read the tenant's quota"))?;
        if topics + 1 > i64::from(max_topics) {
            return Err(Error::QuotaExceeded {
                what: "a new topic",
                detail: format!("the tenant has {topics} of at most {max_topics} topics"),
            });
        }
        if used + i64::from(partitions) > i64::from(max_partitions) {
            return Err(Error::QuotaExceeded {
                what: "the partitions",
                detail: format!("the tenant uses {used} of at most {max_partitions} partitions; {partitions} more asked"),
            });
        }
        let inserted = sqlx::query(
            "INSERT INTO topics (tenant_id, name, partitions) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(id)
        .bind(topic.as_str())
        .bind(i32::try_from(partitions).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await
        .map_err(Error::db("record the topic"))?;
        if inserted.rows_affected() == 0 {
            return Err(Error::exists(ObjectKind::Topic, topic.as_str()));
        }
        Ok(TopicReservation {
            tx,
            tenant: tenant.clone(),
            topic: topic.clone(),
            partitions,
        })
    }

    /// The tenant's topics, by name.
    pub async fn list_topics(&self, tenant: &TenantName) -> Result<Vec<TopicRecord>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(Error::db("acquire a connection"))?;
        let id = tenant_id(&mut conn, tenant).await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT name, partitions, created_at FROM topics WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("list topics"))?;
        Ok(rows.into_iter().map(TopicRecord::from).collect())
    }

    /// One topic of the tenant.
    pub async fn topic(&self, tenant: &TenantName, topic: &TopicName) -> Result<TopicRecord> {
        self.list_topics(tenant)
            .await?
            .into_iter()
            .find(|t| t.name == topic.as_str())
            .ok_or_else(|| Error::not_found(ObjectKind::Topic, topic.as_str()))
    }

    /// Forgets a topic; the caller has deleted it from Kafka already.
    pub async fn delete_topic(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        topic: &TopicName,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let id = tenant_id(&mut tx, tenant).await?;
        let deleted = sqlx::query("DELETE FROM topics WHERE tenant_id = $1 AND name = $2")
            .bind(id)
            .bind(topic.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Error::db("delete the topic"))?;
        if deleted.rows_affected() == 0 {
            return Err(Error::not_found(ObjectKind::Topic, topic.as_str()));
        }
        sqlx::query("DELETE FROM cursors WHERE topic = $1")
            .bind(topic.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Error::db("delete the topic's cursors"))?;
        let change = Change {
            action: "topic.delete",
            tenant: Some(tenant.as_str()),
            target: topic.as_str(),
            details: json!({}),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit().await.map_err(Error::db("commit the deletion"))
    }
}
