//! The node's metadata connection, apart from the producer's.
//!
//! Kafka answers the requests of one connection one at a time, in order.
//! Partition counts and watermarks were once asked over the producer's
//! connection, so every tenant's seek, topic view or first GET of a topic
//! put metadata requests (a ListOffsets per partition) in the queue of every
//! tenant's produce: a tenant rewinding its groups in a loop, within its
//! quota, timed out other tenants' produces. This client carries those
//! questions instead, and the producer's connection carries only produce.

use std::sync::Arc;

use rdkafka::client::Client;
use rdkafka::producer::{DefaultProducerContext, Producer as _, ThreadedProducer};

use super::client_config::base_config;
use super::error::KafkaError;
use super::settings::KafkaSettings;

/// A client that never produces: librdkafka's producer type only because it
/// polls its own events on a thread of its own, so nothing piles up in
/// a queue nobody reads.
#[derive(Clone)]
pub struct Metadata {
    client: Arc<ThreadedProducer<DefaultProducerContext>>,
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata").finish_non_exhaustive()
    }
}

impl Metadata {
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        let client = base_config(settings)
            .set("client.id", "sluice-metadata")
            .create()
            .map_err(|e| KafkaError::Config(e.to_string()))?;
        Ok(Self {
            client: Arc::new(client),
        })
    }

    /// The librdkafka client, for blocking metadata and watermark calls
    /// (run them on the blocking pool).
    pub fn client(&self) -> &Client<DefaultProducerContext> {
        self.client.client()
    }
}
