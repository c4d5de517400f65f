//! A grant: read and/or write on a topic prefix, for one user.

use serde::Serialize;

use crate::error::ValidationError;
use crate::names::GrantPrefix;

/// What one user may do on the topics under one prefix. Anything no grant
/// covers is denied.
///
/// `Serialize` is for the audit log's `details`, which records grants as
/// they were given; the admin API answers with its own view of a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub prefix: GrantPrefix,
    pub read: bool,
    pub write: bool,
}

impl Grant {
    /// A grant must give something: one with neither right is a mistake the
    /// operator wants to hear about, not a silent no-op.
    pub fn new(prefix: GrantPrefix, read: bool, write: bool) -> Result<Self, ValidationError> {
        if !read && !write {
            return Err(ValidationError::new(
                "grant",
                "a grant gives read, write or both",
            ));
        }
        Ok(Self {
            prefix,
            read,
            write,
        })
    }
}
