//! `/v1/tenants/{tenant}/users/{user}/grants`: add, list, remove.

use actix_web::{delete, get, post, web, HttpResponse};
use tenancy::{GrantPrefix, Store};

use super::users::{tenant_and_user, GrantBody};
use super::views::{self, GrantView};
use super::AuditActor;
use crate::error::ApiError;
use crate::name_schemas as names;
use crate::openapi::AdminErrors;

/// Add a grant.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("user" = names::UserName, Path)),
    responses((status = 201, body = GrantView), AdminErrors))]
#[post("/tenants/{tenant}/users/{user}/grants")]
pub async fn add(
    store: web::Data<Store>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
    body: web::Json<GrantBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    let grant = body.parse(&tenant)?;
    store.add_grant(&tenant, &actor.0, &user, &grant).await?;
    Ok(HttpResponse::Created().json(GrantView::from(grant)))
}

/// List a user's grants.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("user" = names::UserName, Path)),
    responses((status = 200, body = Vec<GrantView>), AdminErrors))]
#[get("/tenants/{tenant}/users/{user}/grants")]
pub async fn list(
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    let grants: Vec<GrantView> = views::all(store.user(&tenant, &user).await?.grants);
    Ok(HttpResponse::Ok().json(grants))
}

/// Remove the grant on a prefix.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(
        ("tenant" = names::TenantName, Path),
        ("user" = names::UserName, Path),
        ("prefix" = names::GrantPrefix, Path),
    ),
    responses((status = 204, description = "Removed"), AdminErrors))]
#[delete("/tenants/{tenant}/users/{user}/grants/{prefix}")]
pub async fn remove(
    store: web::Data<Store>,
    actor: AuditActor,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_seg, user_seg, prefix_seg) = path.into_inner();
    let (tenant, user) = tenant_and_user(&(tenant_seg, user_seg))?;
    let prefix = GrantPrefix::parse(&tenant, &prefix_seg)?;
    store
        .remove_grant(&tenant, &actor.0, &user, &prefix)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
