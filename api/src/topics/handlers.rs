//! `/topics`: self-service topics on the data plane (OVH's admin role).
//! A user lists the topics its grants cover, and with a `manage` grant
//! creates and deletes topics under it, within its tenant's quotas;
//! changes are audited with the user as actor (`user:<name>`).

use std::collections::BTreeMap;

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use tenancy::Actor;
use utoipa::ToSchema;

use super::{TopicSpec, Topics};
use crate::admin::views::TopicView;
use crate::auth::{Access, Admitted};
use crate::error::{ApiError, ErrorBody};
use crate::name_schemas as names;

/// `POST /topics`: a topic of the caller's tenant, under its `manage`
/// grant. Replication and topic config are the operator's: they take the
/// node's defaults.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewTopic)]
pub struct NewTopicBody {
    #[schema(value_type = names::TopicName)]
    name: String,
    /// 1 unless given; at most 1,000, and within the tenant's
    /// `max_partitions`.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 1000, default = 1)]
    partitions: u32,
}

fn one() -> u32 {
    1
}

/// The tenant's topics that the caller's grants cover (any right), with
/// their partitions and watermarks.
#[utoipa::path(tag = "data plane", security(("basic" = [])),
    responses((status = 200, body = Vec<TopicView>),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/topics")]
pub async fn list(user: Admitted, topics: web::Data<Topics>) -> Result<HttpResponse, ApiError> {
    let views = topics
        .list_where(&user.tenant, |name| user.sees(name))
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

/// Create a topic under a `manage` grant, within the tenant's
/// `max_topics` and `max_partitions`. Audited as `topic.create` with the
/// actor `user:<username>`.
#[utoipa::path(tag = "data plane", security(("basic" = [])),
    request_body = NewTopicBody,
    responses((status = 201, body = TopicView),
        (status = 400, description = "`invalid_topic`, `invalid_partitions`, `malformed_json`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`forbidden`: no `manage` grant covers the name, or another tenant's", body = ErrorBody),
        (status = 409, description = "`topic_exists`, or `quota_exceeded`: past the tenant's max_topics or max_partitions", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/topics")]
pub async fn create(
    user: Admitted,
    body: web::Json<NewTopicBody>,
    topics: web::Data<Topics>,
) -> Result<HttpResponse, ApiError> {
    let spec = TopicSpec {
        name: user.authorize(&body.name, Access::Manage)?,
        partitions: body.partitions,
        replication_factor: None,
        config: BTreeMap::new(),
    };
    let actor = Actor::user(&user.username);
    let view = topics.create(&user.tenant, &actor, &spec).await?;
    Ok(HttpResponse::Created().json(view))
}

/// Delete a topic under a `manage` grant, from Kafka too, once every node
/// has stopped reading it. Audited as `topic.delete` with the actor
/// `user:<username>`.
#[utoipa::path(tag = "data plane", security(("basic" = [])),
    params(("topic" = names::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant, under a `manage` grant")),
    responses((status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "`forbidden`: no `manage` grant covers the topic, or another tenant's", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[delete("/topics/{topic}")]
pub async fn delete(
    user: Admitted,
    path: web::Path<String>,
    topics: web::Data<Topics>,
) -> Result<HttpResponse, ApiError> {
    let topic = user.authorize(&path, Access::Manage)?;
    let actor = Actor::user(&user.username);
    topics.delete(&user.tenant, &actor, &topic).await?;
    Ok(HttpResponse::NoContent().finish())
}
