//! Configuration: defaults compiled in, then an optional TOML file, then
//! `SLUICE_*` environment variables (`__` between nested keys), validated
//! once at boot so that a bad value stops the process with the key's name.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tenancy::Quota;

/// Environment variables with the `SLUICE_` prefix that are not config keys:
/// the config-file pointer and the CLI's own settings.
const NON_CONFIG_ENV: &[&str] = &["config", "admin_url"];

/// The whole configuration of a node. Every field is documented in the
/// README's configuration reference; keep the two in step.
#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// `false` serves plain HTTP, for deployments behind a TLS-terminating
    /// balancer; a warning is logged.
    pub enabled: bool,
    /// PEM certificate chain; re-read on SIGHUP.
    pub cert: Option<PathBuf>,
    /// PEM private key; re-read on SIGHUP.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    pub sasl: KafkaSaslSettings,
    pub ssl: KafkaSslSettings,
    /// Extra librdkafka properties, for operators only. sluice's own
    /// guarantees (acks=all, idempotence) are applied after them and win.
    pub properties: BTreeMap<String, PropertyValue>,
    /// Replication factor of new topics; -1 asks for the broker's default.
    pub replication_factor: i32,
    /// Deadline of metadata and admin calls to Kafka.
    pub request_timeout_ms: u64,
}

/// The librdkafka property that bounds a produce request's records, and
/// with them the largest single message (framing included).
pub const PRODUCER_MESSAGE_MAX_BYTES: &str = "message.max.bytes";

/// The default `max.message.bytes` of a Kafka broker and its topics
/// (1 MiB + 12): the largest record batch the broker appends.
pub const KAFKA_DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;

/// Bytes of a record batch that are not its records: the v2 batch header,
/// base offset and length included (librdkafka's
/// `RD_KAFKAP_MSGSET_V2_SIZE`). Kafka counts them against
/// `max.message.bytes`; librdkafka does not count them against its
/// `message.max.bytes` for a batch of one message.
pub const RECORD_BATCH_OVERHEAD: usize = 61;

/// The most bytes a record adds around its key, value and headers: length,
/// attributes, timestamp and offset deltas, key and value lengths and
/// header count (librdkafka's `RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD`). Each
/// header adds up to 10 more, for its name and value lengths.
pub const RECORD_OVERHEAD: usize = 36;

/// sluice's default for the producer's `message.max.bytes`: the largest
/// batch a default Kafka broker appends, less the batch header. A message
/// librdkafka lets through then always fits the broker, and a message of
/// the default `produce.max_message_bytes` (1000000) has 48 KB to spare for
/// its framing.
pub const DEFAULT_PRODUCER_MESSAGE_MAX_BYTES: usize =
    KAFKA_DEFAULT_MAX_MESSAGE_BYTES - RECORD_BATCH_OVERHEAD;

impl KafkaSettings {
    /// The producer's `message.max.bytes`: the operator's value from
    /// `kafka.properties`, else sluice's default. `Err` carries an
    /// operator's value that is not a positive whole number.
    pub fn producer_message_max_bytes(&self) -> Result<usize, String> {
        match self.properties.get(PRODUCER_MESSAGE_MAX_BYTES) {
            None => Ok(DEFAULT_PRODUCER_MESSAGE_MAX_BYTES),
            Some(value) => value
                .to_string()
                .parse::<usize>()
                .map_err(|_| value.to_string()),
        }
    }
}

/// A librdkafka property value; TOML numbers and booleans are accepted and
/// passed on as strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PropertyValue {
    String(String),
    Integer(i64),
    Bool(bool),
}

