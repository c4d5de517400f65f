//! `/v1/audit`: the audit log, filtered, newest first.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tenancy::{AuditFilter, Store};
use utoipa::IntoParams;

use super::views::{self, AuditEntryView};
use crate::error::ApiError;
use crate::openapi::AdminErrors;

/// The filters of `GET /v1/audit`; all optional.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only rows about this tenant.
    tenant: Option<String>,
    /// Only rows of this action, e.g. `tenant.create`.
    action: Option<String>,
    /// Only rows by this actor.
    actor: Option<String>,
    /// Only rows on this target.
    target: Option<String>,
    /// Only rows at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Only rows before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// Only rows with an id below this one: for paging backwards.
    before_id: Option<i64>,
    /// Rows in one page; 100 unless given.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

impl From<AuditQuery> for AuditFilter {
    fn from(q: AuditQuery) -> Self {
        AuditFilter {
            tenant: q.tenant,
            action: q.action,
            actor: q.actor,
            target: q.target,
            since: q.since,
            until: q.until,
            before_id: q.before_id,
            limit: q.limit,
        }
    }
}

/// The audit log, newest first.
#[utoipa::path(tag = "admin", security(("admin_token" = [])),
    params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntryView>), AdminErrors))]
#[get("/audit")]
pub async fn list(
    store: web::Data<Store>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    // Postgres text cannot hold NUL, so no row matches such a filter (and
    // Postgres would refuse the query).
    let filters = [&query.tenant, &query.action, &query.actor, &query.target];
    if filters
        .iter()
        .flat_map(|f| f.as_deref())
        .any(|f| f.contains('\0'))
    {
        return Ok(HttpResponse::Ok().json(Vec::<AuditEntryView>::new()));
    }
    let entries: Vec<AuditEntryView> = views::all(store.audit(&query.into()).await?);
    Ok(HttpResponse::Ok().json(entries))
}
