//! Validated names. Each type can only be built through `parse`, so a value
//! that reaches the store or Kafka has already passed every rule: Kafka-legal
//! characters, lengths, and membership of the tenant's namespace.

use std::fmt;

use serde::Serialize;

use crate::error::ValidationError;

/// Kafka's own limit on topic-name length.
pub const MAX_TOPIC_LEN: usize = 249;
/// Tenant names are short: they prefix every topic, group and username.
pub const MAX_TENANT_LEN: usize = 32;
/// Length of the part of a username after `<tenant>.`.
pub const MAX_USER_LOCAL_LEN: usize = 64;

fn is_kafka_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'
}

/// Checks the characters and the dot structure of a dotted name: Kafka-legal
/// characters only, no empty segment (so no `..`, and no leading or trailing dot).
fn check_dotted(field: &'static str, value: &str) -> Result<(), ValidationError> {
    if let Some(bad) = value.chars().find(|c| !is_kafka_char(*c)) {
        return Err(ValidationError::new(
            field,
            format!("character {bad:?} is not allowed; use letters, digits, '.', '_' and '-'"),
        ));
    }
    if value.split('.').any(str::is_empty) {
        return Err(ValidationError::new(
            field,
            "must not start or end with '.' or contain '..'",
        ));
    }
    Ok(())
}

/// A tenant's namespace, e.g. `acme`. It has no dot, because the dot is the
/// delimiter between the namespace and everything inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    /// Lower-case letters, digits, `_` and `-`, starting with a letter or a
    /// digit, at most 32 characters. Starting with an alphanumeric keeps
    /// tenants away from Kafka's internal `__` topics.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let field = "name";
        if value.is_empty() || value.len() > MAX_TENANT_LEN {
            return Err(ValidationError::new(
                field,
                format!("a tenant name has 1 to {MAX_TENANT_LEN} characters"),
            ));
        }
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
        if !value.chars().all(ok_char) {
            return Err(ValidationError::new(
                field,
                "a tenant name uses only lower-case letters, digits, '_' and '-'",
            ));
        }
        if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(ValidationError::new(
                field,
                "a tenant name starts with a letter or a digit",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace prefix every name of this tenant starts with: `acme.`.
    pub fn namespace(&self) -> String {
        format!("{}.", self.0)
    }

    /// Returns the part of `name` after `<tenant>.`, or a validation error
    /// naming `field` if `name` lies outside this tenant's namespace.
    fn local_part<'a>(
        &self,
        field: &'static str,
        name: &'a str,
    ) -> Result<&'a str, ValidationError> {
        name.strip_prefix(self.0.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or_else(|| {
                ValidationError::new(
                    field,
                    format!("must start with the tenant's namespace '{}.'", self.0),
                )
            })
    }
}

