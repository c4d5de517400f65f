//! The OpenAPI 3.1 documents, generated with utoipa from the types the
//! handlers use: the public API at `/openapi.json` on the public listener,
//! and the public plus the admin API at `/openapi.json` on the admin
//! listener. A test keeps the route list in step with the server.
//!
//! The operations are declared here, next to each other, rather than on the
//! handlers, so that the whole contract reads in one place.
// The functions below exist only to carry their `#[utoipa::path]`.
#![allow(dead_code)]

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::admin::{groups, tenants, topics, users};
use crate::consume::OutMessage;
use crate::error::ErrorBody;
use crate::kafka::PartitionInfo;
use crate::produce::request::JsonMessage;
use crate::produce::response::{Failure, MessageResult, Offset, Offsets};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Produce.
#[utoipa::path(post, path = "/topic/{topic}", tag = "data plane", security(("basic" = [])),
    params(
        ("topic" = String, Path, description = "`<tenant>.<name>`"),
        ("format" = Option<String>, Query, description = "`json` (default) or `raw`: the body is one value, byte for byte"),
        ("encoding" = Option<String>, Query, description = "`base64`: keys, values and header values are base64"),
        ("key" = Option<String>, Query, description = "the key of a raw message"),
    ),
    request_body(content = Vec<JsonMessage>, description = "A JSON array of messages (or, with format=raw, any bytes)"),
    responses(
        (status = 200, description = "Every message acknowledged, offsets in request order", body = Offsets),
        (status = 400, description = "Bad input; or Kafka refused a record or its timestamp for good, and then `results` (as in Failure) says which", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, description = "Over a limit; or Kafka refused a message as too large, and then `results` (as in Failure) says which", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "Some or all not written; `results` says which", body = Failure),
        (status = 504, description = "Some outcomes unknown; `results` says which", body = Failure),
    ))]
fn produce() {}

/// Consume.
#[utoipa::path(get, path = "/topic/{topic}", tag = "data plane", security(("basic" = [])),
    params(
        ("topic" = String, Path),
        ("limit" = Option<u32>, Query, description = "1..=consume.max_limit, default 1"),
        ("group" = Option<String>, Query, description = "a group of the tenant; default: the user's own"),
        ("wait" = Option<u64>, Query, description = "long poll, ms, up to consume.max_wait_ms"),
        ("encoding" = Option<String>, Query, description = "`base64`"),
    ),
    responses(
        (status = 200, description = "Up to `limit` messages; each delivered once per group", body = Vec<OutMessage>,
            headers(
                ("Sluice-Skipped-Messages" = i64, description = "messages skipped because the group's position had fallen behind retention (0 with Sluice-Cursor-Reset)"),
                ("Sluice-Cursor-Reset" = String, description = "`truncated`: the group's position lay beyond the end of the log and moved to the end"),
            )),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`group_limit_reached`: a new group past the tenant's max_groups", body = ErrorBody),
        (status = 429, description = "`rate_limited`, or `too_many_consumes` past the tenant's concurrent consumes on this node; with Retry-After", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
fn consume() {}

/// Who am I, my grants, quota and usage.
#[utoipa::path(get, path = "/me", tag = "data plane", security(("basic" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
fn me() {}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Object)))]
fn healthz() {}

/// Readiness: Postgres and Kafka answered the last background check (at
/// most about 1 s old), and the node is not draining.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Object), (status = 503, body = Object)))]
fn readyz() {}

