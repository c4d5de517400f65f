//! Prometheus metrics, served on the admin listener at `/metrics`. The
//! recorder is process-wide: one per `sluice serve`.

use std::sync::{Arc, OnceLock};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage as _, HttpResponse};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::auth::Principal;
use crate::ratelimit::Admission;

/// Counts every request and times it, by listener, route pattern (never
/// the raw path, to keep label cardinality bounded), method and status,
/// and by tenant once it is known (the authentication extractor leaves
/// the principal in the request's extensions).
pub async fn observe_public(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    observe("public", req, next).await
}

/// [`observe_public`] for the admin listener.
pub async fn observe_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    observe("admin", req, next).await
}

async fn observe(
    listener: &'static str,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let result = next.call(req).await;
    let (status, tenant) = match &result {
        Ok(response) => (
            response.status().as_u16().to_string(),
            response
                .request()
                .extensions()
                .get::<Arc<Principal>>()
                .map(|principal| principal.tenant.to_string())
                .unwrap_or_default(),
        ),
        Err(err) => (
            err.as_response_error().status_code().as_u16().to_string(),
            String::new(),
        ),
    };
    metrics::counter!(
        "sluice_http_requests_total",
        "listener" => listener,
        "route" => route.clone(),
        "method" => method,
        "status" => status,
        "tenant" => tenant,
    )
    .increment(1);
    metrics::histogram!("sluice_http_request_duration_seconds", "listener" => listener, "route" => route)
        .record(started.elapsed().as_secs_f64());
    result
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets, in seconds: from a cached-auth produce on loopback to a
/// long poll.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the recorder once; later calls (several nodes in one test
/// process) share it.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            match PrometheusBuilder::new()
                // Per-group lag series vanish once a group has been idle for
                // ten minutes, which bounds their number by recent activity.
                .idle_timeout(
                    metrics_util::MetricKindMask::GAUGE,
                    Some(std::time::Duration::from_secs(600)),
                )
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| b.install_recorder())
            {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics`.
pub async fn render(handle: web::Data<Option<PrometheusHandle>>) -> HttpResponse {
    match handle.as_ref() {
        Some(handle) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(handle.render()),
        None => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// Adds the IETF draft `RateLimit-*` headers to every admitted request's
/// response.
pub async fn rate_limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let admission = response.request().extensions().get::<Admission>().copied();
    if let Some(admission) = admission {
        let headers = response.headers_mut();
        for (name, value) in [
            ("ratelimit-limit", admission.limit.to_string()),
            ("ratelimit-remaining", admission.remaining.to_string()),
            ("ratelimit-reset", admission.reset.to_string()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
    Ok(response)
}

/// Samples gauges that nothing else updates: producer queue depth and the
/// Postgres pool. (Readiness is recorded by the readiness task.)
pub fn spawn_sampler(store: tenancy::Store, producer: std::sync::Arc<crate::kafka::Producer>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            ticker.tick().await;
            metrics::gauge!("sluice_producer_queue_messages").set(f64::from(producer.in_flight()));
            let (size, idle) = store.pool_stats();
            metrics::gauge!("sluice_db_pool_connections", "state" => "idle").set(f64::from(idle));
            metrics::gauge!("sluice_db_pool_connections", "state" => "in_use")
                .set(f64::from(size.saturating_sub(idle)));
        }
    });
}

/// Records whether each dependency answered.
pub fn record_readiness(postgres: bool, kafka: bool) {
    metrics::gauge!("sluice_ready", "dependency" => "postgres").set(if postgres {
        1.0
    } else {
        0.0
    });
    metrics::gauge!("sluice_ready", "dependency" => "kafka").set(if kafka { 1.0 } else { 0.0 });
}
