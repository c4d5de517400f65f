//! The per-node reader cache: a small fixed pool of rdkafka consumers that
//! never join a group (partition-assigned, no rebalances), each holding the last partition read through it. A
//! partition always maps to the same reader, so a group reading on from
//! where its last GET stopped hits a reader already positioned there (the
//! fast path: no assign, no extra round trip). Threads, memory and Kafka
//! connections depend on the pool size only, never on tenants, topics or
//! groups. All calls here block and run on the blocking pool.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Semaphore;

use super::client_config::base_config;
use super::consumed::ConsumedMessage;
use super::error::KafkaError;
use super::headers::read_headers;
use super::recent::RecentMessages;
use super::settings::KafkaSettings;

/// What to read.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    pub topic: String,
    pub partition: i32,
    /// The next offset to deliver.
    pub cursor: i64,
    pub max_messages: usize,
    pub max_bytes: usize,
    /// When the read must end: one deadline for the whole GET, covering
    /// the wait for the reader as well as every partition it reads.
    pub deadline: Instant,
    /// The high watermark the claim saw: messages exist below it, so an
    /// end-of-partition event for an offset below it is stale (queued
    /// before they arrived) and reading goes on.
    pub known_high: i64,
}

/// What was read.
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    pub messages: Vec<ConsumedMessage>,
    /// Where the cursor goes: after the last message, or where the reader
    /// stands if nothing was deliverable.
    pub next_cursor: i64,
    /// Messages lost to retention: the cursor was behind the earliest
    /// retained offset and jumped forward by this many.
    pub skipped: i64,
    /// The end of the partition, when the reader reached it.
    pub end: Option<i64>,
    /// How many of `messages` came from the cache of recent messages.
    pub from_cache: usize,
    /// The cursor lay beyond the end of the log (it was truncated, or the
    /// topic was created again) and moved to the end.
    pub truncated: bool,
    /// The first offset read, set when the consume layer filtered some
    /// messages out (offsets a partial ack settled), so that the range it
    /// holds still starts where the read did.
    pub first_read: Option<i64>,
}

/// The readers' librdkafka context: rust-rdkafka reports every
/// end-of-partition event as a global error too, which would log an error
/// per empty read; those are expected here and handled in [`Reader::read`].
struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: RdError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::error!(%error, reason, "kafka reader error");
        }
    }
}

impl ConsumerContext for ReaderContext {}

struct Reader {
    consumer: BaseConsumer<ReaderContext>,
    assigned: Option<(String, i32)>,
    /// The offset the consumer's next message for the assignment has.
    position: i64,
    /// When the last read ended.
    last_read: Instant,
}

impl Reader {
    /// Forgets where the consumer stands, so that the next read assigns
    /// the partition again at its cursor (the slow path, always correct).
    /// After a panic mid-read this is all there is to repair: the consumer
    /// is librdkafka's, which a Rust panic (raised after rust-rdkafka's
    /// call returned) does not corrupt, and `assigned`/`position` are the
    /// only state kept across reads, possibly a message behind.
    fn forget_position(&mut self) {
        self.assigned = None;
        self.position = -1;
    }

    /// Stops fetching: nothing is assigned until the next read.
    fn release(&mut self) {
        if self.assigned.take().is_some() {
            if let Err(err) = self.consumer.unassign() {
                tracing::warn!(error = %err, "cannot release a reader");
            }
            self.position = -1;
        }
    }

