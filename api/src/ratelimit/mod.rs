//! Per-tenant rate limiting (governor's GCRA, on requests and on bytes),
//! split fairly between the live nodes of the cluster, and the throttle on
//! password guessing.

mod cluster;
mod logins;
mod tenants;

pub use cluster::Cluster;
pub use logins::{client_address, client_network, LoginPermit, LoginThrottle};
pub use tenants::{Admission, TenantLimits};
