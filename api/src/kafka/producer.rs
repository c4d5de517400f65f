//! The shared producer: acks=all, idempotent, murmur2_random partitioning.
//! A request enqueues its whole batch and then awaits every delivery
//! together; the per-message outcomes come back in request order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::channel::oneshot;
use futures::future::join_all;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientContext, Message as _};

use super::client_config::base_config;
use super::delivery::{classify, Delivered, DeliveryFailure};
use super::error::KafkaError;
use super::message_status::persistence;
use super::settings::{
    KafkaSettings, DEFAULT_PRODUCER_MESSAGE_MAX_BYTES, PRODUCER_MESSAGE_MAX_BYTES,
};

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

/// One message's outcome, as the delivery callback reports it.
type Outcome = Result<Delivered, DeliveryFailure>;

/// Routes librdkafka's error callbacks to our logs. Fatal errors (an
/// idempotent producer that lost its guarantees) are also detected after
/// each batch through `fatal_error()`, and the producer is replaced.
#[derive(Debug, Default)]
pub(super) struct Context {
    /// Set once the broker has fenced this producer's id or epoch; the
    /// producer is then replaced (see [`Producer::rebuild_if_broken`]).
    fenced: AtomicBool,
}

impl ClientContext for Context {
    fn error(&self, error: RdError, reason: &str) {
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
            tracing::error!(%error, reason, "fatal producer error; the producer will be rebuilt");
        } else {
            tracing::warn!(%error, reason, "kafka client error");
        }
    }
}

/// Each message carries the sending half of its own channel; the delivery
/// callback sorts the outcome there, where librdkafka's message (and so
/// its persistence status) is still at hand.
impl ProducerContext for Context {
    type DeliveryOpaque = Box<oneshot::Sender<Outcome>>;

    fn delivery(&self, result: &DeliveryResult<'_>, tx: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(message) => Ok(Delivered {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((err, message)) => {
                let code = code_of(err);
                if matches!(
                    code,
                    RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch
                ) {
                    self.fenced.store(true, Ordering::Relaxed);
                }
                Err(classify(code, Some(persistence(message)), &err.to_string()))
            }
        };
        // The request may have given up waiting (its deadline passed).
        let _ = tx.send(outcome);
    }
}

pub(super) type Inner = ThreadedProducer<Context>;

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
    ///
    /// The producer is shared by every tenant, and the broker may fence it
    /// because of one tenant's topic (tansu fences the producer id when a
    /// topic is deleted and created again). A batch that the replaced
    /// producer wrote none of, refused at once, is sent once more on the new
    /// one: nothing of it was written, so nothing can be doubled or
    /// reordered, and another tenant's batch does not fail for it.
    pub async fn send_batch(
        &self,
        topic: &str,
        messages: &[OutgoingMessage],
    ) -> Vec<Result<Delivered, DeliveryFailure>> {
        let started = Instant::now();
        let producer = self.current();
        let outcomes = deliver(&producer, topic, messages).await;
        self.rebuild_if_broken(&producer);
        let fresh = self.current();
        let none_written = outcomes
            .iter()
            .all(|o| matches!(o, Err(DeliveryFailure::NotPersisted(_))));
        if Arc::ptr_eq(&producer, &fresh) || !none_written || started.elapsed() > RESEND_WITHIN {
            return outcomes;
        }
        tracing::info!(
            topic,
            messages = messages.len(),
            "the producer was replaced; sending again a batch it wrote none of"
        );
        let outcomes = deliver(&fresh, topic, messages).await;
        self.rebuild_if_broken(&fresh);
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

    /// The producer in use now (it is replaced after a fatal error or a
    /// fence); the readiness ping uses its connection too.
    pub(super) fn current(&self) -> Arc<Inner> {
        self.inner.load_full()
    }

    /// Replaces the producer after a fatal error, or once the broker has
    /// fenced its producer id: tansu fences an idempotent producer's id on
    /// a topic deleted and created again under the same name, and refuses
    /// every later batch to it without librdkafka seeing a fatal error. A
    /// new producer gets a new id.
    fn rebuild_if_broken(&self, used: &Arc<Inner>) {
        let fatal = used.client().fatal_error().is_some();
        let fenced = used.context().fenced.load(Ordering::Relaxed);
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

/// How soon a batch must have failed on a replaced producer to be sent
/// again: within the slack between librdkafka's message timeout and the
/// request's deadline (1 s), so the second try's deliveries still resolve
/// before the deadline.
const RESEND_WITHIN: Duration = Duration::from_millis(500);

/// Enqueues a batch on `producer` and waits for every delivery, in request
/// order.
async fn deliver(
    producer: &Inner,
    topic: &str,
    messages: &[OutgoingMessage],
) -> Vec<Result<Delivered, DeliveryFailure>> {
    let mut pending = Vec::with_capacity(messages.len());
    for message in messages {
        let (tx, rx) = oneshot::channel();
        let mut record = BaseRecord::<[u8], [u8], _>::with_opaque_to(topic, Box::new(tx));
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
        // Refused before it was queued (too large, queue full, fatal
        // state): there is no message status, the code says it all.
        pending.push(
            producer
                .send(record)
                .map(|()| rx)
                .map_err(|(err, _)| classify(code_of(&err), None, &err.to_string())),
        );
    }
    let futures = pending.into_iter().map(|enqueued| async move {
        match enqueued?.await {
            Ok(outcome) => outcome,
            Err(oneshot::Canceled) => Err(DeliveryFailure::Unknown(
                "the producer was shut down before Kafka answered".into(),
            )),
        }
    });
    join_all(futures).await
}

fn build(settings: &KafkaSettings, message_timeout: Duration) -> Result<Inner, KafkaError> {
    let mut config = base_config(settings);
    // Unless the operator matched it to their brokers, the largest request
    // librdkafka builds is what a default Kafka broker appends (see
    // `DEFAULT_PRODUCER_MESSAGE_MAX_BYTES`); librdkafka's own default
    // (1000000, framing included) would refuse a message of
    // `produce.max_message_bytes`.
    if !settings.properties.contains_key(PRODUCER_MESSAGE_MAX_BYTES) {
        config.set(
            PRODUCER_MESSAGE_MAX_BYTES,
            DEFAULT_PRODUCER_MESSAGE_MAX_BYTES.to_string(),
        );
    }
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
        .create_with_context(Context::default())
        .map_err(|e| KafkaError::Config(e.to_string()))
}

/// librdkafka's error code behind an error, or a generic failure.
fn code_of(err: &RdError) -> RDKafkaErrorCode {
    err.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)
}
