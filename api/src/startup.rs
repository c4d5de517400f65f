//! Two-step startup: [`Application::build`] binds every listener (port 0
//! works, for tests), [`Application::run_until_stopped`] serves.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, DefaultHeaders, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use tenancy::Store;
use tracing_actix_web::TracingLogger;

use crate::admin::{self, AdminToken, MetricsToken, QuotaDefaults, Readiness};
use crate::auth::{Authenticator, TrustedProxies, Verifier};
use crate::body_deadline::{self, BodyReadTimeout};
use crate::compression;
use crate::config::{ConfigError, Settings};
use crate::connections::{self, Connections};
use crate::consume::{self, ConsumeAdmission};
use crate::error;
use crate::kafka::{
    KafkaError, KafkaGroups, Metadata, Mirror, Producer, Readers, RecentMessages, TopicAdmin,
    Watermarks,
};
use crate::notices::{self, Caches};
use crate::produce::{self, Announcer};
use crate::ratelimit::{Cluster, LoginThrottle, TenantLimits};
use crate::routes::{self, PublicOptions};
use crate::shutdown::{self, Shutdown};
use crate::tls::{self, CertResolver, TlsError};
use crate::{keep_alive, metrics, request_id};

/// How long requests in flight may take to finish after SIGTERM.
const SHUTDOWN_GRACE_SECONDS: u64 = 10;

/// A reader unused for this long stops fetching its partition.
const READER_IDLE: Duration = Duration::from_secs(10);

/// How long recently read messages stay cached without being served: long
/// enough for groups polling a few times a minute to share them, short
/// enough that a topic deleted and recreated outside sluice is soon read
/// afresh (deletes through the admin API drop them at once).
const RECENT_IDLE: Duration = Duration::from_secs(30);

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
    #[error("cannot set up Kafka clients: {0}")]
    Kafka(#[from] KafkaError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot start the argon2 threads: {0}")]
    Threads(#[source] std::io::Error),
}

/// A node with its listeners bound but not yet serving.
pub struct Application {
    admin_addr: SocketAddr,
    public_addr: SocketAddr,
    admin: Server,
    public: Server,
    producer: Arc<Producer>,
    shutdown: Shutdown,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("admin_addr", &self.admin_addr)
            .field("public_addr", &self.public_addr)
            .finish_non_exhaustive()
    }
}

/// Every dependency a handler or extractor may ask for, one `web::Data`
/// each; each listener registers those its routes use.
#[derive(Clone)]
struct Handles {
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    produce: web::Data<produce::Service>,
    consume: web::Data<consume::Service>,
    authenticator: web::Data<Authenticator>,
    limits: web::Data<TenantLimits>,
    trusted: web::Data<TrustedProxies>,
    shutdown: web::Data<Shutdown>,
    readiness: web::Data<Readiness>,
    groups: web::Data<crate::groups::Groups>,
    streams: web::Data<crate::stream::Streams>,
    /// Topic creation and deletion, for the admin API and self-service.
    managed_topics: web::Data<crate::topics::Topics>,
}

