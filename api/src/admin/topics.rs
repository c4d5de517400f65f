//! `/v1/tenants/{tenant}/topics`: topics created in Kafka with partitions
//! and config, listed with watermarks, and deleted; within the tenant's
//! topic and partition quotas.

use std::collections::BTreeMap;

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use tenancy::{Store, TenantName, TopicName, TopicRecord};
use utoipa::ToSchema;

use super::views::TopicView;
use super::AuditActor;
use crate::consume;
use crate::error::ApiError;
use crate::kafka::{TopicAdmin, ALLOWED_TOPIC_CONFIG};
use crate::name_schemas as names;
use crate::openapi::AdminErrors;

/// Most partitions one topic may have, whatever the quota.
pub const MAX_PARTITIONS_PER_TOPIC: u32 = 1_000;

/// `POST /v1/tenants/{tenant}/topics`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    #[schema(value_type = names::TopicName)]
    name: String,
    /// 1 unless given; at most 1,000, and within the tenant's quota.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 1000, default = 1)]
    partitions: u32,
    /// The configured `kafka.replication_factor` unless given.
    #[schema(minimum = 1)]
    replication_factor: Option<i32>,
    /// Kafka topic config. Only these keys: cleanup.policy,
    /// compression.type, delete.retention.ms, max.message.bytes,
    /// min.compaction.lag.ms, min.insync.replicas, retention.bytes,
    /// retention.ms, segment.bytes, segment.ms; Kafka checks the values.
    #[serde(default)]
    config: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

/// A topic with what Kafka says about it; `partitions_detail` is absent when
/// Kafka could not be asked.
async fn view(topics: &TopicAdmin, record: TopicRecord) -> TopicView {
    let partitions_detail = match topics.describe(&record.name).await {
        Ok(description) => Some(description.partitions),
        Err(err) => {
            tracing::warn!(topic = %record.name, error = %err, "cannot describe topic");
            None
        }
    };
    TopicView::new(record, partitions_detail)
}

fn topic_path(path: &(String, String)) -> Result<(TenantName, TopicName), ApiError> {
    let tenant = TenantName::parse(&path.0)?;
    let topic = TopicName::parse(&tenant, &path.1)?;
    Ok((tenant, topic))
}

/// Create a topic in Kafka, within the tenant's topic and partition quotas.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path)),
    responses((status = 201, body = TopicView, headers(("Location" = String))), AdminErrors))]
#[post("/tenants/{tenant}/topics")]
pub async fn create(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    actor: AuditActor,
    path: web::Path<String>,
    body: web::Json<CreateTopic>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path)?;
    let topic = TopicName::parse(&tenant, &body.name)?;
    if body.partitions == 0 || body.partitions > MAX_PARTITIONS_PER_TOPIC {
        return Err(invalid(
            "partitions",
            format!("must be 1..={MAX_PARTITIONS_PER_TOPIC}"),
        ));
    }
    if body.replication_factor.is_some_and(|rf| rf < 1) {
        return Err(invalid("replication_factor", "must be at least 1".into()));
    }
    if let Some(key) = body
        .config
        .keys()
        .find(|k| !ALLOWED_TOPIC_CONFIG.contains(&k.as_str()))
    {
        return Err(invalid(
            "config",
            format!(
                "'{key}' cannot be set per topic; allowed: {}",
                ALLOWED_TOPIC_CONFIG.join(", ")
            ),
        ));
    }
    let reservation = store
        .reserve_topic(&tenant, &topic, body.partitions)
        .await?;
    let partitions = i32::try_from(body.partitions).unwrap_or(i32::MAX);
    topics
        .create(
            topic.as_str(),
            partitions,
            body.replication_factor,
            &body.config,
        )
        .await?;
    if let Err(err) = reservation
        .commit(&actor.0, serde_json::json!(body.config))
        .await
    {
        // Kafka has the topic but the store does not: undo, so they agree.
        if let Err(undo) = topics.delete(topic.as_str()).await {
            tracing::error!(topic = %topic, error = %undo, "topic left in Kafka without a record");
        }
        return Err(err.into());
    }
    let record = store.topic(&tenant, &topic).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/tenants/{tenant}/topics/{topic}")))
        .json(view(&topics, record).await))
}

fn invalid(field: &'static str, reason: String) -> ApiError {
    ApiError::from(tenancy::ValidationError::new(field, reason))
}

/// List a tenant's topics with their watermarks.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path)),
    responses((status = 200, body = Vec<TopicView>), AdminErrors))]
#[get("/tenants/{tenant}/topics")]
pub async fn list(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path)?;
    let mut views = Vec::new();
    for record in store.list_topics(&tenant).await? {
        views.push(view(&topics, record).await);
    }
    Ok(HttpResponse::Ok().json(views))
}

/// Show a topic.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("topic" = names::TopicName, Path)),
    responses((status = 200, body = TopicView), AdminErrors))]
#[get("/tenants/{tenant}/topics/{topic}")]
pub async fn show(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, topic) = topic_path(&path)?;
    let record = store.topic(&tenant, &topic).await?;
    Ok(HttpResponse::Ok().json(view(&topics, record).await))
}

/// Delete a topic, from Kafka too, once every node has stopped reading it.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("topic" = names::TopicName, Path)),
    responses((status = 204, description = "Deleted"), AdminErrors))]
#[delete("/tenants/{tenant}/topics/{topic}")]
pub async fn delete(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    consumption: web::Data<consume::Service>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, topic) = topic_path(&path)?;
    store.topic(&tenant, &topic).await?;
    stop_reading(&store, &consumption, &tenant, std::slice::from_ref(&topic)).await?;
    topics.delete(topic.as_str()).await?;
    store.delete_topic(&tenant, &actor.0, &topic).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes every topic of a tenant from Kafka, for a forced tenant delete.
pub async fn delete_all_in_kafka(
    store: &Store,
    topics: &TopicAdmin,
    consumption: &consume::Service,
    tenant: &TenantName,
) -> Result<(), ApiError> {
    let names = store
        .list_topics(tenant)
        .await?
        .into_iter()
        .map(|record| TopicName::parse(tenant, &record.name))
        .collect::<Result<Vec<_>, _>>()?;
    stop_reading(store, consumption, tenant, &names).await?;
    for name in &names {
        topics.delete(name.as_str()).await?;
    }
    Ok(())
}

/// Makes every node stop reading topics about to be deleted, and waits
/// until they have: this node's readers at once, the others on the
/// announcement, within the longest read they may have in progress.
async fn stop_reading(
    store: &Store,
    consumption: &consume::Service,
    tenant: &TenantName,
    names: &[TopicName],
) -> Result<(), ApiError> {
    for name in names {
        store.announce_topic_deleting(tenant, name).await?;
        consumption.release_topic(name.as_str()).await;
    }
    if !names.is_empty() {
        tokio::time::sleep(consumption.release_grace()).await;
    }
    Ok(())
}
