//! The one error type of the tenancy crate. Callers match on its variants to
//! pick a status code; the database error stays inside so that no caller ever
//! needs to know sqlx exists.

use std::fmt;

/// Which kind of object an error is about; it becomes part of stable error
/// codes such as `tenant_not_found`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Tenant,
    User,
    Grant,
    Topic,
    Group,
}

impl ObjectKind {
    /// Lower-case name used in messages and error codes.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Tenant => "tenant",
            ObjectKind::User => "user",
            ObjectKind::Grant => "grant",
            ObjectKind::Topic => "topic",
            ObjectKind::Group => "group",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that breaks a rule, naming the field so that the caller can fix
/// exactly that field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ValidationError {
    /// The field, as the user spelt it in the request (e.g. `name`, `prefix`).
    pub field: &'static str,
    /// What is wrong, in words a user can act on. Never contains a secret.
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Everything that can go wrong in the tenancy store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{kind} '{name}' not found")]
    NotFound { kind: ObjectKind, name: String },
    #[error("{kind} '{name}' already exists")]
    AlreadyExists { kind: ObjectKind, name: String },
    #[error("tenant '{name}' still has {users} user(s) and {topics} topic(s); delete them first or pass force=true")]
    TenantInUse {
        name: String,
        users: i64,
        topics: i64,
    },
    #[error("{what} would exceed the tenant's quota: {detail}")]
    QuotaExceeded { what: &'static str, detail: String },
    /// A GET named a new group while the tenant already has `max` groups.
    #[error("tenant '{tenant}' already has its {max} consumer group(s) (quota max_groups); use an existing group, or ask the operator to delete unused ones or raise the quota")]
    GroupLimitReached { tenant: String, max: u32 },
    /// A receipt this tenant never had on this topic: unknown, forged, of
    /// another tenant, or forgotten long after it ended.
    #[error("no such receipt on this topic")]
    ReceiptNotFound,
    /// The receipt's visibility ended (or it was nacked, or its group was
    /// moved): its messages were or will be delivered again.
    #[error(
        "the receipt has expired or was released: its messages were or will be delivered again"
    )]
    ReceiptExpired,
    /// A nack or extend of a receipt already acked: there is nothing left
    /// to release.
    #[error("the receipt was already acked")]
    ReceiptSettled,
    #[error("database unavailable while trying to {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// An imported plaintext password shorter than the minimum. The
    /// message names the rule, never the password.
    #[error("the password is too weak: it must be at least {min} characters long")]
    WeakPassword { min: usize },
}

impl Error {
    /// The same error for a second caller, e.g. requests that waited on
    /// one shared credentials lookup. Sources that cannot be cloned are
    /// carried as their text.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Invalid(v) => Error::Invalid(v.clone()),
            Error::NotFound { kind, name } => Error::not_found(*kind, name.clone()),
            Error::AlreadyExists { kind, name } => Error::exists(*kind, name.clone()),
            Error::TenantInUse {
                name,
                users,
                topics,
            } => Error::TenantInUse {
                name: name.clone(),
                users: *users,
                topics: *topics,
            },
            Error::QuotaExceeded { what, detail } => Error::QuotaExceeded {
                what,
                detail: detail.clone(),
            },
            Error::GroupLimitReached { tenant, max } => Error::GroupLimitReached {
                tenant: tenant.clone(),
                max: *max,
            },
            Error::Database { context, source } => Error::Database {
                context,
                source: sqlx::Error::Protocol(source.to_string()),
            },
            Error::Migrate(err) => Error::Migrate(sqlx::migrate::MigrateError::Source(Box::new(
                std::io::Error::other(err.to_string()),
            ))),
            Error::Hashing(text) => Error::Hashing(text.clone()),
            Error::ReceiptNotFound => Error::ReceiptNotFound,
            Error::ReceiptExpired => Error::ReceiptExpired,
            Error::ReceiptSettled => Error::ReceiptSettled,
            Error::WeakPassword { min } => Error::WeakPassword { min: *min },
        }
    }

    /// Wraps a database error with what the store was doing at the time.
    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |source| Error::Database { context, source }
    }

    pub(crate) fn not_found(kind: ObjectKind, name: impl Into<String>) -> Error {
        Error::NotFound {
            kind,
            name: name.into(),
        }
    }

    pub(crate) fn exists(kind: ObjectKind, name: impl Into<String>) -> Error {
        Error::AlreadyExists {
            kind,
            name: name.into(),
        }
    }
}

/// Result alias for the tenancy crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
