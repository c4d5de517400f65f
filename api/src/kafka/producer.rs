//! The shared producer: acks=all, idempotent, murmur2_random partitioning.
//! A request enqueues its whole batch and then awaits every delivery
//! together; the per-message outcomes come back in request order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::future::join_all;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::ClientContext;

use super::client_config::base_config;
use super::error::KafkaError;
use crate::config::KafkaSettings;

/// One message ready to send; everything already decoded and validated.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub key: Option<Vec<u8>>,
    /// `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub partition: Option<i32>,
    pub timestamp: Option<i64>,
}

/// Where Kafka stored an acknowledged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// Why a message was not acknowledged, in the two kinds a client must
/// treat differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// Certainly not written: safe to retry.
    NotPersisted(String),
    /// Perhaps written: a retry may duplicate it.
    Unknown(String),
}

/// Routes librdkafka's error callbacks to our logs. Fatal errors (an
/// idempotent producer that lost its guarantees) are also detected after
/// each batch through `fatal_error()`, and the producer is replaced.
#[derive(Debug, Default)]
pub(super) struct Context;

impl ClientContext for Context {
    fn error(&self, error: RdError, reason: &str) {
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
            tracing::error!(%error, reason, "fatal producer error; the producer will be rebuilt");
        } else {
            tracing::warn!(%error, reason, "kafka client error");
        }
    }
}

pub(super) type Inner = FutureProducer<Context>;

/// The node's one producer, replaceable after a fatal error.
pub struct Producer {
    inner: ArcSwap<Inner>,
    settings: KafkaSettings,
    message_timeout: Duration,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// Builds the producer. `deadline` is the produce request's deadline;
    /// librdkafka's message timeout is set a second below it, so every
    /// delivery resolves before the client can be told 504.
    pub fn new(settings: &KafkaSettings, deadline: Duration) -> Result<Self, KafkaError> {
        let message_timeout = deadline.saturating_sub(Duration::from_secs(1));
        let inner = build(settings, message_timeout)?;
        Ok(Self {
            inner: ArcSwap::from_pointee(inner),
            settings: settings.clone(),
            message_timeout,
        })
    }

    /// Sends a batch and waits for every delivery. Outcomes are in request
    /// order. Never returns early: a message enqueued is always awaited, so
    /// the answer covers everything that might have been written.
    pub async fn send_batch(
        &self,
        topic: &str,
        messages: &[OutgoingMessage],
    ) -> Vec<Result<Delivered, DeliveryFailure>> {
        let producer = self.current();
        let mut pending = Vec::with_capacity(messages.len());
        for message in messages {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic);
            if let Some(key) = &message.key {
                record = record.key(key.as_slice());
            }
            if let Some(value) = &message.value {
                record = record.payload(value.as_slice());
            }
            if let Some(partition) = message.partition {
                record = record.partition(partition);
            }
            if let Some(timestamp) = message.timestamp {
                record = record.timestamp(timestamp);
            }
            if !message.headers.is_empty() {
                let headers = message
                    .headers
                    .iter()
                    .fold(OwnedHeaders::new(), |h, (k, v)| {
                        h.insert(Header {
                            key: k.as_str(),
                            value: Some(v.as_slice()),
                        })
                    });
                record = record.headers(headers);
            }
            pending.push(producer.send_result(record).map_err(|(err, _)| err));
        }
        let fenced = AtomicBool::new(false);
        let fenced = &fenced;
        let futures = pending.into_iter().map(|enqueued| async move {
            let future = match enqueued {
                Ok(future) => future,
                Err(err) => return Err(DeliveryFailure::NotPersisted(describe(&err))),
            };
            match future.await {
                Ok(Ok(delivery)) => Ok(Delivered {
                    partition: delivery.partition,
                    offset: delivery.offset,
                }),
                Ok(Err((err, _))) => {
                    if is_fenced(&err) {
                        fenced.store(true, Ordering::Relaxed);
                    }
                    Err(classify(&err))
                }
                Err(_canceled) => Err(DeliveryFailure::Unknown(
                    "the producer was shut down".into(),
                )),
            }
        });
        let outcomes = join_all(futures).await;
        self.rebuild_if_broken(&producer, fenced.load(Ordering::Relaxed));
        outcomes
    }

    /// Messages queued or in flight to Kafka.
    pub fn in_flight(&self) -> i32 {
        self.current().in_flight_count()
    }

    /// Waits for queued messages, for shutdown.
    pub fn flush(&self, timeout: Duration) {
        if let Err(err) = self.current().flush(timeout) {
            tracing::warn!(%err, "producer flush did not complete");
        }
    }

    /// The client, for metadata queries that share its connections.
    pub(super) fn current(&self) -> Arc<Inner> {
        self.inner.load_full()
    }

    /// Replaces the producer after a fatal error, or once the broker has
    /// fenced its producer id: tansu fences an idempotent producer's id on
    /// a topic deleted and created again under the same name, and refuses
    /// every later batch to it without librdkafka seeing a fatal error. A
    /// new producer gets a new id.
    fn rebuild_if_broken(&self, used: &Arc<Inner>, fenced: bool) {
        let fatal = used.client().fatal_error().is_some();
        if !(fatal || fenced) || !Arc::ptr_eq(used, &self.inner.load()) {
            return;
        }
        match build(&self.settings, self.message_timeout) {
            Ok(fresh) => {
                self.inner.store(Arc::new(fresh));
                tracing::warn!(fatal, fenced, "producer rebuilt");
            }
            Err(err) => tracing::error!(%err, "cannot rebuild the producer"),
        }
    }
}

fn build(settings: &KafkaSettings, message_timeout: Duration) -> Result<Inner, KafkaError> {
    let mut config = base_config(settings);
    // sluice's guarantees, applied after the operator's properties.
    config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("allow.auto.create.topics", "false")
        .set(
            "message.timeout.ms",
            message_timeout.as_millis().to_string(),
        );
    config
        .create_with_context(Context)
        .map_err(|e| KafkaError::Config(e.to_string()))
}

fn describe(err: &RdError) -> String {
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::QueueFull) => "the producer queue is full".to_owned(),
        _ => err.to_string(),
    }
}

/// The broker refused the producer's id or epoch for good.
fn is_fenced(err: &RdError) -> bool {
    matches!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
    )
}

/// A timed-out message may have reached the broker; anything else that
/// failed was refused and is not stored.
fn classify(err: &RdError) -> DeliveryFailure {
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::RequestTimedOut) => {
            DeliveryFailure::Unknown(err.to_string())
        }
        _ => DeliveryFailure::NotPersisted(err.to_string()),
    }
}
