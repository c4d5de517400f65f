//! The caller as extractors: a handler that takes [`Authenticated`]
//! cannot run without valid credentials, and one that takes [`Admitted`]
//! cannot run over its tenant's rate limit either.

use std::sync::Arc;
use std::time::Duration;

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

/// A request's verified user. A handler that takes it cannot run
/// unauthenticated. The principal is also left in the request's
/// extensions, where the metrics middleware finds the tenant to label the
/// request with.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Principal>);

impl std::ops::Deref for Authenticated {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticator = req.app_data::<web::Data<Authenticator>>().cloned();
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
            let principal = match authenticator
                .authenticate(&username, &password, address)
                .await
            {
                Ok(principal) => principal,
                Err(AuthError::Rejected) => return Err(ApiError::Unauthenticated),
                Err(AuthError::Unavailable(err)) => return Err(ApiError::Tenancy(err)),
                Err(AuthError::Throttled(retry_after)) => {
                    // Held before it is answered: a network that guesses in
                    // a closed loop would otherwise get refusals as fast as
                    // it can ask, thousands a second of CPU taken from
                    // everyone; held, it gets one per request in flight per
                    // THROTTLED_HOLD, at the cost of a timer each.
                    tokio::time::sleep(retry_after.min(THROTTLED_HOLD)).await;
                    return Err(ApiError::login_throttled(retry_after));
                }
                Err(AuthError::Overloaded(retry_after)) => {
                    return Err(ApiError::overloaded(retry_after))
                }
            };
            req.extensions_mut().insert(principal.clone());
            Ok(Authenticated(principal))
        })
    }
}

/// How long a login refused by the throttle is held before its 429 goes
/// out (less if `Retry-After` is sooner).
const THROTTLED_HOLD: Duration = Duration::from_secs(1);

/// A verified user whose request its tenant's rate limit admitted. Every
/// data-plane route that does work asks for this one, so none can forget
/// the quota; the admission is left in the request's extensions for the
/// `RateLimit-*` headers and `/me`.
#[derive(Debug, Clone)]
pub struct Admitted(pub Authenticated);

impl std::ops::Deref for Admitted {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for Admitted {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limits = req.app_data::<web::Data<TenantLimits>>().cloned();
        let authenticated = Authenticated::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let user = authenticated.await?;
            if let Some(limits) = limits {
                let admission = limits.admit_request(&user.tenant, user.quota)?;
                req.extensions_mut().insert(admission);
            }
            Ok(Admitted(user))
        })
    }
}