impl std::fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PropertyValue::String(s) => f.write_str(s),
            PropertyValue::Integer(i) => write!(f, "{i}"),
            PropertyValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSaslSettings {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: Option<String>,
    pub username: Option<String>,
    #[serde(default, deserialize_with = "secret_text")]
    pub password: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSslSettings {
    /// CA bundle for the brokers' certificates; the system store otherwise.
    pub ca_location: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProduceSettings {
    /// Largest request body, checked before it is read.
    pub max_body_bytes: usize,
    /// Largest single message: key + value + headers.
    pub max_message_bytes: usize,
    /// Most messages in one request.
    pub max_batch_messages: usize,
    /// The whole request's deadline. librdkafka's `message.timeout.ms` is
    /// set below it, so nothing lands after a client has been told 504.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumeSettings {
    /// Largest `limit` a GET may ask for.
    pub max_limit: u64,
    /// A response stops once it holds this many bytes of messages, but it
    /// always carries at least one message when one is available.
    pub max_response_bytes: usize,
    /// Longest `wait` a GET may ask for.
    pub max_wait_ms: u64,
    /// Size of the per-node pool of Kafka readers.
    pub readers: usize,
    /// Bytes of recently read messages kept per node, so that many groups
    /// reading the same stretch of a partition are served from memory
    /// instead of each moving the partition's reader; 0 turns it off.
    pub read_cache_bytes: u64,
    /// One GET's whole time budget for leasing and reading: the wait for a
    /// database connection and for a reader, and every partition it leased.
    pub read_timeout_ms: u64,
    /// How long a GET's lease on its partitions lasts (from Postgres
    /// `now()`). If a node dies mid-read, its partitions go to the next
    /// GET once this passes; it must outlast the read, so it is greater
    /// than `read_timeout_ms`. Default: `read_timeout_ms` + 3000.
    #[serde(default)]
    pub lease_ms: Option<u64>,
    /// How often the watermarks of topics in use are refreshed from Kafka,
    /// so that messages produced by native clients are seen.
    pub watermark_poll_ms: u64,
    /// How often committed cursors are mirrored to Kafka group offsets, so
    /// that standard tooling shows lag; 0 turns mirroring off.
    pub mirror_interval_ms: u64,
    /// Groups no GET has used for this many days are deleted, with their
    /// cursors and their mirrored Kafka group, so that groups named once
    /// do not pile up forever; 0 keeps them. The default matches Kafka's
    /// own `offsets.retention.minutes`.
    pub group_retention_days: u32,
    /// How often a node looks for groups past the retention (one node
    /// sweeps at a time, under a Postgres advisory lock).
    pub group_sweep_interval_ms: u64,
}

/// What a lease adds to the read budget by default: time to commit once
/// the read has ended, even when the database is slow to hand out a
/// connection.
const LEASE_MARGIN_MS: u64 = 3000;

impl ConsumeSettings {
    /// How long a GET's lease lasts.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(
            self.lease_ms
                .unwrap_or(self.read_timeout_ms.saturating_add(LEASE_MARGIN_MS)),
        )
    }

    /// One GET's budget for leasing and reading.
    pub fn read_budget(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// How long a verified credential is served from memory. Changes made
    /// through the admin API drop it at once on every node (LISTEN/NOTIFY).
    pub cache_ttl_seconds: u64,
    /// Most argon2 verifications running at once on a node.
    pub max_concurrent_verifications: usize,
    /// How long a password check may wait for an argon2 slot before the
    /// request gets 503 `overloaded`; nothing waits without limit.
    pub verification_queue_ms: u64,
    /// Failed password checks allowed per (username, client network) per
    /// minute on each node, known and unknown names alike; past it, that
    /// pair gets 429 until the budget refills. Other networks are unaffected.
    pub login_attempts_per_minute: u32,
    /// Failed password checks allowed per client network (IPv4 address or
    /// IPv6 /64) per minute, across usernames.
    pub address_attempts_per_minute: u32,
    /// Password checks one client network may have queued or running at
    /// once, so that one network cannot fill the argon2 queue.
    pub max_verifications_per_address: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Addresses or CIDR ranges of proxies whose `X-Forwarded-For` is
    /// believed, e.g. `["10.0.0.0/8", "127.0.0.1"]`.
    pub trusted_proxies: Vec<String>,
    /// Serves `GET /_noop` and `GET /_noop/authenticated` on the public
    /// listener, for benchmarks that separate the HTTP/TLS and auth costs
    /// from the Kafka path. Off in production.
    pub noop_routes: bool,
    /// Deadline for a request's whole body, counted from the start of the
    /// request: a client that declares a body and does not send it loses
    /// its connection then, instead of holding it for ever.
    pub body_read_timeout_ms: u64,
    /// Deadline for a request's headers (slowloris); also bounds the TLS
    /// handshake and the HTTP/2 preface.
    pub client_request_timeout_ms: u64,
    /// An idle keep-alive connection is closed after this long: HTTP/1.1
    /// by actix, HTTP/2 (where actix only pings) by a watchdog.
    pub keep_alive_timeout_ms: u64,
    /// Concurrent connections from one client network (an IPv4 address or
    /// an IPv6 /64) on the public listener; trusted proxies are exempt.
    pub max_connections_per_address: usize,
    /// Concurrent connections on the public listener in total.
    pub max_connections: usize,
    /// Requests in flight on one connection (HTTP/2 streams); past it a
    /// request gets 429 `too_many_streams`.
    pub max_streams_per_connection: usize,
}

impl HttpSettings {
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    pub fn client_request_timeout(&self) -> Duration {
        Duration::from_millis(self.client_request_timeout_ms)
    }

    pub fn keep_alive_timeout(&self) -> Duration {
        Duration::from_millis(self.keep_alive_timeout_ms)
    }

    /// The public listener's connection caps.
    pub fn connection_limits(&self) -> crate::connections::Limits {
        crate::connections::Limits {
            per_network: self.max_connections_per_address,
            total: self.max_connections,
            streams_per_connection: self.max_streams_per_connection,
            idle: Duration::from_millis(self.keep_alive_timeout_ms),
        }
    }

    /// The trusted proxies as networks; a bare address is a /32 or /128.
    pub fn trusted_networks(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        invalid(
                            "http.trusted_proxies",
                            &format!("'{entry}' is not an address or CIDR range"),
                        )
                    })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Postgres URL. Secret, because it usually carries a password.
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// The admin plane's own address; loopback by default so that it is
    /// never exposed by accident.
    pub listen: SocketAddr,
    /// The bearer token of the admin API. Required: there is no default.
    #[serde(default, deserialize_with = "secret_text")]
    pub token: Option<SecretString>,
    /// When set, `GET /metrics` requires it (or the admin token) as a
    /// bearer token, so that a scraper holds a secret that can read
    /// metrics and nothing else. Unset, `/metrics` is open to whoever
    /// reaches the admin listener.
    #[serde(default, deserialize_with = "secret_text")]
    pub metrics_token: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for development.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `sluice=debug,info`. `RUST_LOG`
    /// wins when set.
    pub level: String,
}

