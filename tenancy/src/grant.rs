//! A grant: read and/or write on a topic prefix, for one user.

use serde::Serialize;

use crate::error::ValidationError;
use crate::names::GrantPrefix;

/// What one user may do on the topics under one prefix. Anything no grant
/// covers is denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Grant {
    #[schema(value_type = String, example = "acme.orders.")]
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
