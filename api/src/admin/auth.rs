//! The admin bearer token and the optional metrics token, checked in
//! constant time, and the audit actor.

use std::future::{ready, Ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpRequest, ResponseError as _};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tenancy::Actor;

use crate::error::ApiError;

/// The configured admin token, kept only as a SHA-256 digest. Comparing
/// digests in constant time hides both the content and the length of the
/// real token from timing.
#[derive(Debug, Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    pub fn new(token: &SecretString) -> Self {
        Self {
            digest: Sha256::digest(token.expose_secret().as_bytes()).into(),
        }
    }

    /// Whether `presented` is the configured token.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.digest).into()
    }
}

/// Middleware on `/v1`: no valid bearer token, no admin route.
pub async fn require_admin_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let token = req.app_data::<web::Data<AdminToken>>().cloned();
    let presented = bearer(&req);
    match (token, presented) {
        (Some(token), Some(presented)) if token.matches(presented) => {
            Ok(next.call(req).await?.map_into_left_body())
        }
        _ => Ok(req
            .into_response(ApiError::AdminUnauthorized.error_response())
            .map_into_right_body()),
    }
}

/// The optional `admin.metrics_token`: when set, `/metrics` needs it or
/// the admin token; when unset, `/metrics` is open on the admin listener.
#[derive(Debug, Clone)]
pub struct MetricsToken(pub Option<AdminToken>);

/// Middleware on `/metrics`: with a metrics token configured, no valid
/// bearer token (the metrics token or the admin token), no metrics.
pub async fn require_metrics_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let required = req
        .app_data::<web::Data<MetricsToken>>()
        .and_then(|t| t.0.clone());
    let Some(metrics) = required else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let admin = req.app_data::<web::Data<AdminToken>>().cloned();
    let presented = bearer(&req);
    let allowed = presented.is_some_and(|presented| {
        // Both are compared, whatever the first gives, so that timing
        // does not tell which token was presented.
        let as_metrics = metrics.matches(presented);
        let as_admin = admin.as_ref().is_some_and(|a| a.matches(presented));
        as_metrics | as_admin
    });
    if allowed {
        Ok(next.call(req).await?.map_into_left_body())
    } else {
        Ok(req
            .into_response(ApiError::AdminUnauthorized.error_response())
            .map_into_right_body())
    }
}

/// The bearer token of a request, if any.
fn bearer(req: &ServiceRequest) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Header by which the CLI names the operator behind a change; it only
/// labels audit rows and grants nothing.
pub const ACTOR_HEADER: &str = "X-Sluice-Actor";

/// The actor recorded in the audit log for this request.
#[derive(Debug, Clone)]
pub struct AuditActor(pub Actor);

impl FromRequest for AuditActor {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let name = req
            .headers()
            .get(ACTOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("admin");
        ready(Ok(AuditActor(Actor::new(name))))
    }
}
