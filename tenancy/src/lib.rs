//! The tenancy model of sluice, with no HTTP in it.
//!
//! Everything an operator provisions lives here: tenants and their quotas,
//! users and their argon2id password hashes, topic-prefix grants, the topics
//! sluice manages, and the audit log. The `api` crate turns these into HTTP;
//! keeping them apart means the rules (names, prefixes, hashing) are tested
//! once and cannot drift between the admin plane and the data plane.

pub mod audit;
pub mod changes;
pub mod error;
pub mod grant;
pub mod initial_password;
pub mod names;
pub mod password;
pub mod quota;
pub mod store;

pub use audit::{Actor, AuditEntry, AuditFilter, ChangeNotice, CHANGES_CHANNEL};
pub use changes::{ChangeEvent, ChangeStream, ProducedNotice, PRODUCED_CHANNEL};
pub use error::{Error, ObjectKind, Result, ValidationError};
pub use grant::Grant;
pub use initial_password::{ImportedHash, InitialPassword, MIN_IMPORTED_PASSWORD_LEN};
pub use names::{GrantPrefix, GroupName, TenantName, TopicName, UserName};
pub use password::{NewCredentials, Password, Scratch};
pub use quota::{Quota, QuotaPatch};
pub use store::{
    Credentials, ExpiredGroup, GroupAdmission, GroupRecord, KeyClaim, Store, StoreOptions, Tenant,
    TenantPatch, TopicRecord, TopicReservation, User,
};