impl Application {
    /// Connects the clients, binds the listeners and builds the servers.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let token = AdminToken::new(settings.require_admin_token()?);
        let store = Store::connect_lazy(&settings.store_options())?;
        let producer = Arc::new(Producer::new(&settings.kafka, settings.produce.timeout)?);
        let metadata = Metadata::new(&settings.kafka)?;
        let topics = Arc::new(TopicAdmin::new(
            &settings.kafka,
            producer.clone(),
            metadata.clone(),
        )?);
        let authenticator = Arc::new(Authenticator::new(
            store.clone(),
            settings.auth.cache_ttl,
            Verifier::new(
                settings.auth.max_concurrent_verifications,
                settings.auth.verification_queue,
                settings.auth.verification_nice,
            )
            .map_err(StartupError::Threads)?,
            // A quarter of the pool at most for logins not yet cached.
            (settings.database.max_connections as usize / 4).max(1),
            LoginThrottle::new(
                settings.auth.login_attempts_per_minute,
                settings.auth.address_attempts_per_minute,
                settings.auth.max_verifications_per_address,
            ),
        )?);
        let prometheus = web::Data::new(metrics::install());
        metrics::spawn_sampler(store.clone(), producer.clone());
        let readiness = web::Data::new(Readiness::spawn(store.clone(), topics.clone()));
        let cluster = Cluster::spawn(store.clone());
        let limits = Arc::new(TenantLimits::new(cluster.clone()));
        let streams = Arc::new(crate::stream::Streams::new(cluster.clone()));
        let admission = Arc::new(ConsumeAdmission::new(store.clone(), cluster));
        let trusted = web::Data::new(TrustedProxies(
            settings
                .http
                .trusted_networks()
                .map_err(ConfigError::from)?,
        ));
        let recent = RecentMessages::new(settings.consume.read_cache_bytes, RECENT_IDLE);
        let watermarks = Arc::new(Watermarks::new(
            metadata,
            settings.kafka.request_timeout,
            recent.clone(),
        ));
        watermarks
            .clone()
            .spawn_poller(settings.consume.watermark_poll);
        let readers = Readers::new(&settings.kafka, settings.consume.readers, recent)?;
        readers.spawn_janitor(READER_IDLE);
        let mirror = match settings.consume.mirror_interval {
            interval if interval.is_zero() => Mirror::disabled(),
            interval => Mirror::spawn(&settings.kafka, interval)?,
        };
        let kafka_groups = Arc::new(KafkaGroups::new(&settings.kafka)?);
        consume::spawn_group_retention(
            store.clone(),
            kafka_groups.clone(),
            settings.consume.group_retention,
            settings.consume.group_sweep_interval,
        );
        consume::spawn_receipt_purge(
            store.clone(),
            settings.consume.receipt_retention,
            settings.consume.group_sweep_interval,
        );
        let group_cleanup = admin::groups::GroupCleanup {
            kafka: kafka_groups,
            settle: (!settings.consume.mirror_interval.is_zero())
                .then(|| settings.consume.mirror_interval + settings.kafka.request_timeout),
        };
        let shutdown = Shutdown::new();
        let consumption = Arc::new(consume::Service::new(consume::Parts {
            store: store.clone(),
            readers,
            watermarks: watermarks.clone(),
            settings: settings.consume.clone(),
            mirror,
            topics: topics.clone(),
            quotas: limits.clone(),
            admission: admission.clone(),
            shutdown: shutdown.clone(),
            producer: producer.clone(),
        }));
        notices::spawn(
            &store,
            Caches {
                auth: authenticator.clone(),
                topics: topics.clone(),
                watermarks: watermarks.clone(),
                consumption: consumption.clone(),
                admission,
                streams: streams.clone(),
            },
        );
        let production = produce::Service::new(
            producer.clone(),
            topics.clone(),
            watermarks,
            Announcer::spawn(store.clone()),
            limits.clone(),
            settings.produce.clone(),
            store.clone(),
        );
        produce::spawn_idempotency_purge(
            store.clone(),
            settings.produce.idempotency_max_keys,
            settings.produce.idempotency_purge_interval,
        );
        crate::groups::spawn_lag_gauge(
            store.clone(),
            topics.clone(),
            settings.consume.lag_interval,
        );
        let groups = crate::groups::Groups::new(store.clone(), topics.clone());
        let managed_topics =
            crate::topics::Topics::new(store.clone(), topics.clone(), consumption.clone());
        let handles = Handles {
            store: web::Data::new(store),
            topics: web::Data::from(topics),
            produce: web::Data::new(production),
            consume: web::Data::from(consumption),
            authenticator: web::Data::from(authenticator),
            limits: web::Data::from(limits),
            trusted,
            shutdown: web::Data::new(shutdown.clone()),
            readiness,
            groups: web::Data::new(groups),
            streams: web::Data::from(streams),
            managed_topics: web::Data::new(managed_topics),
        };