/// Reads a secret that an environment variable may have spelt as a number
/// or a boolean (figment parses `SLUICE_ADMIN__TOKEN=1234…` as a number):
/// secrets are text whatever they look like. Quote the value (`'"0123"'`)
/// to keep leading zeros.
fn secret_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Flag(bool),
    }
    Ok(Option::<Raw>::deserialize(deserializer)?.map(|raw| {
        SecretString::from(match raw {
            Raw::Text(text) => text,
            Raw::Unsigned(n) => n.to_string(),
            Raw::Signed(n) => n.to_string(),
            Raw::Float(n) => n.to_string(),
            Raw::Flag(b) => b.to_string(),
        })
    }))
}

/// A configuration problem, always naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0}")]
    Load(String),
    #[error("configuration error: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// Minimum length of the admin token: anything shorter is guessable.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

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
            "request_timeout_ms": 5000,
        },
        "produce": {
            "max_body_bytes": 4 * 1024 * 1024,
            "max_message_bytes": 1_000_000,
            "max_batch_messages": 1000,
            "timeout_ms": 10_000,
        },
        "consume": {
            "max_limit": 1000,
            "max_response_bytes": 4 * 1024 * 1024,
            "max_wait_ms": 30_000,
            "readers": 4,
            "read_cache_bytes": 32 * 1024 * 1024,
            "read_timeout_ms": 2000,
            "watermark_poll_ms": 1000,
            "mirror_interval_ms": 5000,
            "group_retention_days": 7,
            "group_sweep_interval_ms": 600_000,
        },
        "auth": {
            "cache_ttl_seconds": 60,
            "max_concurrent_verifications": 2,
            "verification_queue_ms": 2000,
            "login_attempts_per_minute": 10,
            "address_attempts_per_minute": 120,
            "max_verifications_per_address": 8,
        },
        "http": {
            "trusted_proxies": [],
            "noop_routes": false,
            "body_read_timeout_ms": 10_000,
            "client_request_timeout_ms": 5000,
            "keep_alive_timeout_ms": 5000,
            "max_connections_per_address": 256,
            "max_connections": 10_000,
            "max_streams_per_connection": 256,
        },
        "database": {
            "url": "postgres://sluice:sluice@127.0.0.1:5432/sluice",
            "max_connections": 16,
            "acquire_timeout_ms": 3000,
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

    /// Rules the types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database.url.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("database.url", "must be a postgres:// URL"));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.database.acquire_timeout_ms == 0 {
            return Err(invalid("database.acquire_timeout_ms", "must be at least 1"));
        }
        if let Some(token) = &self.admin.token {
            if token.expose_secret().len() < MIN_ADMIN_TOKEN_LEN {
                return Err(invalid(
                    "admin.token",
                    &format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters"),
                ));
            }
        }
        if let Some(metrics) = &self.admin.metrics_token {
            if metrics.expose_secret().len() < MIN_ADMIN_TOKEN_LEN {
                return Err(invalid(
                    "admin.metrics_token",
                    &format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters"),
                ));
            }
            if self
                .admin
                .token
                .as_ref()
                .is_some_and(|admin| admin.expose_secret() == metrics.expose_secret())
            {
                return Err(invalid(
                    "admin.metrics_token",
                    "must differ from admin.token: a scraper's token must not open the admin API",
                ));
            }
        }
        if self.tls.enabled {
            for (key, path) in [("tls.cert", &self.tls.cert), ("tls.key", &self.tls.key)] {
                match path {
                    None => return Err(invalid(key, "must be set while tls.enabled is true")),
                    Some(p) if !p.is_file() => {
                        return Err(invalid(
                            key,
                            &format!("{} is not a readable file", p.display()),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        let protocol = self.kafka.security_protocol.to_ascii_lowercase();
        if !["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"].contains(&protocol.as_str()) {
            return Err(invalid(
                "kafka.security_protocol",
                "must be plaintext, ssl, sasl_plaintext or sasl_ssl",
            ));
        }
        if protocol.starts_with("sasl") {
            let sasl = &self.kafka.sasl;
            match sasl
                .mechanism
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                Some("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512") => {}
                _ => return Err(invalid(
                    "kafka.sasl.mechanism",
                    "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with a SASL security protocol",
                )),
            }
            if sasl.username.is_none() {
                return Err(invalid(
                    "kafka.sasl.username",
                    "must be set with a SASL security protocol",
                ));
            }
            if sasl.password.is_none() {
                return Err(invalid(
                    "kafka.sasl.password",
                    "must be set with a SASL security protocol",
                ));
            }
        }
        if self.kafka.replication_factor == 0 || self.kafka.replication_factor < -1 {
            return Err(invalid(
                "kafka.replication_factor",
                "must be -1 (broker default) or at least 1",
            ));
        }
        if self.kafka.request_timeout_ms == 0 {
            return Err(invalid("kafka.request_timeout_ms", "must be at least 1"));
        }
        if self.produce.max_message_bytes == 0 {
            return Err(invalid("produce.max_message_bytes", "must be at least 1"));
        }
        if self.produce.max_body_bytes < self.produce.max_message_bytes {
            return Err(invalid(
                "produce.max_body_bytes",
                "must be at least produce.max_message_bytes",
            ));
        }
        let producer_max = self.kafka.producer_message_max_bytes().map_err(|value| {
            ConfigError::Invalid {
                key: "kafka.properties",
                reason: format!("\"{PRODUCER_MESSAGE_MAX_BYTES}\" must be a whole number of bytes, not '{value}'"),
            }
        })?;
        if self
            .produce
            .max_message_bytes
            .saturating_add(RECORD_OVERHEAD)
            > producer_max
        {
            return Err(ConfigError::Invalid {
                key: "produce.max_message_bytes",
                reason: format!(
                    "plus {RECORD_OVERHEAD} bytes of record framing must fit in the producer's \
                     {PRODUCER_MESSAGE_MAX_BYTES} ({producer_max}), or a message within the limit \
                     could never be sent; lower it, or raise kafka.properties.\"{PRODUCER_MESSAGE_MAX_BYTES}\" \
                     (to at most the brokers' and topics' max.message.bytes less {RECORD_BATCH_OVERHEAD})"
                ),
            });
        }
        if self.produce.max_batch_messages == 0 {
            return Err(invalid("produce.max_batch_messages", "must be at least 1"));
        }
        if self.produce.timeout_ms < 2_000 {
            return Err(invalid(
                "produce.timeout_ms",
                "must be at least 2000, so that librdkafka's message timeout fits below it",
            ));
        }
        let consume = &self.consume;
        if consume.max_limit == 0 {
            return Err(invalid("consume.max_limit", "must be at least 1"));
        }
        if consume.max_response_bytes == 0 {
            return Err(invalid("consume.max_response_bytes", "must be at least 1"));
        }
        if consume.readers == 0 || consume.readers > 64 {
            return Err(invalid("consume.readers", "must be 1..=64"));
        }
        if consume.read_timeout_ms == 0 {
            return Err(invalid("consume.read_timeout_ms", "must be at least 1"));
        }
        if consume
            .lease_ms
            .is_some_and(|lease| lease <= consume.read_timeout_ms)
        {
            return Err(invalid(
                "consume.lease_ms",
                "must be greater than consume.read_timeout_ms, so that a lease outlasts the read",
            ));
        }
        if consume.watermark_poll_ms < 10 {
            return Err(invalid("consume.watermark_poll_ms", "must be at least 10"));
        }
        if consume.group_retention_days > 36_500 {
            return Err(invalid(
                "consume.group_retention_days",
                "must be 0 (keep groups) to 36500",
            ));
        }
        if consume.group_sweep_interval_ms < 10 {
            return Err(invalid(
                "consume.group_sweep_interval_ms",
                "must be at least 10",
            ));
        }
        if self.auth.max_concurrent_verifications == 0 {
            return Err(invalid(
                "auth.max_concurrent_verifications",
                "must be at least 1",
            ));
        }
        if self.auth.verification_queue_ms == 0 {
            return Err(invalid("auth.verification_queue_ms", "must be at least 1"));
        }
        if self.auth.max_verifications_per_address == 0 {
            return Err(invalid(
                "auth.max_verifications_per_address",
                "must be at least 1",
            ));
        }
        if self.auth.login_attempts_per_minute == 0 {
            return Err(invalid(
                "auth.login_attempts_per_minute",
                "must be at least 1",
            ));
        }
        if self.auth.address_attempts_per_minute == 0 {
            return Err(invalid(
                "auth.address_attempts_per_minute",
                "must be at least 1",
            ));
        }
        self.http.trusted_networks()?;
        let http = &self.http;
        for (key, value) in [
            ("http.body_read_timeout_ms", http.body_read_timeout_ms),
            (
                "http.client_request_timeout_ms",
                http.client_request_timeout_ms,
            ),
            ("http.keep_alive_timeout_ms", http.keep_alive_timeout_ms),
            (
                "http.max_connections_per_address",
                http.max_connections_per_address as u64,
            ),
            ("http.max_connections", http.max_connections as u64),
            (
                "http.max_streams_per_connection",
                http.max_streams_per_connection as u64,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if http.max_connections_per_address > http.max_connections {
            return Err(invalid(
                "http.max_connections_per_address",
                "must not be above http.max_connections",
            ));
        }
        let byte_burst = self
            .quota
            .bytes_per_second
            .saturating_mul(u64::from(self.quota.burst_seconds));
        if byte_burst < self.produce.max_message_bytes as u64 {
            return Err(invalid(
                "quota.bytes_per_second",
                "times quota.burst_seconds must be at least produce.max_message_bytes, or the largest message could never pass",
            ));
        }
        self.quota.validate().map_err(|e| ConfigError::Invalid {
            key: e.field,
            reason: e.reason,
        })?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", &e.to_string()))?;
        Ok(())
    }

    /// The admin token, which `serve` cannot run without (`migrate` can).
    pub fn require_admin_token(&self) -> Result<&SecretString, ConfigError> {
        self.admin
            .token
            .as_ref()
            .ok_or_else(|| invalid("admin.token", "must be set, e.g. with SLUICE_ADMIN__TOKEN"))
    }

    pub fn store_options(&self) -> tenancy::store::StoreOptions {
        tenancy::store::StoreOptions {
            url: self.database.url.clone(),
            max_connections: self.database.max_connections,
            acquire_timeout: Duration::from_millis(self.database.acquire_timeout_ms),
        }
    }
}

/// Rewrites figment's errors so that each names the dotted key in lower
/// case (as the README spells it) and where the bad value came from.
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

fn invalid(key: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
