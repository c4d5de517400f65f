//! `/v1/tenants`: create, list, show, update (quotas, disable) and delete.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use tenancy::{Quota, QuotaPatch, Store, TenantName, TenantPatch};

use super::AuditActor;
use crate::error::ApiError;
use crate::kafka::TopicAdmin;

/// The quota new tenants get for every field their request leaves out.
#[derive(Debug, Clone, Copy)]
pub struct QuotaDefaults(pub Quota);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    name: String,
    #[serde(default)]
    quota: QuotaPatch,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

pub async fn create(
    store: web::Data<Store>,
    defaults: web::Data<QuotaDefaults>,
    actor: AuditActor,
    body: web::Json<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::parse(&body.name)?;
    let quota = defaults.0.apply(&body.quota)?;
    let tenant = store.create_tenant(&name, &actor.0, quota).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/tenants/{name}")))
        .json(tenant))
}

pub async fn list(store: web::Data<Store>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(store.list_tenants().await?))
}

pub async fn show(
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::parse(&path)?;
    Ok(HttpResponse::Ok().json(store.tenant(&name).await?))
}

pub async fn update(
    store: web::Data<Store>,
    actor: AuditActor,
    path: web::Path<String>,
    body: web::Json<TenantPatch>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::parse(&path)?;
    Ok(HttpResponse::Ok().json(store.update_tenant(&name, &actor.0, &body).await?))
}

pub async fn delete(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    actor: AuditActor,
    path: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::parse(&path)?;
    if query.force {
        super::topics::delete_all_in_kafka(&store, &topics, &name).await?;
    }
    store.delete_tenant(&name, &actor.0, query.force).await?;
    Ok(HttpResponse::NoContent().finish())
}
