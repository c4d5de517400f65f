//! The authenticated user as an extractor: a handler that takes
//! [`Authenticated`] cannot run without valid credentials.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::Header as _;
use actix_web::{web, FromRequest, HttpRequest};
use actix_web_httpauth::headers::authorization::{Authorization, Basic};
use futures::future::LocalBoxFuture;
use tenancy::Password;

use super::{AuthError, Authenticator, Principal};
use crate::error::ApiError;

/// The realm named in `WWW-Authenticate`.
pub const REALM: &str = "sluice";

/// A request's verified user.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Principal>);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticator = req.app_data::<web::Data<Authenticator>>().cloned();
        let credentials = Authorization::<Basic>::parse(req).ok().map(|auth| {
            let basic = auth.into_scheme();
            let password =
                Password::new(basic.password().map(|p| p.to_string()).unwrap_or_default());
            (basic.user_id().to_string(), password)
        });
        Box::pin(async move {
            let Some(authenticator) = authenticator else {
                return Err(ApiError::Unauthenticated);
            };
            let Some((username, password)) = credentials else {
                return Err(ApiError::Unauthenticated);
            };
            match authenticator.authenticate(&username, &password).await {
                Ok(principal) => Ok(Authenticated(principal)),
                Err(AuthError::Rejected) => Err(ApiError::Unauthenticated),
                Err(AuthError::Unavailable(err)) => Err(ApiError::Tenancy(err)),
            }
        })
    }
}
