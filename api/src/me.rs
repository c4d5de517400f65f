//! `GET /me`: who the caller is, what it may do, its tenant's quota, and how
//! much of this node's share of it is left.

use actix_web::{get, web, HttpMessage as _, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::admin::views::{GrantView, QuotaView};
use crate::auth::{Admitted, Principal};
use crate::error::ErrorBody;
use crate::name_schemas as names;
use crate::ratelimit::{Admission, TenantLimits};

/// The caller, its grants and quota, and this node's share of the quota.
/// Fields in alphabetical order, as the answer has always had them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    grants: Vec<GrantView>,
    quota: QuotaView,
    #[schema(value_type = names::TenantName)]
    tenant: String,
    usage: Usage,
    #[schema(value_type = names::UserName)]
    username: String,
}

/// This node's share of the tenant's quota, and what is left of it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// Nodes the tenant's rates are split over.
    live_nodes: u32,
    node_bytes_per_second: f64,
    node_request_burst: u32,
    node_requests_per_second: f64,
    /// Requests left in this node's bucket; `null` if not rate limited.
    requests_remaining: Option<u32>,
    /// Seconds until the bucket is full again.
    seconds_to_full: Option<u64>,
}

/// Who am I: my grants, my tenant's quota, and this node's share of it.
#[utoipa::path(tag = "data plane", security(("basic" = [])), responses(
    (status = 200, body = Me),
    (status = 401, body = ErrorBody),
    (status = 429, body = ErrorBody),
    (status = 503, description = "Postgres could not be asked about the credentials", body = ErrorBody),
))]
#[get("/me")]
pub async fn me(user: Admitted, req: HttpRequest, limits: web::Data<TenantLimits>) -> HttpResponse {
    let principal: &Principal = &user;
    let admission = req.extensions().get::<Admission>().copied();
    let (nodes, request_burst, node_rps, node_bps) =
        limits.node_share(&principal.tenant, principal.quota);
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Me {
            grants: principal
                .grants
                .iter()
                .cloned()
                .map(GrantView::from)
                .collect(),
            quota: principal.quota.into(),
            tenant: principal.tenant.to_string(),
            usage: Usage {
                live_nodes: nodes,
                node_bytes_per_second: node_bps,
                node_request_burst: request_burst,
                node_requests_per_second: node_rps,
                requests_remaining: admission.map(|a| a.remaining),
                seconds_to_full: admission.map(|a| a.reset),
            },
            username: principal.username.clone(),
        })
}

/// `GET /_noop`: nothing but HTTP and TLS (benchmark baseline).
pub async fn noop() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// `GET /_noop/authenticated`: HTTP, TLS, authentication and the rate
/// limit, and nothing else (benchmark baseline).
pub async fn noop_authenticated(_user: Admitted) -> HttpResponse {
    HttpResponse::NoContent().finish()
}
