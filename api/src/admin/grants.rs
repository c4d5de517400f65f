//! `/v1/tenants/{tenant}/users/{user}/grants`: add, list, remove.

use actix_web::{web, HttpResponse};
use tenancy::{GrantPrefix, Store};

use super::users::{tenant_and_user, GrantBody};
use super::AuditActor;
use crate::error::ApiError;

pub async fn add(
    store: web::Data<Store>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
    body: web::Json<GrantBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    let grant = body.parse(&tenant)?;
    store.add_grant(&tenant, &actor.0, &user, &grant).await?;
    Ok(HttpResponse::Created().json(grant))
}

pub async fn list(
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    Ok(HttpResponse::Ok().json(store.user(&tenant, &user).await?.grants))
}

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
