//! `produce.*`: the limits of a produce request.

use std::time::Duration;

use serde::Deserialize;

use crate::kafka::{
    KafkaSettings, PRODUCER_MESSAGE_MAX_BYTES, RECORD_BATCH_OVERHEAD, RECORD_OVERHEAD,
};
use crate::setting::{self, invalid, Invalid};

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
    #[serde(
        default = "setting::ms::<10000>",
        deserialize_with = "setting::millis",
        alias = "timeout_ms"
    )]
    pub timeout: Duration,
    /// How long an `Idempotency-Key` and its answer are remembered: a
    /// retry within it is answered from the record, never produced twice.
    #[serde(
        default = "setting::ms::<86400000>",
        deserialize_with = "setting::seconds",
        alias = "idempotency_ttl_seconds"
    )]
    pub idempotency_ttl: Duration,
    /// Most keys a tenant keeps: beyond it, the purge forgets the tenant's
    /// oldest first, so that a tenant flooding unique keys fills only its
    /// own share of the shared table.
    #[serde(default = "default_idempotency_max_keys")]
    pub idempotency_max_keys: u64,
    /// How often a node purges expired keys and keys over the cap.
    #[serde(
        default = "setting::ms::<60000>",
        deserialize_with = "setting::millis",
        alias = "idempotency_purge_interval_ms"
    )]
    pub idempotency_purge_interval: Duration,
}

/// 10 000 keys: a hostile tenant's share of the table stays near 300 MB
/// even if every answer is a 1000-message batch's (about 32 KB of offsets,
/// before PostgreSQL compresses it), and about 2 MB with 1-message ones.
fn default_idempotency_max_keys() -> u64 {
    10_000
}

impl ProduceSettings {
    /// The section's rules, and how its message limit fits the producer's.
    pub fn validate(&self, kafka: &KafkaSettings) -> Result<(), Invalid> {
        if self.max_message_bytes == 0 {
            return Err(invalid("produce.max_message_bytes", "must be at least 1"));
        }
        if self.max_body_bytes < self.max_message_bytes {
            return Err(invalid(
                "produce.max_body_bytes",
                "must be at least produce.max_message_bytes",
            ));
        }
        let producer_max = kafka.producer_message_max_bytes().unwrap_or(usize::MAX);
        if self.max_message_bytes.saturating_add(RECORD_OVERHEAD) > producer_max {
            return Err(invalid(
                "produce.max_message_bytes",
                format!(
                    "plus {RECORD_OVERHEAD} bytes of record framing must fit in the producer's \
                     {PRODUCER_MESSAGE_MAX_BYTES} ({producer_max}), or a message within the limit \
                     could never be sent; lower it, or raise kafka.properties.\"{PRODUCER_MESSAGE_MAX_BYTES}\" \
                     (to at most the brokers' and topics' max.message.bytes less {RECORD_BATCH_OVERHEAD})"
                ),
            ));
        }
        if self.max_batch_messages == 0 {
            return Err(invalid("produce.max_batch_messages", "must be at least 1"));
        }
        if self.timeout < Duration::from_secs(2) {
            return Err(invalid(
                "produce.timeout",
                "must be at least 2s, so that librdkafka's message timeout fits below it",
            ));
        }
        if self.idempotency_ttl < Duration::from_secs(1) {
            return Err(invalid(
                "produce.idempotency_ttl",
                "must be at least 1s, or a retry could never find its key",
            ));
        }
        if self.idempotency_max_keys == 0 {
            return Err(invalid(
                "produce.idempotency_max_keys",
                "must be at least 1",
            ));
        }
        if self.idempotency_purge_interval < Duration::from_millis(10) {
            return Err(invalid(
                "produce.idempotency_purge_interval",
                "must be at least 10ms",
            ));
        }
        Ok(())
    }
}
