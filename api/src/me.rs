//! `GET /me`: who the caller is, what it may do, its tenant's quota, and how
//! much of this node's share of it is left.

use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::Admitted;
use crate::ratelimit::{Admission, TenantLimits};

pub async fn me(user: Admitted, req: HttpRequest, limits: web::Data<TenantLimits>) -> HttpResponse {
    let principal: &crate::auth::Principal = &user;
    let admission = req.extensions().get::<Admission>().copied();
    let (nodes, request_burst, node_rps, node_bps) =
        limits.node_share(&principal.tenant, principal.quota);
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "username": principal.username,
            "tenant": principal.tenant,
            "grants": principal.grants,
            "quota": principal.quota,
            "usage": {
                "live_nodes": nodes,
                "node_requests_per_second": node_rps,
                "node_bytes_per_second": node_bps,
                "node_request_burst": request_burst,
                "requests_remaining": admission.map(|a| a.remaining),
                "seconds_to_full": admission.map(|a| a.reset),
            },
        }))
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
