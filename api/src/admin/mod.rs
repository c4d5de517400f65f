//! The admin plane: its own listener, a bearer token, and the routes that
//! provision tenants, users and grants and read the audit log.

mod audit;
mod auth;
pub mod grants;
pub mod groups;
mod health;
pub mod tenants;
pub mod topics;
pub mod users;

use actix_web::middleware::from_fn;
use actix_web::web;

pub use auth::{require_metrics_token, AdminToken, AuditActor, MetricsToken, ACTOR_HEADER};
pub use health::{healthz, readyz, Readiness};
pub use tenants::QuotaDefaults;

/// Largest admin request body; admin requests are small objects.
pub const ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// Registers the `/v1` admin routes, all behind the bearer token.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .wrap(from_fn(auth::require_admin_token))
            .service(
                web::resource("/tenants")
                    .route(web::post().to(tenants::create))
                    .route(web::get().to(tenants::list)),
            )
            .service(
                web::resource("/tenants/{tenant}")
                    .route(web::get().to(tenants::show))
                    .route(web::patch().to(tenants::update))
                    .route(web::delete().to(tenants::delete)),
            )
            .service(
                web::resource("/tenants/{tenant}/users")
                    .route(web::post().to(users::create))
                    .route(web::get().to(users::list)),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}")
                    .route(web::get().to(users::show))
                    .route(web::patch().to(users::update))
                    .route(web::delete().to(users::delete)),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}/password")
                    .route(web::post().to(users::rotate_password)),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}/grants")
                    .route(web::post().to(grants::add))
                    .route(web::get().to(grants::list)),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}/grants/{prefix}")
                    .route(web::delete().to(grants::remove)),
            )
            .service(
                web::resource("/tenants/{tenant}/topics")
                    .route(web::post().to(topics::create))
                    .route(web::get().to(topics::list)),
            )
            .service(
                web::resource("/tenants/{tenant}/topics/{topic}")
                    .route(web::get().to(topics::show))
                    .route(web::delete().to(topics::delete)),
            )
            .service(web::resource("/tenants/{tenant}/groups").route(web::get().to(groups::list)))
            .service(
                web::resource("/tenants/{tenant}/groups/{group}")
                    .route(web::delete().to(groups::delete)),
            )
            .service(
                web::resource("/tenants/{tenant}/groups/{group}/reset")
                    .route(web::post().to(groups::reset)),
            )
            .service(web::resource("/audit").route(web::get().to(audit::list)))
            .default_service(web::to(crate::error::route_not_found)),
    );
}
