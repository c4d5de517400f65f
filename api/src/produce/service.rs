//! The produce orchestration, behind one method: the partition check,
//! the byte charge, the send within the deadline, and what a delivery
//! tells the rest of the node and the cluster (metrics, watermarks,
//! announcements). The handler only parses and renders.

use std::sync::Arc;

use tenancy::{Store, TopicName};

use super::announce::Announcer;
use super::request;
use crate::auth::Principal;
use crate::config::ProduceSettings;
use crate::error::{ApiError, Code};
use crate::kafka::{Delivered, DeliveryFailure, OutgoingMessage, Producer, TopicAdmin, Watermarks};
use crate::ratelimit::TenantLimits;

/// Each message's outcome, in request order.
pub type Outcomes = Vec<Result<Delivered, DeliveryFailure>>;

/// What a produce needs, shared by every request of the node.
pub struct Service {
    producer: Arc<Producer>,
    topics: Arc<TopicAdmin>,
    watermarks: Arc<Watermarks>,
    announcer: Announcer,
    quotas: Arc<TenantLimits>,
    settings: ProduceSettings,
    /// Where `Idempotency-Key`s are claimed and answers recorded.
    store: Store,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("produce::Service").finish_non_exhaustive()
    }
}

impl Service {
    pub fn new(
        producer: Arc<Producer>,
        topics: Arc<TopicAdmin>,
        watermarks: Arc<Watermarks>,
        announcer: Announcer,
        quotas: Arc<TenantLimits>,
        settings: ProduceSettings,
        store: Store,
    ) -> Self {
        Self {
            producer,
            topics,
            watermarks,
            announcer,
            quotas,
            settings,
            store,
        }
    }

    /// The store keyed produces claim their keys in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The limits a request is parsed against.
    pub fn settings(&self) -> &ProduceSettings {
        &self.settings
    }

    /// Sends a parsed batch to `topic` for `principal` (already authorized
    /// to write it), answering each message's outcome once Kafka has
    /// answered for all of them or the deadline passed.
    pub async fn produce(
        &self,
        principal: &Principal,
        topic: &TopicName,
        batch: Vec<OutgoingMessage>,
    ) -> Result<Outcomes, ApiError> {
        self.charge_send_record(principal, topic, batch, true).await
    }

    /// Like [`Service::produce`], but waits for every delivery report
    /// instead of cutting at the deadline: a keyed produce records its
    /// final answer even after its client was told 504, so that a retry
    /// finds it rather than sending the messages again. librdkafka's
    /// `message.timeout.ms`, a second below the deadline, bounds the wait.
    pub async fn produce_awaiting_reports(
        &self,
        principal: &Principal,
        topic: &TopicName,
        batch: Vec<OutgoingMessage>,
    ) -> Result<Outcomes, ApiError> {
        self.charge_send_record(principal, topic, batch, false)
            .await
    }

    /// The one produce path: charge the bytes, check the partitions, send
    /// (cut at the deadline or not), count what Kafka answered.
    async fn charge_send_record(
        &self,
        principal: &Principal,
        topic: &TopicName,
        batch: Vec<OutgoingMessage>,
        at_deadline: bool,
    ) -> Result<Outcomes, ApiError> {
        let bytes: usize = batch.iter().map(request::size).sum();
        self.quotas
            .charge_before(&principal.tenant, principal.quota, bytes as u64)?;
        self.check_partitions(topic, &batch).await?;
        let outcomes = if at_deadline {
            self.send(topic, &batch).await
        } else {
            self.producer.send_batch(topic.as_str(), &batch).await
        };
        self.record(principal, topic, &batch, &outcomes);
        Ok(outcomes)
    }

    /// Refuses a batch naming a partition the topic does not have.
    async fn check_partitions(
        &self,
        topic: &TopicName,
        batch: &[OutgoingMessage],
    ) -> Result<(), ApiError> {
        let partitions = self.topics.partitions(topic.as_str()).await?;
        let beyond = batch
            .iter()
            .enumerate()
            .find_map(|(i, m)| m.partition.filter(|p| *p >= partitions).map(|p| (i, p)));
        match beyond {
            None => Ok(()),
            Some((index, p)) => Err(ApiError::Input {
                code: Code::InvalidPartition,
                message: format!("message {index}: partition {p} does not exist; '{topic}' has {partitions} partition(s)"),
            }),
        }
    }

    /// Sends within the produce deadline; past it, every outcome not yet
    /// known is `unknown` (the message may still be written).
    async fn send(&self, topic: &TopicName, batch: &[OutgoingMessage]) -> Outcomes {
        let deadline = self.settings.timeout;
        match tokio::time::timeout(deadline, self.producer.send_batch(topic.as_str(), batch)).await
        {
            Ok(outcomes) => outcomes,
            Err(_) => {
                let unknown = DeliveryFailure::Unknown(
                    "the request deadline passed before Kafka answered".into(),
                );
                vec![Err(unknown); batch.len()]
            }
        }
    }

    /// Counts what was stored and refused, and tells this node's long polls
    /// (watermarks) and the other nodes' (announcements) of new messages.
    fn record(
        &self,
        principal: &Principal,
        topic: &TopicName,
        batch: &[OutgoingMessage],
        outcomes: &Outcomes,
    ) {
        let (mut stored, mut stored_bytes) = (0u64, 0u64);
        for (message, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                Ok(_) => {
                    stored += 1;
                    stored_bytes += request::size(message) as u64;
                }
                Err(DeliveryFailure::Rejected(rejection, _)) => {
                    // The client's fault, not Kafka's: kept out of the
                    // delivery errors that page operators.
                    metrics::counter!("sluice_produce_rejected_total", "code" => Code::from(*rejection).as_str())
                        .increment(1);
                }
                Err(failure) => {
                    let kind = match failure {
                        DeliveryFailure::Unknown(_) => "unknown",
                        _ => "not_persisted",
                    };
                    metrics::counter!("sluice_produce_delivery_errors_total", "kind" => kind)
                        .increment(1);
                }
            }
        }
        let tenant = principal.tenant.to_string();
        metrics::counter!("sluice_messages_produced_total", "tenant" => tenant.clone())
            .increment(stored);
        metrics::counter!("sluice_bytes_produced_total", "tenant" => tenant)
            .increment(stored_bytes);
        for delivered in outcomes.iter().flatten() {
            let high = delivered.offset + 1;
            self.watermarks
                .observe(topic.as_str(), delivered.partition, high);
            self.announcer
                .announce(topic.as_str(), delivered.partition, high);
        }
    }
}
