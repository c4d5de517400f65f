//! `/v1/tenants/{tenant}/groups`: consumer groups with their lag and when
//! they were last used, resets to the earliest offset, the latest, or a
//! point in time, and deletion.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenancy::store::PositionFilter;
use tenancy::{GroupName, Store, TenantName, TopicName};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType};
use utoipa::openapi::{KnownFormat, RefOr, Type};
use utoipa::{PartialSchema, ToSchema};

use super::AuditActor;
use crate::error::ApiError;
use crate::groups::{GroupView, Groups, Seek};
use crate::kafka::{KafkaGroups, OffsetTarget};
use crate::name_schemas as names;
use crate::openapi::AdminErrors;

/// A tenant's consumer groups, their lag and when they were last used.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path)),
    responses((status = 200, body = Vec<GroupView>), AdminErrors))]
#[get("/tenants/{tenant}/groups")]
pub async fn list(
    store: web::Data<Store>,
    groups: web::Data<Groups>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path)?;
    store.tenant(&tenant).await?;
    let views = groups.views(&tenant, PositionFilter::default()).await?;
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
    groups: web::Data<Groups>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
    body: web::Json<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path.0)?;
    let group = GroupName::parse(&path.1)?;
    let topic = TopicName::parse(&tenant, &body.topic)?;
    let target = Seek::To(target(&body.to)?);
    let offsets = groups
        .seek(&tenant, &actor.0, &group, &topic, target)
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