        let admin_listener = bind("admin", settings.admin.listen)?;
        let admin_addr = local_addr("admin", settings.admin.listen, &admin_listener)?;
        let admin = admin_server(
            admin_listener,
            handles.clone(),
            AdminOnly {
                token,
                prometheus,
                group_cleanup: web::Data::new(group_cleanup),
            },
            &settings,
        )
        .map_err(|source| bind_error("admin", admin_addr, source))?;

        let public_listener = bind("public", settings.listen)?;
        let public_addr = local_addr("public", settings.listen, &public_listener)?;
        let public = public_server(public_listener, handles, &settings)?;
        Ok(Self {
            admin_addr,
            public_addr,
            admin,
            public,
            producer,
            shutdown,
        })
    }

    /// The address the admin API actually listens on.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The address the data plane actually listens on.
    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    /// Serves until SIGTERM or SIGINT, then drains: readiness goes false,
    /// long polls answer, new connections are refused, requests in flight
    /// get the grace period, and the producer is flushed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(admin = %self.admin_addr, public = %self.public_addr, "sluice is serving");
        let (admin, public) = (self.admin.handle(), self.public.handle());
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            shutdown::signal().await;
            tracing::info!("shutting down: draining requests in flight");
            shutdown.begin();
            tokio::join!(public.stop(true), admin.stop(true));
        });
        let result = futures::future::try_join(self.admin, self.public).await;
        let producer = self.producer;
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(10))).await;
        result.map(|_| ())
    }
}

fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).map_err(|source| bind_error(listener, addr, source))
}

fn local_addr(
    listener: &'static str,
    addr: SocketAddr,
    socket: &TcpListener,
) -> Result<SocketAddr, StartupError> {
    socket
        .local_addr()
        .map_err(|source| bind_error(listener, addr, source))
}

fn bind_error(listener: &'static str, addr: SocketAddr, source: std::io::Error) -> StartupError {
    StartupError::Bind {
        listener,
        addr,
        source,
    }
}

fn json_configs() -> (web::JsonConfig, web::QueryConfig, web::PathConfig) {
    (
        web::JsonConfig::default()
            .limit(admin::ADMIN_BODY_LIMIT)
            .content_type_required(false)
            .error_handler(error::json_error),
        web::QueryConfig::default().error_handler(error::query_error),
        web::PathConfig::default().error_handler(error::path_error),
    )
}

/// What only the admin listener's handlers depend on.
struct AdminOnly {
    token: AdminToken,
    prometheus: web::Data<Option<metrics_exporter_prometheus::PrometheusHandle>>,
    group_cleanup: web::Data<admin::groups::GroupCleanup>,
}

