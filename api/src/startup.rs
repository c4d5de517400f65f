//! Two-step startup: [`Application::build`] binds every listener (port 0
//! works, for tests), [`Application::run_until_stopped`] serves.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{DefaultHeaders, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use tenancy::Store;
use tracing_actix_web::TracingLogger;

use crate::admin::{self, AdminToken, QuotaDefaults};
use crate::config::{ConfigError, Settings};
use crate::error;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr} ({listener}): {source}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the tenancy store: {0}")]
    Store(#[from] tenancy::Error),
}

/// A node with its listeners bound but not yet serving.
pub struct Application {
    admin_addr: SocketAddr,
    admin: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listeners and builds the servers.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let token = AdminToken::new(settings.require_admin_token()?);
        let store = Store::connect_lazy(&settings.store_options())?;
        let listener = bind("admin", settings.admin.listen)?;
        let admin_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            listener: "admin",
            addr: settings.admin.listen,
            source,
        })?;
        let admin = admin_server(listener, store, token, &settings).map_err(|source| {
            StartupError::Bind {
                listener: "admin",
                addr: settings.admin.listen,
                source,
            }
        })?;
        Ok(Self { admin_addr, admin })
    }

    /// The address the admin API actually listens on.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until the process is asked to stop (SIGINT/SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(admin = %self.admin_addr, "sluice is serving");
        self.admin.await
    }
}

fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        listener,
        addr,
        source,
    })
}

fn admin_server(
    listener: TcpListener,
    store: Store,
    token: AdminToken,
    settings: &Settings,
) -> std::io::Result<Server> {
    let store = web::Data::new(store);
    let token = web::Data::new(token);
    let defaults = web::Data::new(QuotaDefaults(settings.quota));
    let server = HttpServer::new(move || {
        App::new()
            .wrap(
                ErrorHandlers::new()
                    .handler(StatusCode::METHOD_NOT_ALLOWED, error::method_not_allowed),
            )
            .wrap(DefaultHeaders::new().add(("Cache-Control", "no-store")))
            .wrap(TracingLogger::default())
            .app_data(store.clone())
            .app_data(token.clone())
            .app_data(defaults.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(admin::ADMIN_BODY_LIMIT)
                    .content_type_required(false)
                    .error_handler(error::json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .route("/healthz", web::get().to(admin::healthz))
            .route("/readyz", web::get().to(admin::readyz))
            .configure(admin::routes)
            .default_service(web::to(error::route_not_found))
    })
    .workers(2)
    .listen(listener)?
    .run();
    Ok(server)
}