    fn assign(&mut self, topic: &str, partition: i32, offset: i64) -> Result<(), KafkaError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(|e| KafkaError::Unavailable(e.to_string()))?;
        self.consumer
            .assign(&list)
            .map_err(|e| KafkaError::Unavailable(e.to_string()))?;
        self.assigned = Some((topic.to_owned(), partition));
        self.position = offset;
        Ok(())
    }

    fn read(
        &mut self,
        req: &ReadRequest,
        fetch_timeout: Duration,
    ) -> Result<ReadOutcome, KafkaError> {
        let positioned = self
            .assigned
            .as_ref()
            .is_some_and(|(t, p)| *t == req.topic && *p == req.partition)
            && self.position == req.cursor;
        if !positioned {
            self.assign(&req.topic, req.partition, req.cursor)?;
        }
        let mut outcome = ReadOutcome {
            next_cursor: req.cursor,
            ..ReadOutcome::default()
        };
        let mut bytes = 0usize;
        let deadline = req.deadline;
        // Lowered to the real end if the log turns out to be truncated.
        let mut known_high = req.known_high;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match self.consumer.poll(deadline - now) {
                None => {}
                Some(Ok(m)) => {
                    // A fetch from the middle of a batch returns the whole
                    // batch on real Kafka: drop what lies before the cursor.
                    if m.topic() != req.topic
                        || m.partition() != req.partition
                        || m.offset() < outcome.next_cursor
                    {
                        continue;
                    }
                    let message = ConsumedMessage {
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp: m.timestamp().to_millis(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                        headers: read_headers(&m),
                    };
                    bytes += message.size();
                    outcome.next_cursor = message.offset + 1;
                    self.position = outcome.next_cursor;
                    outcome.messages.push(message);
                    if outcome.messages.len() >= req.max_messages || bytes >= req.max_bytes {
                        break;
                    }
                }
                Some(Err(RdError::PartitionEOF(partition))) if partition == req.partition => {
                    let at = self.position.max(outcome.next_cursor);
                    if at >= known_high || !outcome.messages.is_empty() {
                        outcome.end = Some(at);
                        break;
                    }
                }
                Some(Err(RdError::PartitionEOF(_))) => {}
                Some(Err(err)) if out_of_range(&err) => {
                    let (low, high) = self
                        .consumer
                        .fetch_watermarks(&req.topic, req.partition, fetch_timeout)
                        .map_err(|e| KafkaError::Unavailable(e.to_string()))?;
                    let (target, skipped) = reposition(outcome.next_cursor, low, high);
                    outcome.skipped += skipped;
                    if outcome.next_cursor > high {
                        outcome.truncated = true;
                        known_high = high;
                    }
                    tracing::warn!(
                        topic = %req.topic,
                        partition = req.partition,
                        from = outcome.next_cursor,
                        to = target,
                        low,
                        high,
                        "cursor was outside the retained offsets; moved inside"
                    );
                    outcome.next_cursor = target;
                    self.assign(&req.topic, req.partition, target)?;
                }
                Some(Err(err)) => {
                    // Keep what was read; anything else is a Kafka problem.
                    self.assigned = None;
                    if outcome.messages.is_empty() {
                        return Err(KafkaError::Unavailable(err.to_string()));
                    }
                    tracing::warn!(error = %err, "read stopped early");
                    break;
                }
            }
        }
        self.last_read = Instant::now();
        Ok(outcome)
    }
}

/// A reader's consumer: it never joins a group, and reports a cursor
/// behind retention instead of moving it.
fn new_consumer(settings: &KafkaSettings) -> Result<BaseConsumer<ReaderContext>, KafkaError> {
    let mut config = base_config(settings);
    config
        // librdkafka's assign() needs a group handle; this id is never
        // joined (no subscribe) and never committed to.
        .set("group.id", "sluice-readers")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A cursor behind retention must be noticed, not moved.
        .set("auto.offset.reset", "error")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "10")
        // Per partition; one partition per reader at a time.
        .set("queued.max.messages.kbytes", "2048")
        .set("allow.auto.create.topics", "false");
    config
        .create_with_context(ReaderContext)
        .map_err(|e| KafkaError::Config(e.to_string()))
}

/// Where a cursor Kafka called out of range goes, and how many messages
/// that skips: behind the earliest retained offset it jumps there (the
/// messages in between are gone); past the end (the log was truncated)
/// it moves to the end, skipping nothing and never re-reading the log.
fn reposition(cursor: i64, low: i64, high: i64) -> (i64, i64) {
    if cursor < low {
        (low, low - cursor)
    } else if cursor > high {
        (high, 0)
    } else {
        (cursor, 0)
    }
}

fn out_of_range(err: &RdError) -> bool {
    matches!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::OffsetOutOfRange | RDKafkaErrorCode::AutoOffsetReset)
    )
}

