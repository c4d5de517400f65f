//! What each listener serves, in one list per listener.
//!
//! Each `.service(handler)` both registers the handler's route (from its
//! actix route macro, with any per-route middleware in `wrap = …`) and
//! adds its `#[utoipa::path]` operation to the listener's OpenAPI
//! document, so the two cannot drift apart. The only routes outside the
//! documents are the documents themselves (`/openapi.json`, `/docs`) and
//! the benchmark no-op routes, which exist only while `http.noop_routes`
//! is on and are no part of the API.

use actix_web::dev::{ServiceFactory, ServiceRequest};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{scope, AppExt};

use crate::admin::{self, audit, grants, groups, tenants, topics, users};
use crate::config::{ConsumeSettings, ProduceSettings};
use crate::error::{route_not_found, ApiError};
use crate::{consume, me, openapi, produce};

/// What shapes the public listener's routes and document.
#[derive(Debug, Clone)]
pub struct PublicOptions {
    /// `http.noop_routes`: serve the benchmark no-op routes.
    pub noop_routes: bool,
    /// Bounds the document takes from the configuration.
    pub consume: ConsumeSettings,
    pub produce: ProduceSettings,
}

/// The data plane.
fn public_routes(cfg: &mut ServiceConfig) {
    cfg.service(produce::produce)
        .service(consume::consume)
        .service(consume::ack)
        .service(consume::nack)
        .service(consume::extend)
        .service(crate::stream::sse)
        .service(crate::stream::ws)
        .service(me::me)
        .service(crate::groups::handlers::list)
        .service(crate::groups::handlers::show)
        .service(crate::groups::handlers::seek)
        .service(crate::groups::handlers::update)
        .service(crate::topics::handlers::list)
        .service(crate::topics::handlers::create)
        .service(crate::topics::handlers::delete)
        .service(admin::healthz)
        .service(admin::readyz);
}

/// The admin API, all of `/v1` behind the admin token, plus health and
/// metrics.
fn admin_routes(cfg: &mut ServiceConfig) {
    cfg.service(
        scope::scope("/v1")
            .wrap(from_fn(admin::require_admin_token))
            .service(tenants::create)
            .service(tenants::list)
            .service(tenants::show)
            .service(tenants::update)
            .service(tenants::delete)
            .service(users::create)
            .service(users::list)
            .service(users::show)
            .service(users::update)
            .service(users::delete)
            .service(users::rotate_password)
            .service(grants::add)
            .service(grants::list)
            .service(grants::remove)
            .service(topics::create)
            .service(topics::list)
            .service(topics::show)
            .service(topics::delete)
            .service(groups::list)
            .service(groups::reset)
            .service(groups::delete)
            .service(audit::list)
            // Inside the scope, so that unknown `/v1` routes still need
            // the token before they are told apart from known ones.
            .default_service(web::to(not_found_or_wrong_method)),
    )
    .service(admin::metrics)
    .service(admin::healthz)
    .service(admin::readyz);
}

/// The public listener's routes on `app`, whose middleware and app data
/// the caller has set.
pub fn public<T>(app: App<T>, options: &PublicOptions) -> App<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    let (app, mut document) = app
        .into_utoipa_app()
        .openapi(openapi::public_base())
        .configure(public_routes)
        .split_for_parts();
    openapi::bound(&mut document, &options.consume, &options.produce);
    let app = openapi::serve(app, document);
    let app = if options.noop_routes {
        // Benchmark baselines, registered only when switched on and left
        // out of the document: they are no part of the API.
        app.route("/_noop", web::get().to(me::noop)).route(
            "/_noop/authenticated",
            web::get().to(me::noop_authenticated),
        )
    } else {
        app
    };
    app.default_service(web::to(not_found_or_wrong_method))
}

/// The admin listener's routes on `app`.
pub fn admin<T>(app: App<T>) -> App<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    let (app, document) = app
        .into_utoipa_app()
        .openapi(openapi::admin_base())
        .configure(admin_routes)
        .split_for_parts();
    openapi::serve(app, document).default_service(web::to(not_found_or_wrong_method))
}

/// The fallback of both listeners: a JSON 405 when the path is served with
/// other methods, else a JSON 404. Each method of a path is its own
/// resource (one handler, one route macro), so actix itself never sees a
/// path whose method alone is wrong.
async fn not_found_or_wrong_method(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.resource_map().has_resource(req.path()) {
        Err(ApiError::MethodNotAllowed)
    } else {
        route_not_found(req).await
    }
}
