//! Configuration: defaults compiled in, then an optional TOML file, then
//! `SLUICE_*` environment variables (`__` between nested keys), validated
//! once at boot so that a bad value stops the process with the key's name.
//!
//! Each section is a type with its own `validate`, next to its fields;
//! [`Settings::validate`] runs them and the rules that span sections.
//! Durations are written with units (`"10s"`, `"500ms"`); the old keys
//! with a unit in their name (`read_timeout_ms = 2000`) stay accepted.

mod auth;
mod consume;
mod http;
mod node;
mod produce;

use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::SecretString;
use tenancy::Quota;

pub use auth::AuthSettings;
pub use consume::ConsumeSettings;
pub use http::HttpSettings;
pub use node::{
    AdminSettings, DatabaseSettings, LogFormat, LogSettings, TlsFiles, TlsSettings,
    MIN_ADMIN_TOKEN_LEN,
};
pub use produce::ProduceSettings;

use crate::kafka::KafkaSettings;
use crate::setting::{invalid, Invalid};

/// Environment variables with the `SLUICE_` prefix that are not config keys:
/// the config-file pointer and the CLI's own settings.
const NON_CONFIG_ENV: &[&str] = &["config", "admin_url"];

/// The whole configuration of a node. Every field is documented in the
/// configuration reference (docs/configuration.md); keep the two in step.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The public data-plane address.
    pub listen: SocketAddr,
    pub tls: TlsSettings,
    pub database: DatabaseSettings,
    pub admin: AdminSettings,
    pub kafka: KafkaSettings,
    pub produce: ProduceSettings,
    pub consume: ConsumeSettings,
    pub auth: AuthSettings,
    pub http: HttpSettings,
    /// Defaults for the quota of new tenants; each field can be overridden
    /// when the tenant is created.
    pub quota: Quota,
    pub log: LogSettings,
}

/// A configuration problem, always naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0}")]
    Load(String),
    /// Not `#[from]`: the key and reason are the whole message, and a
    /// source would print them twice.
    #[error("configuration error: {0}")]
    Invalid(Invalid),
}

impl From<Invalid> for ConfigError {
    fn from(invalid: Invalid) -> Self {
        ConfigError::Invalid(invalid)
    }
}

/// The compiled-in defaults, but for durations: those are serde defaults
/// on their fields, so that an old key (`read_timeout_ms`) set by a file or
/// a variable never meets a default under the new one (`read_timeout`).
fn defaults() -> serde_json::Value {
    serde_json::json!({
        "listen": "0.0.0.0:8443",
        "tls": { "enabled": true },
        "kafka": {
            "bootstrap_servers": "127.0.0.1:9092",
            "security_protocol": "plaintext",
            "sasl": {},
            "ssl": {},
            "properties": {},
            "replication_factor": -1,
        },
        "produce": {
            "max_body_bytes": 4 * 1024 * 1024,
            "max_message_bytes": 1_000_000,
            "max_batch_messages": 1000,
        },
        "consume": {
            "max_limit": 1000,
            "max_response_bytes": 4 * 1024 * 1024,
            "readers": 4,
            "read_cache_bytes": 32 * 1024 * 1024,
        },
        "auth": {
            "max_concurrent_verifications": 2,
            "verification_nice": 10,
            "login_attempts_per_minute": 10,
            "address_attempts_per_minute": 120,
            "max_verifications_per_address": 8,
        },
        "http": {
            "trusted_proxies": [],
            "noop_routes": false,
            "max_connections_per_address": 256,
            "max_connections": 10_000,
            "max_streams_per_connection": 256,
        },
        "database": {
            "url": "postgres://sluice:sluice@127.0.0.1:5432/sluice",
            "max_connections": 16,
        },
        "admin": {
            "listen": "127.0.0.1:8081",
        },
        "quota": {
            "requests_per_second": 100,
            "bytes_per_second": 10 * 1024 * 1024,
            "burst_seconds": 2,
            "max_topics": 50,
            "max_partitions": 200,
            "max_groups": 100,
            "max_concurrent_consumes": 32,
            "max_streams": 100,
        },
        "log": {
            "format": "text",
            "level": "info",
        },
    })
}

