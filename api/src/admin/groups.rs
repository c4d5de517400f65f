//! `/v1/tenants/{tenant}/groups`: consumer groups with their lag and when
//! they were last used, resets to the earliest offset, the latest, or a
//! point in time, and deletion.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenancy::{GroupName, Store, TenantName, TopicName};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType};
use utoipa::openapi::{KnownFormat, RefOr, Type};
use utoipa::{PartialSchema, ToSchema};

use super::AuditActor;
use crate::error::ApiError;
use crate::kafka::{KafkaGroups, OffsetTarget, TopicAdmin};
use crate::name_schemas as names;
use crate::openapi::AdminErrors;

/// A group's position and lag on one partition.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionLag {
    partition: i32,
    /// The next offset the group will receive.
    offset: i64,
    high: Option<i64>,
    lag: Option<i64>,
}

/// A consumer group on one topic.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    #[schema(value_type = names::GroupName)]
    group: String,
    /// The group id Kafka tooling shows.
    kafka_group: String,
    /// `null` for a group with no cursors (its topics were deleted).
    #[schema(value_type = Option<names::TopicName>)]
    topic: Option<String>,
    /// Messages not yet delivered, over all partitions; `null` when Kafka
    /// could not be asked.
    lag: Option<i64>,
    partitions: Vec<PartitionLag>,
    /// When a GET last used the group (to within a minute); it is deleted
    /// once unused for `consume.group_retention`.
    last_used_at: Option<DateTime<Utc>>,
}

/// A tenant's consumer groups, their lag and when they were last used.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path)),
    responses((status = 200, body = Vec<GroupView>), AdminErrors))]
#[get("/tenants/{tenant}/groups")]
pub async fn list(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path)?;
    store.tenant(&tenant).await?;
    let mut unlisted: BTreeMap<String, DateTime<Utc>> = store
        .list_groups(&tenant)
        .await?
        .into_iter()
        .map(|g| (g.group_name, g.last_used_at))
        .collect();
    let used: HashMap<String, DateTime<Utc>> = unlisted.clone().into_iter().collect();
    let mut by_group: BTreeMap<(String, String), Vec<(i32, i64)>> = BTreeMap::new();
    for row in store.cursors(&tenant).await? {
        by_group
            .entry((row.group_name, row.topic))
            .or_default()
            .push((row.partition, row.next_offset));
    }
    let mut highs: HashMap<String, Option<HashMap<i32, i64>>> = HashMap::new();
    let mut views = Vec::new();
    for ((group, topic), cursors) in by_group {
        if !highs.contains_key(&topic) {
            let described = topics
                .describe(&topic)
                .await
                .ok()
                .map(|d| d.partitions.iter().map(|p| (p.partition, p.high)).collect());
            highs.insert(topic.clone(), described);
        }
        let marks = highs.get(&topic).and_then(Option::as_ref);
        let partitions: Vec<PartitionLag> = cursors
            .into_iter()
            .map(|(partition, offset)| {
                let high = marks.and_then(|m| m.get(&partition).copied());
                PartitionLag {
                    partition,
                    offset,
                    high,
                    lag: high.map(|h| (h - offset).max(0)),
                }
            })
            .collect();
        let lag = partitions.iter().map(|p| p.lag).sum::<Option<i64>>();
        unlisted.remove(&group);
        views.push(GroupView {
            kafka_group: format!("{tenant}.{group}"),
            last_used_at: used.get(&group).copied(),
            group,
            topic: Some(topic),
            lag,
            partitions,
        });
    }
    for (group, last_used_at) in unlisted {
        views.push(GroupView {
            kafka_group: format!("{tenant}.{group}"),
            group,
            topic: None,
            lag: Some(0),
            partitions: Vec::new(),
            last_used_at: Some(last_used_at),
        });
    }
    views.sort_by(|a, b| (&a.group, &a.topic).cmp(&(&b.group, &b.topic)));
    Ok(HttpResponse::Ok().json(views))
}

/// `{"topic": "acme.orders", "to": "earliest" | "latest" | "<RFC 3339>" | <ms>}`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    #[schema(value_type = names::TopicName)]
    topic: String,
    #[schema(schema_with = ResetTo::schema)]
    to: Value,
}

/// The schema of `to`: what [`target`] accepts, which no Rust type spells.
struct ResetTo;

impl PartialSchema for ResetTo {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(SchemaType::Type(Type::String));
        OneOfBuilder::new()
            .item(string().enum_values(Some(["earliest", "latest"])))
            .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))))
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Integer))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0)),
            )
            .description(Some(
                "\"earliest\", \"latest\", an RFC 3339 time, or milliseconds since the epoch",
            ))
            .into()
    }
}

