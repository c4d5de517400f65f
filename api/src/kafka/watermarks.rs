//! A per-node cache of partition watermarks, so that a GET knows which
//! partitions have messages past their cursor without a broker round trip.
//! It is fed by this node's producer deliveries, by other nodes' produce
//! announcements, by the readers, and by a poller for topics in use; every
//! rise wakes the long polls waiting on that topic.
//!
//! A log that goes *backwards* (a high watermark below the cached one, or
//! the topic gone from Kafka) was truncated, or deleted and created again
//! outside sluice, which sends no notice. Then the cached marks are lowered
//! and the recently read messages of the topic are forgotten, so that a
//! new incarnation's offsets are never answered with the old one's
//! messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use rdkafka::types::RDKafkaErrorCode;

use super::error::KafkaError;
use super::metadata::Metadata;
use super::recent::RecentMessages;

/// Topics not read for this long drop out of the cache and the poller.
const IDLE: Duration = Duration::from_secs(60);

/// The watermarks of one topic's partitions.
#[derive(Debug)]
pub struct TopicMarks {
    lows: Vec<AtomicI64>,
    highs: Vec<AtomicI64>,
    last_used: Mutex<Instant>,
    changed: Notify,
    /// Set once the cache has dropped these marks: nothing raises them any
    /// more, so a long poll holding them must fetch the topic's marks anew.
    retired: AtomicBool,
}

impl TopicMarks {
    fn new(partitions: usize) -> Self {
        Self {
            lows: (0..partitions).map(|_| AtomicI64::new(0)).collect(),
            highs: (0..partitions).map(|_| AtomicI64::new(0)).collect(),
            last_used: Mutex::new(Instant::now()),
            changed: Notify::new(),
            retired: AtomicBool::new(false),
        }
    }

    pub fn partitions(&self) -> usize {
        self.highs.len()
    }

    /// (partition, high watermark) for every partition.
    pub fn highs(&self) -> Vec<(i32, i64)> {
        self.highs
            .iter()
            .enumerate()
            .map(|(p, h)| {
                (
                    i32::try_from(p).unwrap_or(i32::MAX),
                    h.load(Ordering::Acquire),
                )
            })
            .collect()
    }

    /// (partition, low watermark) for every partition.
    pub fn lows(&self) -> Vec<(i32, i64)> {
        self.lows
            .iter()
            .enumerate()
            .map(|(p, l)| {
                (
                    i32::try_from(p).unwrap_or(i32::MAX),
                    l.load(Ordering::Acquire),
                )
            })
            .collect()
    }

    /// Resolves at the next rise of any high watermark. Create it before
    /// checking for messages, so that a rise in between is not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Whether the cache has dropped these marks (see [`Watermarks::forget`]).
    pub fn retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Marks these as dropped and wakes the long polls waiting on them, so
    /// that they look again with fresh marks.
    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    fn raise(&self, partition: i32, high: i64) -> bool {
        let Some(slot) = usize::try_from(partition)
            .ok()
            .and_then(|p| self.highs.get(p))
        else {
            return false;
        };
        slot.fetch_max(high, Ordering::AcqRel) < high
    }

    /// Lowers a partition's high watermark to `high` if it is above it.
    fn lower(&self, partition: i32, high: i64) {
        if let Some(slot) = usize::try_from(partition)
            .ok()
            .and_then(|p| self.highs.get(p))
        {
            slot.fetch_min(high, Ordering::AcqRel);
        }
    }

    fn set_low(&self, partition: usize, low: i64) {
        if let Some(slot) = self.lows.get(partition) {
            slot.store(low, Ordering::Release);
        }
    }

    fn touch(&self) {
        if let Ok(mut at) = self.last_used.lock() {
            *at = Instant::now();
        }
    }

    fn idle(&self) -> bool {
        self.last_used
            .lock()
            .map(|at| at.elapsed() > IDLE)
            .unwrap_or(true)
    }
}

/// The node's watermark cache.
pub struct Watermarks {
    /// Never the producer's connection: see [`Metadata`].
    metadata: Metadata,
    topics: Mutex<HashMap<String, Arc<TopicMarks>>>,
    timeout: Duration,
    /// Forgotten per topic when its log is found to have gone backwards.
    recent: RecentMessages,
}

impl std::fmt::Debug for Watermarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watermarks").finish_non_exhaustive()
    }
}

impl Watermarks {
    /// `recent` is the readers' cache of recently read messages, which
    /// must not outlive the log it was read from.
    pub fn new(metadata: Metadata, timeout: Duration, recent: RecentMessages) -> Self {
        Self {
            metadata,
            topics: Mutex::new(HashMap::new()),
            timeout,
            recent,
        }
    }

    fn cached(&self, topic: &str) -> Option<Arc<TopicMarks>> {
        self.topics.lock().ok()?.get(topic).cloned()
    }

    /// The marks of a topic with `partitions` partitions; fetched from
    /// Kafka only the first time (or when the partition count changed).
    pub async fn get(&self, topic: &str, partitions: i32) -> Result<Arc<TopicMarks>, KafkaError> {
        let count = usize::try_from(partitions).unwrap_or(0);
        if let Some(marks) = self.cached(topic).filter(|m| m.partitions() == count) {
            marks.touch();
            return Ok(marks);
        }
        let marks = Arc::new(TopicMarks::new(count));
        self.fetch_into(topic, &marks).await?;
        if let Ok(mut topics) = self.topics.lock() {
            topics.insert(topic.to_owned(), marks.clone());
        }
        Ok(marks)
    }

