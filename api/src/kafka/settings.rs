//! `kafka.*`: how this node reaches Kafka. The Kafka layer owns the type;
//! the configuration loader only reads it from its sources.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::setting::{self, invalid, Invalid};

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

/// How every Kafka client of the node connects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    pub security_protocol: SecurityProtocol,
    pub sasl: KafkaSaslSettings,
    pub ssl: KafkaSslSettings,
    /// Extra librdkafka properties, for operators only. sluice's own
    /// guarantees (acks=all, idempotence) are applied after them and win.
    pub properties: BTreeMap<String, PropertyValue>,
    /// Replication factor of new topics; -1 asks for the broker's default.
    pub replication_factor: i32,
    /// Deadline of metadata and admin calls to Kafka.
    #[serde(
        default = "setting::ms::<5000>",
        deserialize_with = "setting::millis",
        alias = "request_timeout_ms"
    )]
    pub request_timeout: Duration,
}

/// `kafka.security_protocol`, in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// The name librdkafka takes.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether the protocol authenticates with SASL.
    pub fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl<'de> Deserialize<'de> for SecurityProtocol {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.to_ascii_lowercase().as_str() {
            "plaintext" => Ok(SecurityProtocol::Plaintext),
            "ssl" => Ok(SecurityProtocol::Ssl),
            "sasl_plaintext" => Ok(SecurityProtocol::SaslPlaintext),
            "sasl_ssl" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(serde::de::Error::custom(format!(
                "'{text}' must be plaintext, ssl, sasl_plaintext or sasl_ssl"
            ))),
        }
    }
}

/// `kafka.sasl.mechanism`, in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// The name librdkafka takes.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl<'de> Deserialize<'de> for SaslMechanism {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            _ => Err(serde::de::Error::custom(format!(
                "'{text}' must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            ))),
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSaslSettings {
    pub mechanism: Option<SaslMechanism>,
    pub username: Option<String>,
    #[serde(default, deserialize_with = "setting::secret_text")]
    pub password: Option<SecretString>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSslSettings {
    /// CA bundle for the brokers' certificates; the system store otherwise.
    pub ca_location: Option<PathBuf>,
}

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

    /// The rules of the `kafka` section the types cannot express.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.security_protocol.is_sasl() {
            let sasl = &self.sasl;
            if sasl.mechanism.is_none() {
                return Err(invalid(
                    "kafka.sasl.mechanism",
                    "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with a SASL security protocol",
                ));
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
        if self.replication_factor == 0 || self.replication_factor < -1 {
            return Err(invalid(
                "kafka.replication_factor",
                "must be -1 (broker default) or at least 1",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("kafka.request_timeout", "must be at least 1ms"));
        }
        self.producer_message_max_bytes().map_err(|value| {
            invalid(
                "kafka.properties",
                format!("\"{PRODUCER_MESSAGE_MAX_BYTES}\" must be a whole number of bytes, not '{value}'"),
            )
        })?;
        Ok(())
    }
}