/// The pool, in front of which sits the cache of recently read messages.
///
/// Readers are shared by every tenant, so two rules keep one tenant's
/// reads from holding up another's:
/// - a tenant has at most half the readers (at least one) reading Kafka
///   for it at once; its other reads wait their turn in its own queue, not
///   on the readers;
/// - a read whose reader is busy takes any idle reader instead (it assigns
///   the partition there, a refetch) rather than waiting behind a slow
///   read of another partition, e.g. of a topic being deleted, which
///   holds its reader until its deadline.
pub struct Readers {
    readers: Vec<Arc<Mutex<Reader>>>,
    /// Kafka reads in progress per tenant; see the rules above.
    tenants: moka::sync::Cache<String, Arc<Semaphore>>,
    per_tenant: usize,
    recent: RecentMessages,
    fetch_timeout: Duration,
    /// For consumers built anew (see [`renew_if_stuck`]).
    settings: Arc<KafkaSettings>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("size", &self.readers.len())
            .finish()
    }
}

impl Readers {
    pub fn new(
        settings: &KafkaSettings,
        size: usize,
        recent: RecentMessages,
    ) -> Result<Self, KafkaError> {
        let readers = (0..size.max(1))
            .map(|_| {
                Ok(Arc::new(Mutex::new(Reader {
                    consumer: new_consumer(settings)?,
                    assigned: None,
                    position: -1,
                    last_read: Instant::now(),
                })))
            })
            .collect::<Result<Vec<_>, KafkaError>>()?;
        let per_tenant = (readers.len() / 2).max(1);
        Ok(Self {
            readers,
            tenants: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            per_tenant,
            recent,
            fetch_timeout: Duration::from_secs(5),
            settings: Arc::new(settings.clone()),
        })
    }

    /// The reader of a partition: the topic picks a starting reader and
    /// consecutive partitions take consecutive readers, so the partitions
    /// of one topic never share a reader while there are enough of them
    /// (a shared reader would re-assign, and refetch, on every other GET).
    fn reader_for(&self, topic: &str, partition: i32) -> usize {
        let mut hasher = DefaultHasher::new();
        topic.hash(&mut hasher);
        let count = self.readers.len() as u64;
        let start = hasher.finish() % count;
        let index = (start + u64::from(partition.unsigned_abs())) % count;
        usize::try_from(index).unwrap_or(0)
    }

    /// Stops every reader that holds a partition of `topic` (waiting for a
    /// read in progress), and forgets its cached messages, before the
    /// topic is deleted: tansu answers fetches for a deleted topic with a
    /// leader hint that crashes librdkafka 2.12 (a null topic name in its
    /// metadata update).
    pub async fn release_topic(&self, topic: &str) {
        self.recent.forget_topic(topic);
        let readers = self.readers.clone();
        let topic = topic.to_owned();
        let _ = tokio::task::spawn_blocking(move || {
            for reader in readers {
                let mut reader = lock(&reader);
                if reader.assigned.as_ref().is_some_and(|(t, _)| *t == topic) {
                    reader.release();
                }
            }
        })
        .await;
    }