/// A user, always `<tenant>.<local>`, e.g. `acme.reader`: the SASL username
/// convention OVH's users already have in their scripts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    pub fn parse(tenant: &TenantName, value: &str) -> Result<Self, ValidationError> {
        let field = "name";
        let local = tenant.local_part(field, value)?;
        if local.is_empty() || local.len() > MAX_USER_LOCAL_LEN {
            return Err(ValidationError::new(
                field,
                format!(
                    "the part after '{}' has 1 to {MAX_USER_LOCAL_LEN} characters",
                    tenant.namespace()
                ),
            ));
        }
        check_dotted(field, value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A topic prefix a grant applies to: `acme.` for the whole namespace, or
/// `acme.orders` / `acme.orders.` for part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct GrantPrefix(String);

impl GrantPrefix {
    pub fn parse(tenant: &TenantName, value: &str) -> Result<Self, ValidationError> {
        let field = "prefix";
        let local = tenant.local_part(field, value)?;
        if value.len() > MAX_TOPIC_LEN {
            return Err(ValidationError::new(
                field,
                format!("a prefix has at most {MAX_TOPIC_LEN} characters"),
            ));
        }
        // A trailing dot is meaningful here ("everything below"), so check the
        // part without it.
        let body = value.strip_suffix('.').unwrap_or(value);
        if !local.is_empty() {
            check_dotted(field, body)?;
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A prefix read back from the store, trusted as it was validated on
    /// the way in.
    pub(crate) fn unchecked(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// Whether this prefix covers `topic`. A prefix matches only at a `.`
    /// delimiter: `acme.orders` covers `acme.orders` and `acme.orders.eu`, but
    /// never `acme.orders2`; `acme.` covers everything inside `acme`.
    pub fn covers(&self, topic: &str) -> bool {
        let prefix = self.0.as_str();
        if prefix.ends_with('.') {
            topic.len() > prefix.len() && topic.starts_with(prefix)
        } else {
            topic
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        }
    }
}

/// A topic inside a tenant's namespace, e.g. `acme.orders`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TopicName(String);

impl TopicName {
    pub fn parse(tenant: &TenantName, value: &str) -> Result<Self, ValidationError> {
        let field = "topic";
        let local = tenant.local_part(field, value)?;
        if local.is_empty() || value.len() > MAX_TOPIC_LEN {
            return Err(ValidationError::new(
                field,
                format!("a topic name is '{}' followed by a name, at most {MAX_TOPIC_LEN} characters in all", tenant.namespace()),
            ));
        }
        check_dotted(field, value)?;
        Ok(Self(value.to_owned()))
    }

    /// The tenant a topic belongs to is the part before the first dot.
    pub fn tenant_of(value: &str) -> Option<&str> {
        value.split_once('.').map(|(tenant, _)| tenant)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A consumer group, scoped to a tenant: `orders-workers` in tenant `acme`
/// is Kafka group `acme.orders-workers`, so two tenants never share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct GroupName(String);

/// Longest group name; the Kafka group id adds the tenant and a dot.
pub const MAX_GROUP_LEN: usize = 100;

impl GroupName {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let field = "group";
        if value.is_empty() || value.len() > MAX_GROUP_LEN {
            return Err(ValidationError::new(
                field,
                format!("a group name has 1 to {MAX_GROUP_LEN} characters"),
            ));
        }
        check_dotted(field, value)?;
        Ok(Self(value.to_owned()))
    }

    /// The default group of a user: its name without the tenant, so that
    /// its Kafka group id is the username itself.
    pub fn default_for(user: &str) -> Self {
        let local = user.split_once('.').map_or(user, |(_, rest)| rest);
        Self(local.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The group id Kafka sees: `<tenant>.<group>`.
    pub fn kafka_id(&self, tenant: &TenantName) -> String {
        format!("{}.{}", tenant.as_str(), self.0)
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
display_as_str!(TenantName, UserName, GrantPrefix, TopicName, GroupName);

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> TenantName {
        TenantName::parse("acme").unwrap()
    }

    #[test]
    fn tenant_names_are_short_lowercase_and_dotless() {
        assert!(TenantName::parse("acme").is_ok());
        assert!(TenantName::parse("acme-2_x").is_ok());
        for bad in [
            "",
            "Acme",
            "ac.me",
            "_acme",
            "-acme",
            "acmé",
            &"a".repeat(33),
        ] {
            assert!(TenantName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn user_names_must_sit_inside_the_namespace() {
        assert!(UserName::parse(&acme(), "acme.app").is_ok());
        assert!(UserName::parse(&acme(), "acme.app.eu").is_ok());
        for bad in [
            "app",
            "acme.",
            "acme2.app",
            "acmeapp",
            "acme..x",
            "acme.x.",
            "acme.a b",
        ] {
            assert!(
                UserName::parse(&acme(), bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        let long = format!("acme.{}", "u".repeat(65));
        assert!(UserName::parse(&acme(), &long).is_err());
    }

    #[test]
    fn prefixes_must_sit_inside_the_namespace() {
        assert!(GrantPrefix::parse(&acme(), "acme.").is_ok());
        assert!(GrantPrefix::parse(&acme(), "acme.orders").is_ok());
        assert!(GrantPrefix::parse(&acme(), "acme.orders.").is_ok());
        for bad in [
            "acme",
            "acme2.",
            "other.x",
            "acme..",
            "acme.a..b",
            "acme.a*",
        ] {
            assert!(
                GrantPrefix::parse(&acme(), bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn a_prefix_matches_only_at_a_delimiter() {
        let whole = GrantPrefix::parse(&acme(), "acme.").unwrap();
        assert!(whole.covers("acme.orders"));
        assert!(!whole.covers("acme2.x"));
        assert!(!whole.covers("acme."));

        let orders = GrantPrefix::parse(&acme(), "acme.orders").unwrap();
        assert!(orders.covers("acme.orders"));
        assert!(orders.covers("acme.orders.eu"));
        assert!(!orders.covers("acme.orders2"));
        assert!(!orders.covers("acme.order"));

        let below = GrantPrefix::parse(&acme(), "acme.orders.").unwrap();
        assert!(below.covers("acme.orders.eu"));
        assert!(!below.covers("acme.orders"));
    }

    #[test]
    fn group_names_are_kafka_legal_and_the_default_is_the_users_own() {
        assert!(GroupName::parse("workers").is_ok());
        assert!(GroupName::parse("eu.workers-2").is_ok());
        for bad in ["", "a b", "a..b", ".a", "a/b", &"g".repeat(101)] {
            assert!(GroupName::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let group = GroupName::default_for("acme.app");
        assert_eq!(group.as_str(), "app");
        assert_eq!(group.kafka_id(&acme()), "acme.app");
    }

    #[test]
    fn topic_names_are_kafka_legal_and_namespaced() {
        assert!(TopicName::parse(&acme(), "acme.orders").is_ok());
        for bad in [
            "orders",
            "acme.",
            "acme2.orders",
            "acme.or/ders",
            "acme.a..b",
        ] {
            assert!(
                TopicName::parse(&acme(), bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        let long = format!("acme.{}", "t".repeat(245));
        assert!(TopicName::parse(&acme(), &long).is_err());
        assert_eq!(TopicName::tenant_of("acme.orders"), Some("acme"));
    }
}
