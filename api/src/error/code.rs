//! The catalogue of stable error codes: each code's name, HTTP status and
//! whether the answer carries `Retry-After`, in one table. Clients branch on
//! these names, so they never change; the docs' error tables are checked
//! against [`Code::ALL`] by a test.

use actix_web::http::StatusCode;

/// Declares [`Code`] and its table from one list, so that a code cannot be
/// added without its status and retry rule.
macro_rules! catalogue {
    ($($variant:ident => ($name:literal, $status:ident, $retry:literal),)+) => {
        /// Every error code a client can see, in an error body's `code` or
        /// a produce result's `Error`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant,)+
        }

        impl Code {
            /// Every code, in catalogue order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)+];

            /// The stable name clients branch on.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)+
                }
            }

            /// The HTTP status an error with this code is answered with.
            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status,)+
                }
            }

            /// Whether the answer carries `Retry-After`: the condition
            /// passes on its own, so the same request may succeed later.
            pub fn retry_after(self) -> bool {
                match self {
                    $(Code::$variant => $retry,)+
                }
            }
        }
    };
}

catalogue! {
    // Bad input (400): the request is wrong as it is.
    MalformedJson => ("malformed_json", BAD_REQUEST, false),
    EmptyBatch => ("empty_batch", BAD_REQUEST, false),
    InvalidMessage => ("invalid_message", BAD_REQUEST, false),
    InvalidTimestamp => ("invalid_timestamp", BAD_REQUEST, false),
    InvalidBase64 => ("invalid_base64", BAD_REQUEST, false),
    InvalidPartition => ("invalid_partition", BAD_REQUEST, false),
    InvalidQuery => ("invalid_query", BAD_REQUEST, false),
    InvalidPath => ("invalid_path", BAD_REQUEST, false),
    UnreadableBody => ("unreadable_body", BAD_REQUEST, false),
    InvalidLimit => ("invalid_limit", BAD_REQUEST, false),
    InvalidWait => ("invalid_wait", BAD_REQUEST, false),
    InvalidGroup => ("invalid_group", BAD_REQUEST, false),
    InvalidTopic => ("invalid_topic", BAD_REQUEST, false),
    InvalidName => ("invalid_name", BAD_REQUEST, false),
    InvalidPrefix => ("invalid_prefix", BAD_REQUEST, false),
    InvalidGrant => ("invalid_grant", BAD_REQUEST, false),
    InvalidGrants => ("invalid_grants", BAD_REQUEST, false),
    InvalidQuota => ("invalid_quota", BAD_REQUEST, false),
    InvalidPartitions => ("invalid_partitions", BAD_REQUEST, false),
    InvalidReplicationFactor => ("invalid_replication_factor", BAD_REQUEST, false),
    InvalidConfig => ("invalid_config", BAD_REQUEST, false),
    InvalidTo => ("invalid_to", BAD_REQUEST, false),
    InvalidAck => ("invalid_ack", BAD_REQUEST, false),
    InvalidVisibility => ("invalid_visibility", BAD_REQUEST, false),
    InvalidOffsets => ("invalid_offsets", BAD_REQUEST, false),
    InvalidDelay => ("invalid_delay", BAD_REQUEST, false),
    KafkaRefused => ("kafka_refused", BAD_REQUEST, false),
    InvalidSeek => ("invalid_seek", BAD_REQUEST, false),
    InvalidDeadLetters => ("invalid_dead_letters", BAD_REQUEST, false),
    InvalidFilter => ("invalid_filter", BAD_REQUEST, false),
    InvalidCredit => ("invalid_credit", BAD_REQUEST, false),
    InvalidFrame => ("invalid_frame", BAD_REQUEST, false),
    InvalidPassword => ("invalid_password", BAD_REQUEST, false),
    InvalidPasswordHash => ("invalid_password_hash", BAD_REQUEST, false),
    WeakPassword => ("weak_password", BAD_REQUEST, false),
    InvalidIdempotencyKey => ("invalid_idempotency_key", BAD_REQUEST, false),
    // The one 422, as the IETF Idempotency-Key draft says: a key sent
    // again with a different request.
    IdempotencyKeyReused => ("idempotency_key_reused", UNPROCESSABLE_ENTITY, false),
    // Who you are and what you may do.
    Unauthorized => ("unauthorized", UNAUTHORIZED, false),
    Forbidden => ("forbidden", FORBIDDEN, false),
    // What does not exist.
    TenantNotFound => ("tenant_not_found", NOT_FOUND, false),
    UserNotFound => ("user_not_found", NOT_FOUND, false),
    GrantNotFound => ("grant_not_found", NOT_FOUND, false),
    TopicNotFound => ("topic_not_found", NOT_FOUND, false),
    GroupNotFound => ("group_not_found", NOT_FOUND, false),
    ReceiptNotFound => ("receipt_not_found", NOT_FOUND, false),
    RouteNotFound => ("route_not_found", NOT_FOUND, false),
    MethodNotAllowed => ("method_not_allowed", METHOD_NOT_ALLOWED, false),
    UpgradeRequired => ("upgrade_required", UPGRADE_REQUIRED, false),
    // The client was too slow.
    BodyTimeout => ("body_timeout", REQUEST_TIMEOUT, false),
    StreamIdle => ("stream_idle", REQUEST_TIMEOUT, false),
    // Conflicts with what exists.
    TenantExists => ("tenant_exists", CONFLICT, false),
    UserExists => ("user_exists", CONFLICT, false),
    GrantExists => ("grant_exists", CONFLICT, false),
    TopicExists => ("topic_exists", CONFLICT, false),
    TenantInUse => ("tenant_in_use", CONFLICT, false),
    QuotaExceeded => ("quota_exceeded", CONFLICT, false),
    GroupLimitReached => ("group_limit_reached", CONFLICT, false),
    ReceiptExpired => ("receipt_expired", CONFLICT, false),
    ReceiptSettled => ("receipt_settled", CONFLICT, false),
    IdempotencyKeyInFlight => ("idempotency_key_in_flight", CONFLICT, false),
    // Too large.
    PayloadTooLarge => ("payload_too_large", PAYLOAD_TOO_LARGE, false),
    MessageTooLarge => ("message_too_large", PAYLOAD_TOO_LARGE, false),
    BatchTooLarge => ("batch_too_large", PAYLOAD_TOO_LARGE, false),
    ExceedsQuotaBurst => ("exceeds_quota_burst", PAYLOAD_TOO_LARGE, false),
    // An Accept-Encoding that refuses every coding, identity included.
    NotAcceptableEncoding => ("not_acceptable_encoding", NOT_ACCEPTABLE, false),
    // A body in a coding the server cannot decode.
    UnsupportedContentEncoding => ("unsupported_content_encoding", UNSUPPORTED_MEDIA_TYPE, false),
    // Too much at once: wait and retry.
    RateLimited => ("rate_limited", TOO_MANY_REQUESTS, true),
    TooManyConsumes => ("too_many_consumes", TOO_MANY_REQUESTS, true),
    TooManyLoginAttempts => ("too_many_login_attempts", TOO_MANY_REQUESTS, true),
    TooManyStreams => ("too_many_streams", TOO_MANY_REQUESTS, true),
    TooManyOpenStreams => ("too_many_open_streams", TOO_MANY_REQUESTS, true),
    // Our failures and our dependencies' (5xx).
    Internal => ("internal", INTERNAL_SERVER_ERROR, false),
    KafkaUnavailable => ("kafka_unavailable", SERVICE_UNAVAILABLE, true),
    PartialFailure => ("partial_failure", SERVICE_UNAVAILABLE, true),
    DatabaseUnavailable => ("database_unavailable", SERVICE_UNAVAILABLE, true),
    Overloaded => ("overloaded", SERVICE_UNAVAILABLE, true),
    ShuttingDown => ("shutting_down", SERVICE_UNAVAILABLE, true),
    DeliveryUnknown => ("delivery_unknown", GATEWAY_TIMEOUT, false),
}

