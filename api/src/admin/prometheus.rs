//! `GET /metrics` on the admin listener, behind the optional metrics token.

use actix_web::{get, web, HttpResponse};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::error::ErrorBody;

/// Prometheus metrics (text format). Open unless `admin.metrics_token` is
/// set; then it, or the admin token, is required as a bearer token.
#[utoipa::path(tag = "admin", security((), ("admin_token" = [])), responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
    (status = 401, description = "`admin.metrics_token` is set and no valid token was given", body = ErrorBody),
    (status = 503, description = "The metrics recorder could not be installed"),
))]
#[get(
    "/metrics",
    wrap = "actix_web::middleware::from_fn(super::require_metrics_token)"
)]
pub async fn metrics(handle: web::Data<Option<PrometheusHandle>>) -> HttpResponse {
    crate::metrics::render(handle).await
}
