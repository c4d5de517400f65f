//! The admin plane: its own listener, a bearer token, and the handlers that
//! provision tenants, users, grants, topics and groups and read the audit
//! log. `crate::routes` says where each is served.

pub mod audit;
mod auth;
pub mod grants;
pub mod groups;
pub mod health;
mod prometheus;
pub mod tenants;
pub mod topics;
pub mod users;
pub mod views;

pub use auth::{
    require_admin_token, require_metrics_token, AdminToken, AuditActor, MetricsToken, ACTOR_HEADER,
};
pub use health::{healthz, readyz, Readiness};
pub use prometheus::metrics;
pub use tenants::QuotaDefaults;

/// Largest admin request body; admin requests are small objects.
pub const ADMIN_BODY_LIMIT: usize = 64 * 1024;
