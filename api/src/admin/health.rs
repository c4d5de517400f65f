//! Liveness and readiness. Liveness says the process serves HTTP; readiness
//! says its dependencies answer, so a balancer stops sending it traffic
//! when they do not.

use actix_web::{web, HttpResponse};
use serde_json::json;
use tenancy::Store;

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: Postgres answers.
pub async fn readyz(store: web::Data<Store>) -> HttpResponse {
    match store.ping().await {
        Ok(()) => {
            HttpResponse::Ok().json(json!({ "status": "ready", "checks": { "postgres": "ok" } }))
        }
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "not_ready", "checks": { "postgres": "unavailable" } }))
        }
    }
}