/// Where a reset moved a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetView {
    #[schema(value_type = names::GroupName)]
    group: GroupName,
    partitions: Vec<PartitionOffset>,
    #[schema(value_type = names::TopicName)]
    topic: TopicName,
}

/// A partition and the next offset the group will receive on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionOffset {
    offset: i64,
    partition: i32,
}

fn target(to: &Value) -> Result<OffsetTarget, ApiError> {
    let invalid = || {
        ApiError::from(tenancy::ValidationError::new(
            "to",
            "must be \"earliest\", \"latest\", an RFC 3339 time or milliseconds since the epoch",
        ))
    };
    match to {
        Value::String(s) if s == "earliest" => Ok(OffsetTarget::Earliest),
        Value::String(s) if s == "latest" => Ok(OffsetTarget::Latest),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| OffsetTarget::Timestamp(t.timestamp_millis()))
            .map_err(|_| invalid()),
        Value::Number(n) => n
            .as_i64()
            .filter(|ms| *ms >= 0)
            .map(OffsetTarget::Timestamp)
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

/// Move a group's positions on a topic: to the earliest offset, the latest,
/// or a point in time.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("group" = names::GroupName, Path)),
    responses((status = 200, body = ResetView), AdminErrors))]
#[post("/tenants/{tenant}/groups/{group}/reset")]
pub async fn reset(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
    body: web::Json<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path.0)?;
    let group = GroupName::parse(&path.1)?;
    let topic = TopicName::parse(&tenant, &body.topic)?;
    let target = target(&body.to)?;
    store.topic(&tenant, &topic).await?;
    let offsets = topics.offsets_for(topic.as_str(), target).await?;
    let lows = topics
        .offsets_for(topic.as_str(), OffsetTarget::Earliest)
        .await?;
    // A reset may create the group: it counts against max_groups too.
    store.admit_group(&tenant, &group).await?;
    store.ensure_cursors(&tenant, &group, &topic, &lows).await?;
    store
        .reset_cursors(&tenant, &actor.0, &group, &topic, &offsets)
        .await?;
    let partitions = offsets
        .iter()
        .map(|&(partition, offset)| PartitionOffset { offset, partition })
        .collect();
    Ok(HttpResponse::Ok().json(ResetView {
        group,
        partitions,
        topic,
    }))
}

/// Removes the Kafka groups that the mirror made for deleted groups.
#[derive(Debug, Clone)]
pub struct GroupCleanup {
    pub kafka: Arc<KafkaGroups>,
    /// How long a mirror flush already under way on some node may take to
    /// land (`consume.mirror_interval` plus a margin): the Kafka group
    /// is deleted once more after it, as such a flush re-creates it.
    pub settle: Option<Duration>,
}

impl GroupCleanup {
    async fn delete_kafka_group(&self, kafka_group: String) {
        if let Err(err) = self.kafka.delete(std::slice::from_ref(&kafka_group)).await {
            tracing::warn!(%kafka_group, error = %err, "the group is deleted, but not yet its Kafka group");
        }
        if let Some(settle) = self.settle {
            let kafka = self.kafka.clone();
            tokio::spawn(async move {
                tokio::time::sleep(settle).await;
                if let Err(err) = kafka.delete(std::slice::from_ref(&kafka_group)).await {
                    tracing::warn!(%kafka_group, error = %err, "cannot delete the Kafka group of a deleted group");
                }
            });
        }
    }
}

/// Delete a group: its cursors, its place in `max_groups`, and its mirrored
/// Kafka group (best effort: a Kafka outage is logged, not answered).
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("group" = names::GroupName, Path)),
    responses((status = 204, description = "Deleted"), AdminErrors))]
#[delete("/tenants/{tenant}/groups/{group}")]
pub async fn delete(
    store: web::Data<Store>,
    cleanup: web::Data<GroupCleanup>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path.0)?;
    let group = GroupName::parse(&path.1)?;
    store.delete_group(&tenant, &actor.0, &group).await?;
    cleanup.delete_kafka_group(group.kafka_id(&tenant)).await;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reset_targets_are_earliest_latest_a_time_or_milliseconds() {
        assert_eq!(target(&json!("earliest")).unwrap(), OffsetTarget::Earliest);
        assert_eq!(target(&json!("latest")).unwrap(), OffsetTarget::Latest);
        assert_eq!(
            target(&json!("2023-11-14T22:13:25Z")).unwrap(),
            OffsetTarget::Timestamp(1_700_000_005_000)
        );
        assert_eq!(
            target(&json!(1_700_000_007_000_i64)).unwrap(),
            OffsetTarget::Timestamp(1_700_000_007_000)
        );
        for bad in [
            json!("yesterday"),
            json!(-1),
            json!(null),
            json!({ "at": 1 }),
        ] {
            assert!(target(&bad).is_err(), "{bad}");
        }
    }
}