fn admin_server(
    listener: TcpListener,
    handles: Handles,
    only: AdminOnly,
    settings: &Settings,
) -> std::io::Result<Server> {
    let AdminOnly {
        token,
        prometheus,
        group_cleanup,
    } = only;
    let metrics_token = web::Data::new(MetricsToken(
        settings.admin.metrics_token.as_ref().map(AdminToken::new),
    ));
    let token = web::Data::new(token);
    let defaults = web::Data::new(QuotaDefaults {
        quota: settings.quota,
        min_byte_burst: settings.produce.max_message_bytes as u64,
    });
    let body_timeout = web::Data::new(BodyReadTimeout(settings.http.body_read_timeout));
    let server = HttpServer::new(move || {
        let (json, query, path) = json_configs();
        let app = App::new()
            .wrap(from_fn(body_deadline::read_within_deadline))
            .wrap(
                ErrorHandlers::new()
                    .handler(StatusCode::METHOD_NOT_ALLOWED, error::method_not_allowed),
            )
            .wrap(DefaultHeaders::new().add(("Cache-Control", "no-store")))
            .wrap(from_fn(metrics::observe_admin))
            .wrap(from_fn(request_id::tag_responses))
            .wrap(TracingLogger::default())
            .app_data(handles.store.clone())
            .app_data(handles.topics.clone())
            .app_data(handles.consume.clone())
            .app_data(handles.shutdown.clone())
            .app_data(handles.readiness.clone())
            .app_data(token.clone())
            .app_data(metrics_token.clone())
            .app_data(defaults.clone())
            .app_data(body_timeout.clone())
            .app_data(prometheus.clone())
            .app_data(group_cleanup.clone())
            .app_data(handles.groups.clone())
            .app_data(handles.managed_topics.clone())
            .app_data(json)
            .app_data(query)
            .app_data(path);
        routes::admin(app)
    })
    .workers(2)
    .keep_alive(settings.http.keep_alive_timeout)
    .client_request_timeout(settings.http.client_request_timeout)
    .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

fn public_server(
    listener: TcpListener,
    handles: Handles,
    settings: &Settings,
) -> Result<Server, StartupError> {
    let addr = settings.listen;
    let route_options = PublicOptions {
        noop_routes: settings.http.noop_routes,
        consume: settings.consume.clone(),
        produce: settings.produce.clone(),
    };
    let body_timeout = web::Data::new(BodyReadTimeout(settings.http.body_read_timeout));
    let connections = Connections::new(
        settings.http.connection_limits(),
        settings
            .http
            .trusted_networks()
            .map_err(ConfigError::from)?,
    );
    let server = HttpServer::new(move || {
        let (json, query, path) = json_configs();
        let app = App::new()
            .wrap(from_fn(keep_alive::keep_alive_after_refusal))
            .wrap(from_fn(body_deadline::read_within_deadline))
            .wrap(
                ErrorHandlers::new()
                    .handler(StatusCode::METHOD_NOT_ALLOWED, error::method_not_allowed),
            )
            .wrap(from_fn(compression::keep_small_and_streams_plain))
            .wrap(compression::Compress::default())
            .wrap(from_fn(compression::unmark_plain))
            .wrap(from_fn(connections::limit_streams))
            .wrap(from_fn(metrics::rate_limit_headers))
            .wrap(from_fn(metrics::observe_public))
            .wrap(from_fn(request_id::tag_responses))
            .wrap(TracingLogger::default())
            .app_data(handles.authenticator.clone())
            .app_data(handles.limits.clone())
            .app_data(handles.trusted.clone())
            .app_data(handles.produce.clone())
            .app_data(handles.consume.clone())
            .app_data(handles.shutdown.clone())
            .app_data(handles.readiness.clone())
            .app_data(body_timeout.clone())
            .app_data(handles.groups.clone())
            .app_data(handles.streams.clone())
            .app_data(handles.managed_topics.clone())
            .app_data(json)
            .app_data(query)
            .app_data(path);
        routes::public(app, &route_options)
    })
    .keep_alive(settings.http.keep_alive_timeout)
    .client_request_timeout(settings.http.client_request_timeout)
    // actix counts per worker and stops accepting at its cap; the
    // registry's total, enforced in `on_connect`, is the real cap.
    .max_connections(settings.http.max_connections)
    .on_connect(
        move |io: &dyn std::any::Any, extensions: &mut actix_web::dev::Extensions| {
            connections.on_connect(io, extensions)
        },
    )
    .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
    .disable_signals();
    let server = if let Some(files) = settings.tls.files().map_err(ConfigError::from)? {
        let resolver = Arc::new(CertResolver::new(&files.cert, &files.key)?);
        tls::reload_on_sighup(resolver.clone());
        server
            .listen_rustls_0_23(listener, tls::server_config(resolver)?)
            .map_err(|source| bind_error("public", addr, source))?
    } else {
        tracing::warn!(%addr, "tls.enabled is false: the public listener serves plain HTTP");
        server
            .listen(listener)
            .map_err(|source| bind_error("public", addr, source))?
    };
    Ok(server.run())
}