/// The layered sources, without extraction: the CLI uses it to read just
/// the admin section.
pub fn figment(file: Option<&Path>) -> Figment {
    let mut figment = Figment::from(Serialized::defaults(defaults()));
    if let Some(path) = file {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment.merge(Env::prefixed("SLUICE_").split("__").filter(|key| {
        // Keys keep their original case until figment lower-cases them.
        let key = key.as_str().to_ascii_lowercase();
        !NON_CONFIG_ENV.contains(&key.as_str()) && !key.starts_with("test_")
    }))
}

impl Settings {
    /// Loads and validates the configuration.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let settings: Settings = figment(file).extract().map_err(describe)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Rules the types alone cannot express: each section's own, then
    /// those that span sections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.admin.validate()?;
        self.tls.validate()?;
        self.kafka.validate()?;
        self.produce.validate(&self.kafka)?;
        self.consume.validate()?;
        self.auth.validate()?;
        self.http.validate()?;
        let byte_burst = self
            .quota
            .bytes_per_second
            .saturating_mul(u64::from(self.quota.burst_seconds));
        if byte_burst < self.produce.max_message_bytes as u64 {
            return Err(invalid(
                "quota.bytes_per_second",
                "times quota.burst_seconds must be at least produce.max_message_bytes, or the largest message could never pass",
            )
            .into());
        }
        self.quota
            .validate()
            .map_err(|e| invalid(e.field, e.reason))?;
        self.log.validate()?;
        Ok(())
    }

    /// The admin token, which `serve` cannot run without (`migrate` can).
    pub fn require_admin_token(&self) -> Result<&SecretString, ConfigError> {
        self.admin.token.as_ref().ok_or_else(|| {
            invalid("admin.token", "must be set, e.g. with SLUICE_ADMIN__TOKEN").into()
        })
    }

    pub fn store_options(&self) -> tenancy::store::StoreOptions {
        tenancy::store::StoreOptions {
            url: self.database.url.clone(),
            max_connections: self.database.max_connections,
            acquire_timeout: self.database.acquire_timeout,
        }
    }
}

/// Rewrites figment's errors so that each names the dotted key in lower
/// case (as the docs spell it) and where the bad value came from.
fn describe(err: figment::Error) -> ConfigError {
    let lines: Vec<String> = err
        .into_iter()
        .map(|e| {
            let key = e.path.join(".").to_ascii_lowercase();
            let origin = e
                .metadata
                .as_ref()
                .map(|m| match m.source.as_ref() {
                    Some(source) => format!(" (from {source})"),
                    None if m.name.contains("environment") => {
                        format!(" (from SLUICE_{})", e.path.join("__").to_ascii_uppercase())
                    }
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            let key = if key.is_empty() {
                String::from("<root>")
            } else {
                key
            };
            format!("{key}: {}{origin}", e.kind)
        })
        .collect();
    ConfigError::Load(lines.join("; "))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::kafka::{
        DEFAULT_PRODUCER_MESSAGE_MAX_BYTES, KAFKA_DEFAULT_MAX_MESSAGE_BYTES, RECORD_BATCH_OVERHEAD,
        RECORD_OVERHEAD,
    };

    fn settings(changes: serde_json::Value) -> Settings {
        figment(None)
            .merge(("database.url", "postgres://u:p@localhost/db"))
            .merge(("tls.enabled", false))
            .merge(Serialized::defaults(changes))
            .extract()
            .unwrap()
    }

    #[test]
    fn the_default_message_limit_fits_a_default_kafka_broker_with_its_framing() {
        let defaults = settings(serde_json::json!({}));
        defaults.validate().unwrap();
        let producer_max = defaults.kafka.producer_message_max_bytes().unwrap();
        // librdkafka refuses a message whose framed size is over its limit…
        assert!(defaults.produce.max_message_bytes + RECORD_OVERHEAD <= producer_max);
        // …and a batch of that one message is what the broker counts.
        assert!(producer_max + RECORD_BATCH_OVERHEAD <= KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
    }

    #[test]
    fn a_message_limit_the_producer_cannot_send_is_refused_at_boot() {
        let raised = settings(serde_json::json!({ "produce": {
            "max_message_bytes": DEFAULT_PRODUCER_MESSAGE_MAX_BYTES,
            "max_body_bytes": 2 * DEFAULT_PRODUCER_MESSAGE_MAX_BYTES,
        }}));
        let err = raised.validate().unwrap_err().to_string();
        assert!(err.contains("produce.max_message_bytes"), "{err}");

        let lowered = settings(serde_json::json!({
            "kafka": { "properties": { "message.max.bytes": 500_000 } }
        }));
        let err = lowered.validate().unwrap_err().to_string();
        assert!(err.contains("message.max.bytes (500000)"), "{err}");

        let both = settings(serde_json::json!({
            "kafka": { "properties": { "message.max.bytes": "2000036" } },
            "produce": { "max_message_bytes": 2_000_000, "max_body_bytes": 4_000_000 },
            "quota": { "bytes_per_second": 2_000_000 },
        }));
        both.validate().unwrap();

        let garbled = settings(serde_json::json!({
            "kafka": { "properties": { "message.max.bytes": "1MB" } }
        }));
        let err = garbled.validate().unwrap_err().to_string();
        assert!(err.contains("kafka.properties"), "{err}");
    }

    #[test]
    fn a_secret_that_looks_like_a_number_is_kept_as_text() {
        let figment = Figment::from(Serialized::defaults(serde_json::json!({
            "listen": "127.0.0.1:8081",
            "token": 12_345_678_901_234_567_u64,
        })));
        let admin: AdminSettings = figment.extract().unwrap();
        assert_eq!(admin.token.unwrap().expose_secret(), "12345678901234567");
    }
}
