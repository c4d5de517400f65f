//! `/v1/tenants/{tenant}/topics`: topics created in Kafka with partitions
//! and config, listed with watermarks, and deleted; within the tenant's
//! topic and partition quotas. The work is done by [`Topics`], which the
//! data plane's self-service routes share.

use std::collections::BTreeMap;

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use tenancy::{TenantName, TopicName};
use utoipa::ToSchema;

use super::views::TopicView;
use super::AuditActor;
use crate::error::ApiError;
use crate::name_schemas as names;
use crate::openapi::AdminErrors;
use crate::topics::{TopicSpec, Topics};

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
    topics: web::Data<Topics>,
    actor: AuditActor,
    path: web::Path<String>,
    body: web::Json<CreateTopic>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path)?;
    let body = body.into_inner();
    let spec = TopicSpec {
        name: TopicName::parse(&tenant, &body.name)?,
        partitions: body.partitions,
        replication_factor: body.replication_factor,
        config: body.config,
    };
    let view = topics.create(&tenant, &actor.0, &spec).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/v1/tenants/{tenant}/topics/{}", spec.name),
        ))
        .json(view))
}

/// List a tenant's topics with their watermarks.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path)),
    responses((status = 200, body = Vec<TopicView>), AdminErrors))]
#[get("/tenants/{tenant}/topics")]
pub async fn list(
    topics: web::Data<Topics>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path)?;
    Ok(HttpResponse::Ok().json(topics.list(&tenant).await?))
}

/// Show a topic.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("topic" = names::TopicName, Path)),
    responses((status = 200, body = TopicView), AdminErrors))]
#[get("/tenants/{tenant}/topics/{topic}")]
pub async fn show(
    topics: web::Data<Topics>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, topic) = topic_path(&path)?;
    Ok(HttpResponse::Ok().json(topics.show(&tenant, &topic).await?))
}

/// Delete a topic, from Kafka too, once every node has stopped reading it.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("topic" = names::TopicName, Path)),
    responses((status = 204, description = "Deleted"), AdminErrors))]
#[delete("/tenants/{tenant}/topics/{topic}")]
pub async fn delete(
    topics: web::Data<Topics>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, topic) = topic_path(&path)?;
    topics.delete(&tenant, &actor.0, &topic).await?;
    Ok(HttpResponse::NoContent().finish())
}
