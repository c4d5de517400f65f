//! A grant: read, write and/or manage on a topic prefix, for one user.

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
    /// Create and delete the tenant's topics under the prefix on the data
    /// plane (OVH's admin role), within the tenant's quotas.
    pub manage: bool,
}

impl Grant {
    /// A grant must give something: one with no right is a mistake the
    /// operator wants to hear about, not a silent no-op.
    pub fn new(
        prefix: GrantPrefix,
        read: bool,
        write: bool,
        manage: bool,
    ) -> Result<Self, ValidationError> {
        if !read && !write && !manage {
            return Err(ValidationError::new(
                "grant",
                "a grant gives read, write, manage or several of them",
            ));
        }
        Ok(Self {
            prefix,
            read,
            write,
            manage,
        })
    }
}
