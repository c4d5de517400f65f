//! Prometheus metrics, served on the admin listener at `/metrics`. The
//! recorder is process-wide: one per `sluice serve`.

use std::sync::OnceLock;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage as _, HttpResponse};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::ratelimit::Admission;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once; later calls (several nodes in one test
/// process) share it.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(err) => {
                tracing::warn!(error = %err, "metrics recorder not installed");
                None
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