    /// Releases readers idle for longer than `idle`, every `idle`: an idle
    /// reader would fetch its partition forever, loading the broker and
    /// reading topics that may since have been deleted outside sluice.
    pub fn spawn_janitor(&self, idle: Duration) {
        let readers = self.readers.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(idle);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let readers = readers.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    for reader in readers {
                        // A reader in use is not idle.
                        if let Ok(mut reader) = reader.try_lock() {
                            if reader.last_read.elapsed() >= idle {
                                reader.release();
                            }
                        }
                    }
                })
                .await;
            }
        });
    }

    /// The cache of recently read messages.
    pub fn recent(&self) -> &RecentMessages {
        &self.recent
    }

    /// Reads one partition at a cursor: from the cache of recent messages
    /// as far as it holds them, then from Kafka on the blocking pool.
    pub async fn read(
        &self,
        tenant: &str,
        mut req: ReadRequest,
    ) -> Result<ReadOutcome, KafkaError> {
        let mut outcome = ReadOutcome {
            next_cursor: req.cursor,
            ..ReadOutcome::default()
        };
        if let Some(served) = self.recent.serve(
            &req.topic,
            req.partition,
            req.cursor,
            req.max_messages,
            req.max_bytes,
        ) {
            let full = served.messages.len() >= req.max_messages || served.bytes >= req.max_bytes;
            req.max_messages -= served.messages.len().min(req.max_messages);
            req.max_bytes = req.max_bytes.saturating_sub(served.bytes).max(1);
            req.cursor = served.next_cursor;
            outcome.next_cursor = served.next_cursor;
            outcome.from_cache = served.messages.len();
            outcome.messages = served.messages;
            // Nothing more is known to exist, or the batch is full.
            if full || req.cursor >= req.known_high {
                return Ok(outcome);
            }
        }
        let start = req.cursor;
        let from_kafka = match self.read_kafka(tenant, req.clone()).await {
            Ok(read) => read,
            Err(err) if outcome.messages.is_empty() => return Err(err),
            Err(err) => {
                tracing::warn!(error = %err, "read stopped after the cached messages");
                return Ok(outcome);
            }
        };
        if from_kafka.truncated {
            // What the cache holds of this topic may be the old log's.
            self.recent.forget_topic(&req.topic);
        } else if from_kafka.skipped == 0 {
            self.recent.record(
                &req.topic,
                req.partition,
                start,
                from_kafka.next_cursor,
                &from_kafka.messages,
            );
        }
        outcome.messages.extend(from_kafka.messages);
        outcome.next_cursor = from_kafka.next_cursor;
        outcome.skipped = from_kafka.skipped;
        outcome.truncated = from_kafka.truncated;
        outcome.end = from_kafka.end;
        Ok(outcome)
    }

    /// Reads one partition at a cursor from Kafka, on the blocking pool, in
    /// one of the tenant's turns. A read that gets no turn before its
    /// deadline reads nothing and leaves the cursor where it is.
    async fn read_kafka(&self, tenant: &str, req: ReadRequest) -> Result<ReadOutcome, KafkaError> {
        let turns = self
            .tenants
            .get_with_by_ref(tenant, || Arc::new(Semaphore::new(self.per_tenant)));
        let Ok(Ok(turn)) =
            tokio::time::timeout_at(req.deadline.into(), turns.acquire_owned()).await
        else {
            return Ok(ReadOutcome {
                next_cursor: req.cursor,
                ..ReadOutcome::default()
            });
        };
        let preferred = self.reader_for(&req.topic, req.partition);
        let readers = self.readers.clone();
        let fetch_timeout = self.fetch_timeout;
        let settings = self.settings.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let mut reader = lock_idle(&readers, preferred);
            let outcome = guarded(&mut reader, &req, |reader| reader.read(&req, fetch_timeout));
            renew_if_stuck(&mut reader, &req, &outcome, &settings);
            outcome
        })
        .await
        .map_err(|e| KafkaError::Unavailable(e.to_string()))?
    }
}

/// Replaces a reader's consumer when a read got nothing at all (no message,
/// no end of partition) from a partition known to hold messages past the
/// cursor. That is a consumer stuck on a topic deleted and created again
/// under the same name: librdkafka keeps fetching by the old topic id,
/// tansu answers for an unknown topic, and librdkafka ignores the answer
/// without refreshing its metadata, for ever. A new consumer starts from
/// fresh metadata, with the new id. A slow broker may cost a needless
/// renewal, once per read at most.
fn renew_if_stuck(
    reader: &mut Reader,
    req: &ReadRequest,
    outcome: &Result<ReadOutcome, KafkaError>,
    settings: &KafkaSettings,
) {
    let stuck = matches!(outcome, Ok(read) if read.messages.is_empty()
        && read.end.is_none()
        && read.skipped == 0
        && req.known_high > req.cursor);
    if !stuck {
        return;
    }
    match new_consumer(settings) {
        Ok(consumer) => {
            tracing::warn!(
                topic = %req.topic,
                partition = req.partition,
                cursor = req.cursor,
                known_high = req.known_high,
                "a reader read nothing from a partition with messages; its consumer was renewed"
            );
            reader.consumer = consumer;
            reader.forget_position();
        }
        Err(err) => tracing::error!(error = %err, "cannot renew a stuck reader"),
    }
}

/// Runs one read so that a panic fails this read, never the reader: it
/// is caught while the lock is held (so the mutex is not poisoned), and
/// the reader re-assigns at the next read's cursor.
fn guarded(
    reader: &mut Reader,
    req: &ReadRequest,
    read: impl FnOnce(&mut Reader) -> Result<ReadOutcome, KafkaError>,
) -> Result<ReadOutcome, KafkaError> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| read(&mut *reader))) {
        Ok(outcome) => outcome,
        Err(panic) => {
            reader.forget_position();
            let reason = panic_text(panic.as_ref());
            tracing::error!(
                topic = %req.topic,
                partition = req.partition,
                cursor = req.cursor,
                %reason,
                "a read panicked; the reader was reset"
            );
            Err(KafkaError::ReadFailed(reason))
        }
    }
}

