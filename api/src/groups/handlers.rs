//! `/topic/{topic}/groups`: a tenant's own groups on a topic, on the data
//! plane. Every route needs `read` on the topic; moves are audited with
//! the user as actor.

use actix_web::{get, post, put, web, HttpResponse};
use tenancy::{Actor, GroupName, TopicName};

use super::{GroupSettings, GroupView, Groups, SeekBody};
use crate::auth::{Access, Admitted};
use crate::error::{ApiError, ErrorBody};
use crate::name_schemas as names;

/// The topic, read-authorized, and the group of a `/{topic}/groups/{group}`
/// path.
fn target(user: &Admitted, path: &(String, String)) -> Result<(TopicName, GroupName), ApiError> {
    let topic = user.authorize(&path.0, Access::Read)?;
    Ok((topic, GroupName::parse(&path.1)?))
}

/// The tenant's groups on a topic: per partition the next offset, the
/// high watermark, the lag and any leased range.
#[utoipa::path(tag = "data plane", security(("basic" = [])),
    params(("topic" = names::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant, with `read`")),
    responses((status = 200, body = Vec<GroupView>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/topic/{topic}/groups")]
pub async fn list(
    user: Admitted,
    path: web::Path<String>,
    groups: web::Data<Groups>,
) -> Result<HttpResponse, ApiError> {
    let topic = user.authorize(&path, Access::Read)?;
    Ok(HttpResponse::Ok().json(groups.on_topic(&user.tenant, &topic).await?))
}

/// One of the tenant's groups on a topic, with its dead-letter policy.
#[utoipa::path(tag = "data plane", security(("basic" = [])),
    params(("topic" = names::TopicName, Path), ("group" = names::GroupName, Path)),
    responses((status = 200, body = GroupView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "`topic_not_found`, or `group_not_found`: the group has no position on the topic", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/topic/{topic}/groups/{group}")]
pub async fn show(
    user: Admitted,
    path: web::Path<(String, String)>,
    groups: web::Data<Groups>,
) -> Result<HttpResponse, ApiError> {
    let (topic, group) = target(&user, &path)?;
    Ok(HttpResponse::Ok().json(groups.one(&user.tenant, &topic, &group).await?))
}

/// Move a group on a topic: to the earliest offset, the latest, the first
/// message at or after a time, or explicit offsets. Waits for the GETs in
/// flight; ends manual-mode receipts; audited as `group.reset`.
#[utoipa::path(tag = "data plane", security(("basic" = [])),
    params(("topic" = names::TopicName, Path), ("group" = names::GroupName, Path)),
    request_body = super::seek::SeekShape,
    responses((status = 200, description = "The group where it now stands", body = GroupView),
        (status = 400, description = "`invalid_seek`, `invalid_partition`, `malformed_json`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`group_limit_reached`: a new group past the tenant's max_groups", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/topic/{topic}/groups/{group}/seek")]
pub async fn seek(
    user: Admitted,
    path: web::Path<(String, String)>,
    body: web::Json<SeekBody>,
    groups: web::Data<Groups>,
) -> Result<HttpResponse, ApiError> {
    let (topic, group) = target(&user, &path)?;
    let actor = Actor::user(&user.username);
    groups
        .seek(&user.tenant, &actor, &group, &topic, body.seek()?)
        .await?;
    Ok(HttpResponse::Ok().json(groups.one(&user.tenant, &topic, &group).await?))
}

/// Set or clear a group's dead-letter policy and its filter on the topic;
/// a field left out keeps its value. The dead-letter topic must be a topic
/// of the tenant, under the user's `write` grant. Audited as
/// `group.dead_letters` and `group.filter`.
#[utoipa::path(tag = "data plane", security(("basic" = [])),
    params(("topic" = names::TopicName, Path), ("group" = names::GroupName, Path)),
    request_body = GroupSettings,
    responses((status = 200, description = "The group with its policy and filter", body = GroupView),
        (status = 400, description = "`invalid_dead_letters`, `invalid_filter` (naming the position of the error), `invalid_topic`, `malformed_json`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "no `read` on the topic, or no `write` on the dead-letter topic", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`group_limit_reached`: a new group past the tenant's max_groups", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[put("/topic/{topic}/groups/{group}")]
pub async fn update(
    user: Admitted,
    path: web::Path<(String, String)>,
    body: web::Json<GroupSettings>,
    groups: web::Data<Groups>,
) -> Result<HttpResponse, ApiError> {
    let (topic, group) = target(&user, &path)?;
    let change = body.check(&user, &topic)?;
    groups.update(&user, &group, &topic, change).await?;
    Ok(HttpResponse::Ok().json(groups.one(&user.tenant, &topic, &group).await?))
}