macro_rules! admin_op {
    ($name:ident, $method:ident, $path:literal, $summary:literal, body = $body:ty, ok = $ok:literal, $($resp:tt)*) => {
        #[doc = $summary]
        #[utoipa::path($method, path = $path, tag = "admin", security(("admin_token" = [])),
            request_body = $body,
            responses((status = $ok, $($resp)*), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
                      (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
        fn $name() {}
    };
    ($name:ident, $method:ident, $path:literal, $summary:literal, ok = $ok:literal, $($resp:tt)*) => {
        #[doc = $summary]
        #[utoipa::path($method, path = $path, tag = "admin", security(("admin_token" = [])),
            responses((status = $ok, $($resp)*), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
                      (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
        fn $name() {}
    };
}

admin_op!(
    create_tenant,
    post,
    "/v1/tenants",
    "Create a tenant.",
    body = tenants::CreateTenant,
    ok = 201,
    body = tenancy::Tenant
);
admin_op!(list_tenants, get, "/v1/tenants", "List tenants.", ok = 200, body = Vec<tenancy::Tenant>);
admin_op!(
    show_tenant,
    get,
    "/v1/tenants/{tenant}",
    "Show a tenant.",
    ok = 200,
    body = tenancy::Tenant
);
admin_op!(
    update_tenant,
    patch,
    "/v1/tenants/{tenant}",
    "Change quotas, disable or enable.",
    body = tenancy::TenantPatch,
    ok = 200,
    body = tenancy::Tenant
);
admin_op!(
    delete_tenant,
    delete,
    "/v1/tenants/{tenant}",
    "Delete a tenant (`?force=true` removes its users and topics).",
    ok = 204,
    description = "Deleted"
);
admin_op!(
    create_user,
    post,
    "/v1/tenants/{tenant}/users",
    "Create a user; the password is shown once.",
    body = users::CreateUser,
    ok = 201,
    body = tenancy::NewCredentials
);
admin_op!(list_users, get, "/v1/tenants/{tenant}/users", "List users.", ok = 200, body = Vec<tenancy::User>);
admin_op!(
    show_user,
    get,
    "/v1/tenants/{tenant}/users/{user}",
    "Show a user.",
    ok = 200,
    body = tenancy::User
);
admin_op!(
    update_user,
    patch,
    "/v1/tenants/{tenant}/users/{user}",
    "Disable or enable a user.",
    body = users::UpdateUser,
    ok = 200,
    body = tenancy::User
);
admin_op!(
    delete_user,
    delete,
    "/v1/tenants/{tenant}/users/{user}",
    "Delete a user.",
    ok = 204,
    description = "Deleted"
);
admin_op!(
    rotate_password,
    post,
    "/v1/tenants/{tenant}/users/{user}/password",
    "Rotate the password; shown once.",
    ok = 200,
    body = tenancy::NewCredentials
);
admin_op!(
    add_grant,
    post,
    "/v1/tenants/{tenant}/users/{user}/grants",
    "Add a grant.",
    body = users::GrantBody,
    ok = 201,
    body = tenancy::Grant
);
admin_op!(list_grants, get, "/v1/tenants/{tenant}/users/{user}/grants", "List a user's grants.", ok = 200, body = Vec<tenancy::Grant>);
admin_op!(
    remove_grant,
    delete,
    "/v1/tenants/{tenant}/users/{user}/grants/{prefix}",
    "Remove the grant on a prefix.",
    ok = 204,
    description = "Removed"
);
admin_op!(
    create_topic,
    post,
    "/v1/tenants/{tenant}/topics",
    "Create a topic in Kafka.",
    body = topics::CreateTopic,
    ok = 201,
    body = topics::TopicView
);
admin_op!(list_topics, get, "/v1/tenants/{tenant}/topics", "List topics with watermarks.", ok = 200, body = Vec<topics::TopicView>);
admin_op!(
    show_topic,
    get,
    "/v1/tenants/{tenant}/topics/{topic}",
    "Show a topic.",
    ok = 200,
    body = topics::TopicView
);
admin_op!(
    delete_topic,
    delete,
    "/v1/tenants/{tenant}/topics/{topic}",
    "Delete a topic from Kafka.",
    ok = 204,
    description = "Deleted"
);
admin_op!(list_groups, get, "/v1/tenants/{tenant}/groups", "Consumer groups and their lag.", ok = 200, body = Vec<groups::GroupView>);
admin_op!(
    reset_group,
    post,
    "/v1/tenants/{tenant}/groups/{group}/reset",
    "Move a group's positions on a topic.",
    body = groups::ResetBody,
    ok = 200,
    body = Object
);
admin_op!(
    delete_group,
    delete,
    "/v1/tenants/{tenant}/groups/{group}",
    "Delete a group: its cursors, its place in max_groups and its mirrored Kafka group.",
    ok = 204,
    description = "Deleted"
);
admin_op!(audit, get, "/v1/audit", "The audit log, newest first.", ok = 200, body = Vec<tenancy::AuditEntry>);
admin_op!(
    metrics,
    get,
    "/metrics",
    "Prometheus metrics (text format). Open unless `admin.metrics_token` is set; then it, or the admin token, is required as a bearer token.",
    ok = 200,
    content_type = "text/plain",
    body = String
);

/// The public API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "sluice", description = "Multi-tenant HTTPS queue service in front of Kafka"),
    paths(produce, consume, me, healthz, readyz),
    components(schemas(ErrorBody, Offsets, Offset, Failure, MessageResult, OutMessage, JsonMessage)),
    modifiers(&Security),
)]
pub struct PublicApi;

/// The admin API, served on the admin listener only.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        create_tenant, list_tenants, show_tenant, update_tenant, delete_tenant,
        create_user, list_users, show_user, update_user, delete_user, rotate_password,
        add_grant, list_grants, remove_grant,
        create_topic, list_topics, show_topic, delete_topic,
        list_groups, reset_group, delete_group, audit, metrics, healthz, readyz,
    ),
    components(schemas(ErrorBody, PartitionInfo, tenancy::Quota, tenancy::QuotaPatch)),
    modifiers(&Security),
)]
pub struct AdminApi;

/// `GET /openapi.json` on the public listener.
pub async fn public_document() -> HttpResponse {
    HttpResponse::Ok().json(PublicApi::openapi())
}

/// `GET /openapi.json` on the admin listener: both APIs.
pub async fn admin_document() -> HttpResponse {
    let mut document = PublicApi::openapi();
    document.merge(AdminApi::openapi());
    HttpResponse::Ok().json(document)
}