impl Code {
    /// The `invalid_<field>` code of a field that broke a tenancy rule
    /// (`quota.bytes_per_second` is `invalid_quota`). A field without a
    /// code of its own falls back to `invalid_query`; a unit test keeps
    /// every field the rules name in the catalogue.
    pub fn invalid(field: &str) -> Code {
        let head = field.split('.').next().unwrap_or(field);
        Code::ALL
            .iter()
            .copied()
            .find(|code| code.as_str().strip_prefix("invalid_") == Some(head))
            .unwrap_or(Code::InvalidQuery)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_has_a_unique_snake_case_name() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_input_is_never_a_5xx_and_only_passing_conditions_say_retry_after() {
        for code in Code::ALL {
            if code.as_str().starts_with("invalid_") {
                assert_eq!(code.status(), StatusCode::BAD_REQUEST, "{code}");
            }
            if code.retry_after() {
                assert!(
                    code.status() == StatusCode::TOO_MANY_REQUESTS
                        || code.status() == StatusCode::SERVICE_UNAVAILABLE,
                    "{code}"
                );
            }
        }
    }

    #[test]
    fn every_field_the_tenancy_rules_name_has_its_own_invalid_code() {
        for (field, code) in [
            ("name", "invalid_name"),
            ("prefix", "invalid_prefix"),
            ("topic", "invalid_topic"),
            ("group", "invalid_group"),
            ("grant", "invalid_grant"),
            ("grants", "invalid_grants"),
            ("quota.bytes_per_second", "invalid_quota"),
            ("limit", "invalid_limit"),
            ("to", "invalid_to"),
            ("partitions", "invalid_partitions"),
            ("replication_factor", "invalid_replication_factor"),
            ("config", "invalid_config"),
            ("seek", "invalid_seek"),
            ("dead_letters", "invalid_dead_letters"),
            ("password", "invalid_password"),
            ("password_hash", "invalid_password_hash"),
        ] {
            assert_eq!(Code::invalid(field).as_str(), code);
        }
    }
}
