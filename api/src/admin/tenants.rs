//! `/v1/tenants`: create, list, show, update (quotas, disable) and delete.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Deserialize;
use tenancy::{Quota, QuotaPatch, Store, TenantName, TenantPatch};
use utoipa::{IntoParams, ToSchema};

use super::views::{self, TenantView};
use super::AuditActor;
use crate::error::ApiError;
use crate::name_schemas as names;
use crate::openapi::AdminErrors;
use crate::topics::Topics;

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

/// `POST /v1/tenants`: a name, and any quota fields that should differ
/// from the configured defaults.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    #[schema(value_type = names::TenantName)]
    name: String,
    #[serde(default)]
    quota: QuotaPatchBody,
}

/// Quota fields to set; the others keep their value (on create, the
/// configured default). The bounds are those `tenancy::Quota::validate`
/// enforces.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = QuotaPatch)]
pub struct QuotaPatchBody {
    #[schema(minimum = 1, maximum = 10_000_000)]
    requests_per_second: Option<u32>,
    #[schema(minimum = 1, maximum = 1_099_511_627_776_u64)]
    bytes_per_second: Option<u64>,
    #[schema(minimum = 1, maximum = 3_600)]
    burst_seconds: Option<u32>,
    #[schema(minimum = 0, maximum = 1_000_000)]
    max_topics: Option<u32>,
    #[schema(minimum = 0, maximum = 1_000_000)]
    max_partitions: Option<u32>,
    #[schema(minimum = 0, maximum = 1_000_000)]
    max_groups: Option<u32>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    max_concurrent_consumes: Option<u32>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    max_streams: Option<u32>,
}

impl From<QuotaPatchBody> for QuotaPatch {
    fn from(b: QuotaPatchBody) -> Self {
        QuotaPatch {
            requests_per_second: b.requests_per_second,
            bytes_per_second: b.bytes_per_second,
            burst_seconds: b.burst_seconds,
            max_topics: b.max_topics,
            max_partitions: b.max_partitions,
            max_groups: b.max_groups,
            max_concurrent_consumes: b.max_concurrent_consumes,
            max_streams: b.max_streams,
        }
    }
}

/// `PATCH /v1/tenants/{tenant}`: quota fields to change, and/or disable or
/// enable the tenant.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TenantPatch)]
pub struct TenantPatchBody {
    quota: Option<QuotaPatchBody>,
    disabled: Option<bool>,
}

impl From<&TenantPatchBody> for TenantPatch {
    fn from(b: &TenantPatchBody) -> Self {
        TenantPatch {
            quota: b.quota.map(QuotaPatch::from),
            disabled: b.disabled,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Also delete the tenant's users, topics (in Kafka too) and groups.
    #[serde(default)]
    force: bool,
}

/// Create a tenant.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    responses((status = 201, body = TenantView, headers(("Location" = String))), AdminErrors))]
#[post("/tenants")]
pub async fn create(
    store: web::Data<Store>,
    defaults: web::Data<QuotaDefaults>,
    actor: AuditActor,
    body: web::Json<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::parse(&body.name)?;
    let quota = defaults.quota.apply(&QuotaPatch::from(body.quota))?;
    defaults.check(&quota)?;
    let tenant = store.create_tenant(&name, &actor.0, quota).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/tenants/{name}")))
        .json(TenantView::from(tenant)))
}

/// List tenants.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = Vec<TenantView>), AdminErrors))]
#[get("/tenants")]
pub async fn list(store: web::Data<Store>) -> Result<HttpResponse, ApiError> {
    let tenants: Vec<TenantView> = views::all(store.list_tenants().await?);
    Ok(HttpResponse::Ok().json(tenants))
}

/// Show a tenant.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path)),
    responses((status = 200, body = TenantView), AdminErrors))]
#[get("/tenants/{tenant}")]
pub async fn show(
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::parse(&path)?;
    Ok(HttpResponse::Ok().json(TenantView::from(store.tenant(&name).await?)))
}

/// Change quotas, disable or enable.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path)),
    responses((status = 200, body = TenantView), AdminErrors))]
#[patch("/tenants/{tenant}")]
pub async fn update(
    store: web::Data<Store>,
    defaults: web::Data<QuotaDefaults>,
    actor: AuditActor,
    path: web::Path<String>,
    body: web::Json<TenantPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::parse(&path)?;
    let patch = TenantPatch::from(&*body);
    if let Some(quota) = &patch.quota {
        defaults.check(&store.tenant(&name).await?.quota.apply(quota)?)?;
    }
    let updated = store.update_tenant(&name, &actor.0, &patch).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(updated)))
}

/// Delete a tenant; `?force=true` removes its users, topics and groups too.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), DeleteQuery),
    responses((status = 204, description = "Deleted"), AdminErrors))]
#[delete("/tenants/{tenant}")]
pub async fn delete(
    store: web::Data<Store>,
    topics: web::Data<Topics>,
    actor: AuditActor,
    path: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = TenantName::parse(&path)?;
    if query.force {
        topics.delete_all_in_kafka(&name).await?;
    }
    store.delete_tenant(&name, &actor.0, query.force).await?;
    Ok(HttpResponse::NoContent().finish())
}