    /// Records that a partition's high watermark is at least `high`, and
    /// wakes the long polls on the topic if it rose.
    pub fn observe(&self, topic: &str, partition: i32, high: i64) {
        if let Some(marks) = self.cached(topic) {
            if marks.raise(partition, high) {
                marks.changed.notify_waiters();
            }
        }
    }

    /// Records that a partition's log ends at `high`, below what was known:
    /// it was truncated. A cached high watermark only ever rises otherwise,
    /// and one left above the real end would make every read of the
    /// partition wait for messages that no longer exist.
    pub fn truncated(&self, topic: &str, partition: i32, high: i64) {
        // The messages cached from the old log may sit at offsets the new
        // one reuses.
        self.recent.forget_topic(topic);
        let Some(marks) = self.cached(topic) else {
            return;
        };
        marks.lower(partition, high);
    }

    /// One partition's (low, high) watermarks fetched from Kafka now, for
    /// a cursor found beyond the cached high watermark: either the cache
    /// is behind (another node read further) or the log was truncated.
    pub async fn fetch_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(i64, i64), KafkaError> {
        let client = self.metadata.clone();
        let name = topic.to_owned();
        let timeout = self.timeout;
        let (low, high) = tokio::task::spawn_blocking(move || {
            client
                .client()
                .fetch_watermarks(&name, partition, timeout)
                .map_err(|e| watermark_error(&name, &e))
        })
        .await
        .map_err(|e| KafkaError::Unavailable(e.to_string()))??;
        self.observe(topic, partition, high);
        Ok((low, high))
    }

    /// Drops a topic, e.g. when it is deleted.
    pub fn forget(&self, topic: &str) {
        let removed = self.topics.lock().ok().and_then(|mut t| t.remove(topic));
        if let Some(marks) = removed {
            marks.retire();
        }
    }

    /// Drops every topic: after notices may have been lost (the change
    /// listener reconnected), no cached mark can be trusted, since a topic
    /// may have been deleted and created again meanwhile.
    pub fn forget_all(&self) {
        let removed: Vec<Arc<TopicMarks>> = match self.topics.lock() {
            Ok(mut topics) => topics.drain().map(|(_, marks)| marks).collect(),
            Err(_) => return,
        };
        for marks in removed {
            marks.retire();
        }
    }

    async fn fetch_into(&self, topic: &str, marks: &Arc<TopicMarks>) -> Result<(), KafkaError> {
        // What was known before asking: a high watermark observed then was
        // the broker's at some point before, so an answer below it means
        // the log went backwards. (A rise observed while the fetch is in
        // flight may legitimately be above the answer.)
        let before = marks.highs();
        let client = self.metadata.clone();
        let name = topic.to_owned();
        let count = marks.partitions();
        let timeout = self.timeout;
        let fetched = tokio::task::spawn_blocking(move || {
            (0..count)
                .map(|p| {
                    let partition = i32::try_from(p).unwrap_or(i32::MAX);
                    client
                        .client()
                        .fetch_watermarks(&name, partition, timeout)
                        .map_err(|e| watermark_error(&name, &e))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| KafkaError::Unavailable(e.to_string()))??;
        let mut rose = false;
        let mut rewound = false;
        for ((p, (low, high)), (partition, known)) in fetched.into_iter().enumerate().zip(before) {
            marks.set_low(p, low);
            rose |= marks.raise(partition, high);
            if high < known {
                marks.lower(partition, high);
                rewound = true;
            }
        }
        if rewound {
            tracing::warn!(%topic, "a log went backwards (truncated, or the topic was created again outside sluice); its cached messages are forgotten");
            self.recent.forget_topic(topic);
        }
        if rose || rewound {
            marks.changed.notify_waiters();
        }
        Ok(())
    }

    /// The topic is gone from Kafka (deleted outside sluice, perhaps to be
    /// created again): nothing cached of it is kept.
    fn vanished(&self, topic: &str) {
        tracing::info!(%topic, "the topic is gone from Kafka; its cached marks and messages are forgotten");
        self.forget(topic);
        self.recent.forget_topic(topic);
    }

    /// Refreshes every topic in use every `interval`, so that messages
    /// produced without sluice (native clients) are noticed too.
    pub fn spawn_poller(self: Arc<Self>, interval: Duration) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let topics: Vec<(String, Arc<TopicMarks>)> = match self.topics.lock() {
                    Ok(mut topics) => {
                        topics.retain(|_, marks| !marks.idle());
                        topics.iter().map(|(t, m)| (t.clone(), m.clone())).collect()
                    }
                    Err(_) => continue,
                };
                for (topic, marks) in topics {
                    match self.fetch_into(&topic, &marks).await {
                        Ok(()) => {}
                        Err(KafkaError::UnknownTopic(_)) => self.vanished(&topic),
                        Err(err) => {
                            tracing::debug!(%topic, error = %err, "watermark refresh failed");
                        }
                    }
                }
            }
        });
    }
}

/// A failed watermark fetch, telling a topic that does not exist (any
/// more) from a broker that cannot answer.
fn watermark_error(topic: &str, err: &rdkafka::error::KafkaError) -> KafkaError {
    match err.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::UnknownPartition,
        ) => KafkaError::UnknownTopic(topic.to_owned()),
        _ => KafkaError::Unavailable(err.to_string()),
    }
}