/// Locks the preferred reader if it is idle, else the first idle one after
/// it, else waits for the preferred one: a read never queues behind another
/// while a reader has nothing to do.
fn lock_idle(readers: &[Arc<Mutex<Reader>>], preferred: usize) -> MutexGuard<'_, Reader> {
    for offset in 0..readers.len() {
        let reader = &readers[(preferred + offset) % readers.len()];
        match reader.try_lock() {
            Ok(guard) => return guard,
            Err(std::sync::TryLockError::Poisoned(_)) => return lock(reader),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
    }
    lock(&readers[preferred])
}

/// Locks a reader, recovering it if a panic ever poisoned its mutex
/// (reads catch their panics, so none should): the poison is cleared and
/// the reader's position forgotten, which is all a reader needs to be
/// usable again (see [`Reader::forget_position`]). Refusing a poisoned
/// reader instead would fail every partition mapped to it, for every
/// tenant, until a restart.
fn lock(reader: &Mutex<Reader>) -> MutexGuard<'_, Reader> {
    match reader.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            reader.clear_poison();
            let mut guard = poisoned.into_inner();
            guard.forget_position();
            tracing::warn!("a poisoned reader was recovered");
            guard
        }
    }
}

/// What a panic said, if it said it with a string.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::{guarded, lock, new_consumer, reposition, ReadOutcome, ReadRequest, Reader};
    use crate::kafka::KafkaError;
    use crate::kafka::{KafkaSaslSettings, KafkaSettings, KafkaSslSettings, SecurityProtocol};

    /// A reader positioned on `t`[0] at 42; its consumer never connects.
    fn positioned_reader() -> Reader {
        let settings = KafkaSettings {
            bootstrap_servers: "127.0.0.1:1".into(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl: KafkaSaslSettings {
                mechanism: None,
                username: None,
                password: None,
            },
            ssl: KafkaSslSettings { ca_location: None },
            properties: Default::default(),
            replication_factor: 1,
            request_timeout: Duration::from_secs(1),
        };
        Reader {
            consumer: new_consumer(&settings).unwrap(),
            assigned: Some(("t".into(), 0)),
            position: 42,
            last_read: Instant::now(),
        }
    }

    fn request() -> ReadRequest {
        ReadRequest {
            topic: "t".into(),
            partition: 0,
            cursor: 42,
            max_messages: 1,
            max_bytes: 1,
            deadline: Instant::now() + Duration::from_millis(1),
            known_high: 43,
        }
    }

    #[test]
    fn a_panicking_read_fails_with_an_internal_error_and_the_reader_reassigns_next_time() {
        let mut reader = positioned_reader();

        let result = guarded(&mut reader, &request(), |_| {
            panic!("header key is not UTF-8")
        });

        assert!(
            matches!(&result, Err(KafkaError::ReadFailed(reason)) if reason.contains("UTF-8")),
            "{result:?}"
        );
        assert_eq!(reader.assigned, None);
        assert_eq!(reader.position, -1);
        let next = guarded(&mut reader, &request(), |_| Ok(ReadOutcome::default()));
        assert!(next.is_ok());
    }

    #[test]
    fn a_poisoned_reader_is_recovered_and_forgets_its_position() {
        let reader = Arc::new(Mutex::new(positioned_reader()));
        let holder = reader.clone();
        let _ = std::thread::spawn(move || {
            let _guard = holder.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(reader.is_poisoned());

        let guard = lock(&reader);

        assert_eq!(guard.assigned, None);
        drop(guard);
        assert!(!reader.is_poisoned());
    }

    #[test]
    fn a_cursor_behind_retention_jumps_to_the_earliest_offset_and_counts_the_skip() {
        assert_eq!(reposition(3, 6, 10), (6, 3));
    }

    #[test]
    fn a_cursor_past_the_end_moves_to_the_end_without_counting_a_skip() {
        assert_eq!(reposition(15, 0, 10), (10, 0));
    }

    #[test]
    fn a_cursor_inside_the_log_stays() {
        assert_eq!(reposition(7, 6, 10), (7, 0));
    }
}
