//! The authenticated user as an extractor: a handler that takes
//! [`Authenticated`] cannot run without valid credentials.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::Header as _;
use actix_web::{web, FromRequest, HttpMessage as _, HttpRequest};
use actix_web_httpauth::headers::authorization::{Authorization, Basic};
use futures::future::LocalBoxFuture;
use tenancy::Password;

use super::{AuthError, Authenticator, Principal};
use crate::error::ApiError;
use crate::ratelimit::{client_address, TenantLimits};

/// Proxies whose `X-Forwarded-For` is believed, as app data.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

/// The realm named in `WWW-Authenticate`.
pub const REALM: &str = "sluice";

/// A request's verified user, admitted by its tenant's rate limit. A
/// handler that takes it cannot run unauthenticated or over quota.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Principal>);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticator = req.app_data::<web::Data<Authenticator>>().cloned();
        let limits = req.app_data::<web::Data<TenantLimits>>().cloned();
        let trusted = req
            .app_data::<web::Data<TrustedProxies>>()
            .cloned()
            .unwrap_or_default();
        let address = client_address(req, &trusted.0);
        let credentials = Authorization::<Basic>::parse(req).ok().map(|auth| {
            let basic = auth.into_scheme();
            let password =
                Password::new(basic.password().map(|p| p.to_string()).unwrap_or_default());
            (basic.user_id().to_string(), password)
        });
        let req = req.clone();
        Box::pin(async move {
            let Some(authenticator) = authenticator else {
                return Err(ApiError::Unauthenticated);
            };
            let Some((username, password)) = credentials else {
                return Err(ApiError::Unauthenticated);
            };
            let authenticator = authenticator.into_inner();
            let principal = match authenticator
                .authenticate(&username, &password, address)
                .await
            {
                Ok(principal) => principal,
                Err(AuthError::Rejected) => return Err(ApiError::Unauthenticated),
                Err(AuthError::Unavailable(err)) => return Err(ApiError::Tenancy(err)),
                Err(AuthError::Throttled(retry_after)) => {
                    return Err(ApiError::LoginThrottled { retry_after })
                }
                Err(AuthError::Overloaded(retry_after)) => {
                    return Err(ApiError::Overloaded { retry_after })
                }
            };
            req.extensions_mut()
                .insert(crate::metrics::RequestTenant(principal.tenant.to_string()));
            if let Some(limits) = limits {
                let admission = limits.admit_request(&principal.tenant, principal.quota)?;
                req.extensions_mut().insert(admission);
            }
            Ok(Authenticated(principal))
        })
    }
}
