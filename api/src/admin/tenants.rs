//! `/v1/tenants`: create, list, show, update (quotas, disable) and delete.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use tenancy::{Quota, QuotaPatch, Store, TenantName, TenantPatch};

use super::AuditActor;
use crate::error::ApiError;
use crate::kafka::TopicAdmin;

/// The quota new tenants get for every field their request leaves out, and
/// the smallest byte burst a quota may have (the largest message).
#[derive(Debug, Clone, Copy)]
pub struct QuotaDefaults {
    pub quota: Quota,
    pub min_byte_burst: u64,
}

impl QuotaDefaults {
    /// A byte burst below the largest message would make such messages
    /// impossible to send, forever.
    fn check(&self, quota: &Quota) -> Result<(), ApiError> {
        let burst = quota
            .bytes_per_second
            .saturating_mul(u64::from(quota.burst_seconds));
        if burst < self.min_byte_burst {
            return Err(tenancy::ValidationError::new(
                "quota.bytes_per_second",
                format!(
                    "bytes_per_second x burst_seconds = {burst} is below the largest message ({} bytes)",
                    self.min_byte_burst
                ),
            )
            .into());
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    name: String,
    #[serde(default)]
    quota: QuotaPatch,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    let quota = defaults.quota.apply(&body.quota)?;
    defaults.check(&quota)?;
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
    defaults: web::Data<QuotaDefaults>,
    actor: AuditActor,
    path: web::Path<String>,
    body: web::Json<TenantPatch>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::parse(&path)?;
    if let Some(patch) = &body.quota {
        defaults.check(&store.tenant(&name).await?.quota.apply(patch)?)?;
    }
    Ok(HttpResponse::Ok().json(store.update_tenant(&name, &actor.0, &body).await?))
}

pub async fn delete(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    consumption: web::Data<crate::consume::Service>,
    actor: AuditActor,
    path: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::parse(&path)?;
    if query.force {
        super::topics::delete_all_in_kafka(&store, &topics, &consumption, &name).await?;
    }
    store.delete_tenant(&name, &actor.0, query.force).await?;
    Ok(HttpResponse::NoContent().finish())
}
