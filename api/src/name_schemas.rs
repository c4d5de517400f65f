//! The naming rules of `tenancy::names` as OpenAPI schemas, so that the
//! documents promise no more than the server accepts: a client (or a
//! fuzzer) that follows the patterns sends names that parse. Each schema is
//! a named component that path parameters and body fields point to.
//!
//! A pattern cannot say everything: the tenant part of a user, topic or
//! prefix must also be the tenant of the route (or of the caller), and a
//! user's part after the tenant has at most 64 characters. The tests below
//! hold the patterns to the parsers.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// A tenant: lower-case letters, digits, `_` and `-`, starting with a
/// letter or a digit.
pub const TENANT: &str = r"^[a-z0-9][a-z0-9_-]{0,31}$";
/// One or more dot-separated segments of Kafka-legal characters.
const DOTTED: &str = r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*";

fn tenant_dot() -> &'static str {
    r"^[a-z0-9][a-z0-9_-]{0,31}\."
}

/// `<tenant>.<name>`, for users and topics.
pub fn in_tenant() -> String {
    format!("{}{DOTTED}$", tenant_dot())
}

/// `<tenant>.`, or `<tenant>.<name>` with an optional trailing dot.
pub fn prefix() -> String {
    format!(r"{}({DOTTED}\.?)?$", tenant_dot())
}

/// A group: dot-separated segments, no tenant.
pub fn group() -> String {
    format!("^{DOTTED}$")
}

/// A string schema with a pattern and length bounds.
fn string(
    pattern: String,
    min: usize,
    max: usize,
    example: &str,
    description: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(pattern))
        .min_length(Some(min))
        .max_length(Some(max))
        .examples([example])
        .description(Some(description))
        .into()
}

macro_rules! name_schema {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

name_schema!(
    /// A tenant's namespace, e.g. `acme`.
    TenantName => string(
        TENANT.to_owned(), 1, tenancy::names::MAX_TENANT_LEN, "acme",
        "A tenant: 1 to 32 lower-case letters, digits, '_' and '-', starting with a letter or a digit.",
    )
);
name_schema!(
    /// A user, `<tenant>.<name>`.
    UserName => string(
        in_tenant(), 3, tenancy::names::MAX_TENANT_LEN + 1 + tenancy::names::MAX_USER_LOCAL_LEN, "acme.app",
        "A user: the tenant, a dot, and 1 to 64 characters of dot-separated letters, digits, '_' and '-'.",
    )
);
name_schema!(
    /// A topic, `<tenant>.<name>`.
    TopicName => string(
        in_tenant(), 3, tenancy::names::MAX_TOPIC_LEN, "acme.orders",
        "A topic: the tenant, a dot, and dot-separated letters, digits, '_' and '-'; at most 249 characters in all.",
    )
);
name_schema!(
    /// A consumer group of a tenant, without the tenant.
    GroupName => string(
        group(), 1, tenancy::names::MAX_GROUP_LEN, "orders-workers",
        "A consumer group of the tenant: 1 to 100 characters of dot-separated letters, digits, '_' and '-'.",
    )
);
name_schema!(
    /// The topics a grant covers.
    GrantPrefix => string(
        prefix(), 2, tenancy::names::MAX_TOPIC_LEN, "acme.orders.",
        "A topic prefix: `acme.` for the whole tenant, `acme.orders` for that topic and those below it, `acme.orders.` for those below it only.",
    )
);

name_schema!(
    /// An `Idempotency-Key` header: visible ASCII, as
    /// `produce::idempotency::IdempotencyKey` parses it.
    IdempotencyKey => string(
        r"^[!-~]{1,255}$".to_owned(), 1, crate::produce::idempotency::MAX_KEY_LEN, "order-42",
        "1 to 255 visible ASCII characters (no spaces), unique per logical request of the tenant.",
    )
);

#[cfg(test)]
mod tests {
    use regex::Regex;
    use tenancy::names as rules;

    use super::*;

    /// A name the pattern accepts that the parser refuses, or the reverse,
    /// fails here (lengths aside, which the schemas bound separately).
    fn agree(pattern: &str, samples: &[&str], parse: impl Fn(&str) -> bool) {
        let re = Regex::new(pattern).unwrap();
        for sample in samples {
            assert_eq!(
                re.is_match(sample),
                parse(sample),
                "{pattern} on {sample:?}"
            );
        }
    }

    const SAMPLES: &[&str] = &[
        "",
        "a",
        "acme",
        "Acme",
        "_acme",
        "-a",
        "a-b_c",
        "acme.",
        ".acme",
        "acme.orders",
        "acme.orders.",
        "acme..orders",
        "acme.orders.eu",
        "acme.Orders_2-x",
        "acme.or ders",
        "acme.ord/ers",
        "acme.é",
        "globex.orders",
        "acme.orders..",
        "acme.-",
        "a.b.c.d",
        "0.0",
        "acme.app",
        "acme",
        "acme..",
    ];

    #[test]
    fn the_tenant_pattern_is_the_tenant_rule() {
        agree(TENANT, SAMPLES, |s| rules::TenantName::parse(s).is_ok());
    }

    /// Parses `value` in the tenant it names, as the server does once it
    /// knows the route's (or the caller's) tenant.
    fn in_own_tenant<T, E>(
        value: &str,
        parse: impl Fn(&rules::TenantName, &str) -> Result<T, E>,
    ) -> bool {
        value
            .split_once('.')
            .and_then(|(tenant, _)| rules::TenantName::parse(tenant).ok())
            .is_some_and(|tenant| parse(&tenant, value).is_ok())
    }

    #[test]
    fn the_user_and_topic_patterns_are_their_rules() {
        agree(&in_tenant(), SAMPLES, |s| {
            in_own_tenant(s, rules::TopicName::parse)
        });
        agree(&in_tenant(), SAMPLES, |s| {
            in_own_tenant(s, rules::UserName::parse)
        });
    }

    #[test]
    fn the_prefix_pattern_is_the_prefix_rule() {
        agree(&prefix(), SAMPLES, |s| {
            in_own_tenant(s, rules::GrantPrefix::parse)
        });
    }

    #[test]
    fn the_group_pattern_is_the_group_rule() {
        agree(&group(), SAMPLES, |s| rules::GroupName::parse(s).is_ok());
    }
}
