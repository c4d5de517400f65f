//! Who a request acts as, and what it may do.

use tenancy::{Grant, Quota, TenantName, TopicName};

use crate::error::ApiError;

/// What a request wants to do on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    /// Create or delete the topic (self-service topics).
    Manage,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Manage => "manage",
        }
    }

    /// Whether `grant` gives this access (on whatever its prefix covers).
    fn given_by(self, grant: &Grant) -> bool {
        match self {
            Access::Read => grant.read,
            Access::Write => grant.write,
            Access::Manage => grant.manage,
        }
    }
}

/// An authenticated user: its tenant, grants and quota, as of the moment
/// its credentials were verified (changes drop the cached copy).
#[derive(Debug, Clone)]
pub struct Principal {
    pub username: String,
    pub tenant: TenantName,
    pub grants: Vec<Grant>,
    pub quota: Quota,
}

impl Principal {
    /// Checks that `topic` lies in the user's tenant and that a grant gives
    /// `access` on it. A topic of another tenant is refused with 403 before
    /// its name is even parsed, so nothing about it leaks.
    pub fn authorize(&self, topic: &str, access: Access) -> Result<TopicName, ApiError> {
        let inside = topic
            .strip_prefix(self.tenant.as_str())
            .is_some_and(|rest| rest.starts_with('.'));
        if !inside {
            return Err(self.forbidden(topic, access));
        }
        let topic = TopicName::parse(&self.tenant, topic)?;
        let granted = self
            .grants
            .iter()
            .any(|grant| grant.prefix.covers(topic.as_str()) && access.given_by(grant));
        if granted {
            Ok(topic)
        } else {
            Err(self.forbidden(topic.as_str(), access))
        }
    }

    /// Whether any grant of the user covers `topic`, whatever the right:
    /// what `GET /topics` lists. Grants never cover another tenant's
    /// topics, since their prefixes all start with the user's tenant.
    pub fn sees(&self, topic: &str) -> bool {
        self.grants.iter().any(|grant| grant.prefix.covers(topic))
    }

    fn forbidden(&self, topic: &str, access: Access) -> ApiError {
        ApiError::Forbidden(format!(
            "user '{}' has no {} grant on topic '{topic}'",
            self.username,
            access.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use tenancy::GrantPrefix;

    use super::*;

    fn principal(grants: &[(&str, bool, bool)]) -> Principal {
        with_manage(grants, &[])
    }

    /// A principal with read/write grants and manage-only grants.
    fn with_manage(grants: &[(&str, bool, bool)], manage: &[&str]) -> Principal {
        let tenant = TenantName::parse("acme").unwrap();
        Principal {
            username: "acme.app".into(),
            grants: grants
                .iter()
                .map(|(p, r, w)| Grant {
                    prefix: GrantPrefix::parse(&tenant, p).unwrap(),
                    read: *r,
                    write: *w,
                    manage: false,
                })
                .chain(manage.iter().map(|p| Grant {
                    prefix: GrantPrefix::parse(&tenant, p).unwrap(),
                    read: false,
                    write: false,
                    manage: true,
                }))
                .collect(),
            tenant,
            quota: tenancy::Quota {
                requests_per_second: 1,
                bytes_per_second: 1,
                burst_seconds: 1,
                max_topics: 1,
                max_partitions: 1,
                max_groups: 1,
                max_concurrent_consumes: 1,
                max_streams: 1,
            },
        }
    }

    #[test]
    fn a_topic_of_another_tenant_is_forbidden_whatever_the_grants() {
        let p = principal(&[("acme.", true, true)]);
        assert!(matches!(
            p.authorize("acme2.x", Access::Write),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            p.authorize("globex.orders", Access::Read),
            Err(ApiError::Forbidden(_))
        ));
        assert!(p.authorize("acme.orders", Access::Write).is_ok());
    }

    #[test]
    fn a_read_grant_does_not_allow_writing() {
        let p = principal(&[("acme.orders", true, false)]);
        assert!(p.authorize("acme.orders", Access::Read).is_ok());
        assert!(matches!(
            p.authorize("acme.orders", Access::Write),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            p.authorize("acme.orders2", Access::Read),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn manage_is_a_right_of_its_own_under_its_prefix_only() {
        let p = with_manage(&[("acme.", true, true)], &["acme.self"]);
        assert!(p.authorize("acme.self.x", Access::Manage).is_ok());
        assert!(matches!(
            p.authorize("acme.orders", Access::Manage),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            p.authorize("globex.self.x", Access::Manage),
            Err(ApiError::Forbidden(_))
        ));
        assert!(p.sees("acme.orders") && p.sees("acme.self.x"));
        assert!(!p.sees("globex.orders"));
    }
}
