//! `/v1/tenants/{tenant}/users`: create (password shown once), list, show,
//! disable or enable, rotate the password, delete.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use tenancy::{Grant, GrantPrefix, InitialPassword, Store, TenantName, UserName, ValidationError};
use utoipa::ToSchema;

use super::views::{self, CredentialsView, UserView};
use super::AuditActor;
use crate::error::ApiError;
use crate::name_schemas as names;
use crate::openapi::AdminErrors;

/// A grant as requests spell it; it gives read, write, manage or several.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    #[schema(value_type = names::GrantPrefix)]
    pub prefix: String,
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub write: bool,
    /// Create and delete the tenant's topics under the prefix on the data
    /// plane, within the tenant's quotas.
    #[serde(default)]
    pub manage: bool,
}

impl GrantBody {
    pub fn parse(&self, tenant: &TenantName) -> Result<Grant, ApiError> {
        Ok(Grant::new(
            GrantPrefix::parse(tenant, &self.prefix)?,
            self.read,
            self.write,
            self.manage,
        )?)
    }
}

/// `POST /v1/tenants/{tenant}/users`: the full name, its first grants and,
/// for a tenant moving from another service, its existing password or
/// password hash. Both are secrets: `Debug` redacts them, and no answer,
/// log line or audit row ever holds them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(value_type = names::UserName)]
    name: String,
    #[serde(default)]
    grants: Vec<GrantBody>,
    /// Import this password instead of generating one: at least 16
    /// characters (else 400 `weak_password`). Never echoed.
    #[schema(value_type = Option<String>, min_length = 16, max_length = 1024, write_only)]
    password: Option<SecretString>,
    /// Import this argon2id PHC hash instead of generating a password
    /// (`$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`, m ≤ 65536, t ≤ 10,
    /// p ≤ 8; else 400 `invalid_password_hash`). Not with `password`
    /// (400 `invalid_password`). Never echoed.
    #[schema(value_type = Option<String>, write_only)]
    password_hash: Option<SecretString>,
}

impl CreateUser {
    /// How the new user's password is set: imported when the body gives
    /// one, generated otherwise.
    fn initial_password(&self) -> Result<InitialPassword, ApiError> {
        match (&self.password, &self.password_hash) {
            (None, None) => Ok(InitialPassword::Generated),
            (Some(password), None) => Ok(InitialPassword::plaintext(password)?),
            (None, Some(phc)) => Ok(InitialPassword::hash(phc)?),
            (Some(_), Some(_)) => Err(ValidationError::new(
                "password",
                "give password or password_hash, not both",
            )
            .into()),
        }
    }
}

/// `PATCH /v1/tenants/{tenant}/users/{user}`: disable or enable.
#[derive(Debug, Deserialize, ToSchema)]
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
        .json(CredentialsView::from(body))
}

/// Create a user. A generated password is shown this once only; an
/// imported `password` or `password_hash` is never shown.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path)),
    responses((status = 201, body = CredentialsView), AdminErrors))]
#[post("/tenants/{tenant}/users")]
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
    let initial = body.initial_password()?;
    match store
        .create_user(&tenant, &actor.0, &user, &grants, initial)
        .await?
    {
        Some(generated) => Ok(with_password(HttpResponse::Created(), generated)),
        None => Ok(HttpResponse::Created()
            .insert_header(("Cache-Control", "no-store"))
            .json(CredentialsView::imported(user.as_str()))),
    }
}

/// List a tenant's users.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path)),
    responses((status = 200, body = Vec<UserView>), AdminErrors))]
#[get("/tenants/{tenant}/users")]
pub async fn list(
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path)?;
    let users: Vec<UserView> = views::all(store.list_users(&tenant).await?);
    Ok(HttpResponse::Ok().json(users))
}

/// Show a user.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("user" = names::UserName, Path)),
    responses((status = 200, body = UserView), AdminErrors))]
#[get("/tenants/{tenant}/users/{user}")]
pub async fn show(
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    Ok(HttpResponse::Ok().json(UserView::from(store.user(&tenant, &user).await?)))
}

/// Disable or enable a user.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("user" = names::UserName, Path)),
    responses((status = 200, body = UserView), AdminErrors))]
#[patch("/tenants/{tenant}/users/{user}")]
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
    Ok(HttpResponse::Ok().json(UserView::from(updated)))
}

/// Rotate the password; the new one is shown this once only.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("user" = names::UserName, Path)),
    responses((status = 200, body = CredentialsView), AdminErrors))]
#[post("/tenants/{tenant}/users/{user}/password")]
pub async fn rotate_password(
    store: web::Data<Store>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    let credentials = store.rotate_password(&tenant, &actor.0, &user).await?;
    Ok(with_password(HttpResponse::Ok(), credentials))
}

/// Delete a user.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(("tenant" = names::TenantName, Path), ("user" = names::UserName, Path)),
    responses((status = 204, description = "Deleted"), AdminErrors))]
#[delete("/tenants/{tenant}/users/{user}")]
pub async fn delete(
    store: web::Data<Store>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, user) = tenant_and_user(&path)?;
    store.delete_user(&tenant, &actor.0, &user).await?;
    Ok(HttpResponse::NoContent().finish())
}
