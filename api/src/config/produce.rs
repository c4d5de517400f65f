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
        Ok(())
    }
}
