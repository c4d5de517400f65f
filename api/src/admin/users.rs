//! `/v1/tenants/{tenant}/users`: create (password shown once), list, show,
//! disable or enable, rotate the password, delete.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use tenancy::{Grant, GrantPrefix, Store, TenantName, UserName};

use super::AuditActor;
use crate::error::ApiError;

/// A grant as requests spell it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    pub prefix: String,
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub write: bool,
}

impl GrantBody {
    pub fn parse(&self, tenant: &TenantName) -> Result<Grant, ApiError> {
        Ok(Grant::new(
            GrantPrefix::parse(tenant, &self.prefix)?,
            self.read,
            self.write,
        )?)
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    name: String,
    #[serde(default)]
    grants: Vec<GrantBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    disabled: bool,
}

/// Parses `{tenant}/{user}` path segments; the user must sit in the tenant.
pub fn tenant_and_user(path: &(String, String)) -> Result<(TenantName, UserName), ApiError> {
    let tenant = TenantName::parse(&path.0)?;
    let user = UserName::parse(&tenant, &path.1)?;
    Ok((tenant, user))
}

/// Responses that carry a password must never be cached anywhere.
fn with_password(
    mut builder: actix_web::HttpResponseBuilder,
    body: tenancy::NewCredentials,
) -> HttpResponse {
    builder
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

pub async fn create(
    store: web::Data<Store>,
    actor: AuditActor,
    path: web::Path<String>,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path)?;
    let user = UserName::parse(&tenant, &body.name)?;
    let grants = body
        .grants
        .iter()
        .map(|g| g.parse(&tenant))
        .collect::<Result<Vec<_>, _>>()?;
    let credentials = store.create_user(&tenant, &actor.0, &user, &grants).await?;
    Ok(with_password(HttpResponse::Created(), credentials))
}

pub async fn list(
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path)?;
    Ok(HttpResponse::Ok().json(store.list_users(&tenant).await?))
}

pub async fn show(
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    Ok(HttpResponse::Ok().json(store.user(&tenant, &user).await?))
}

pub async fn update(
    store: web::Data<Store>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
    body: web::Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    let updated = store
        .set_user_disabled(&tenant, &actor.0, &user, body.disabled)
        .await?;
    Ok(HttpResponse::Ok().json(updated))
}

pub async fn rotate_password(
    store: web::Data<Store>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    let credentials = store.rotate_password(&tenant, &actor.0, &user).await?;
    Ok(with_password(HttpResponse::Ok(), credentials))
}

pub async fn delete(
    store: web::Data<Store>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    store.delete_user(&tenant, &actor.0, &user).await?;
    Ok(HttpResponse::NoContent().finish())
}
