//! `/v1/audit`: the audit log, filtered, newest first.

use actix_web::{web, HttpResponse};
use tenancy::{AuditFilter, Store};

use crate::error::ApiError;

pub async fn list(
    store: web::Data<Store>,
    filter: web::Query<AuditFilter>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(store.audit(&filter).await?))
}
