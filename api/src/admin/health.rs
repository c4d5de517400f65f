//! Liveness and readiness, served on both listeners. Liveness says the
//! process serves HTTP; readiness says Postgres and Kafka answer, so that a
//! balancer stops sending traffic to a node that cannot serve it.

use actix_web::{web, HttpResponse};
use serde_json::json;
use tenancy::Store;

use crate::kafka::TopicAdmin;

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: Postgres and Kafka answer.
pub async fn readyz(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    shutdown: web::Data<crate::shutdown::Shutdown>,
) -> HttpResponse {
    if shutdown.is_draining() {
        return HttpResponse::ServiceUnavailable().json(json!({ "status": "draining" }));
    }
    let (postgres, kafka) = futures::join!(store.ping(), topics.ping());
    if let Err(err) = &postgres {
        tracing::warn!(error = %err, "readiness: postgres unavailable");
    }
    if let Err(err) = &kafka {
        tracing::warn!(error = %err, "readiness: kafka unavailable");
    }
    crate::metrics::record_readiness(postgres.is_ok(), kafka.is_ok());
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let ready = postgres.is_ok() && kafka.is_ok();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": { "postgres": word(postgres.is_ok()), "kafka": word(kafka.is_ok()) },
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
