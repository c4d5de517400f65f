//! Topics in Kafka: creation and deletion through the admin client, and a
//! per-node cache of partition counts so that a produce can answer 404 or
//! check an explicit partition without asking Kafka every time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::client_config::base_config;
use super::error::KafkaError;
use super::metadata::Metadata;
use super::producer::Producer;
use super::settings::KafkaSettings;
use moka::future::Cache;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};

/// How long a known partition count is trusted. Partitions are only ever
/// added, and deletions through sluice invalidate at once.
const KNOWN_TTL: Duration = Duration::from_secs(60);
/// How long "no such topic" is trusted: short, so a new topic shows up fast.
const UNKNOWN_TTL: Duration = Duration::from_secs(2);

/// One partition with its watermarks. The admin API answers with its own
/// view of it (`admin::views::PartitionView`).
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

/// A topic as Kafka describes it.
#[derive(Debug, Clone)]
pub struct TopicDescription {
    pub name: String,
    pub partitions: Vec<PartitionInfo>,
}

/// Where to move a group's cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetTarget {
    Earliest,
    Latest,
    /// The first message at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// Kafka-side topic management and metadata.
pub struct TopicAdmin {
    admin: AdminClient<DefaultClientContext>,
    /// For offset-by-time lookups; never joins a group.
    lookup: Arc<BaseConsumer>,
    /// Partition counts and watermarks: never the producer's connection.
    metadata: Metadata,
    /// Readiness pings the producer's own connection.
    producer: Arc<Producer>,
    timeout: Duration,
    replication_factor: i32,
    known: Cache<String, i32>,
    unknown: Cache<String, ()>,
}

impl std::fmt::Debug for TopicAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicAdmin").finish_non_exhaustive()
    }
}

/// Topic configuration keys tenants may set through the admin API; the rest
/// belong to the operator.
pub const ALLOWED_TOPIC_CONFIG: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "max.message.bytes",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
];

impl TopicAdmin {
    pub fn new(
        settings: &KafkaSettings,
        producer: Arc<Producer>,
        metadata: Metadata,
    ) -> Result<Self, KafkaError> {
        let admin = base_config(settings)
            .create()
            .map_err(|e| KafkaError::Config(e.to_string()))?;
        let lookup: BaseConsumer = base_config(settings)
            .set("group.id", "sluice-admin-lookups")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| KafkaError::Config(e.to_string()))?;
        Ok(Self {
            admin,
            lookup: Arc::new(lookup),
            metadata,
            producer,
            timeout: settings.request_timeout,
            replication_factor: settings.replication_factor,
            known: Cache::builder()
                .time_to_live(KNOWN_TTL)
                .max_capacity(100_000)
                .build(),
            unknown: Cache::builder()
                .time_to_live(UNKNOWN_TTL)
                .max_capacity(100_000)
                .build(),
        })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// Creates a topic. `config` holds only keys from [`ALLOWED_TOPIC_CONFIG`].
    pub async fn create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: Option<i32>,
        config: &BTreeMap<String, String>,
    ) -> Result<(), KafkaError> {
        let replication = replication_factor.unwrap_or(self.replication_factor);
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
        for (key, value) in config {
            topic = topic.set(key, value);
        }
        let results = self
            .admin
            .create_topics([&topic], &self.options())
            .await
            .map_err(unavailable)?;
        for result in results {
            if let Err((topic, code)) = result {
                return Err(match code {
                    RDKafkaErrorCode::TopicAlreadyExists => KafkaError::TopicExists(topic),
                    RDKafkaErrorCode::RequestTimedOut | RDKafkaErrorCode::BrokerNotAvailable => {
                        KafkaError::Unavailable(code.to_string())
                    }
                    other => KafkaError::Refused(other.to_string()),
                });
            }
        }
        self.unknown.invalidate(name).await;
        self.known.invalidate(name).await;
        Ok(())
    }

    /// Deletes a topic; one that is already gone counts as deleted.
    pub async fn delete(&self, name: &str) -> Result<(), KafkaError> {
        let results = self
            .admin
            .delete_topics(&[name], &self.options())
            .await
            .map_err(unavailable)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((_, code)) => return Err(KafkaError::Unavailable(code.to_string())),
            }
        }
        self.forget(name).await;
        Ok(())
    }

    /// Drops what this node cached about a topic.
    pub async fn forget(&self, name: &str) {
        self.known.invalidate(name).await;
        self.unknown.invalidate(name).await;
    }

    /// Drops every cached partition count and "no such topic": after
    /// notices may have been lost, any topic may have changed.
    pub fn forget_all(&self) {
        self.known.invalidate_all();
        self.unknown.invalidate_all();
    }

    /// The partition count of a topic, from the cache or from Kafka.
    pub async fn partitions(&self, name: &str) -> Result<i32, KafkaError> {
        if let Some(count) = self.known.get(name).await {
            return Ok(count);
        }
        if self.unknown.contains_key(name) {
            return Err(KafkaError::UnknownTopic(name.to_owned()));
        }
        match self.fetch_partitions(name).await {
            Ok(count) => {
                self.known.insert(name.to_owned(), count).await;
                Ok(count)
            }
            Err(KafkaError::UnknownTopic(topic)) => {
                self.unknown.insert(name.to_owned(), ()).await;
                Err(KafkaError::UnknownTopic(topic))
            }
            Err(other) => Err(other),
        }
    }

    async fn fetch_partitions(&self, name: &str) -> Result<i32, KafkaError> {
        let client = self.metadata.clone();
        let topic = name.to_owned();
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || {
            let metadata = client
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map_err(unavailable)?;
            let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
                return Err(KafkaError::UnknownTopic(topic));
            };
            match found.error() {
                None if !found.partitions().is_empty() => {
                    Ok(i32::try_from(found.partitions().len()).unwrap_or(i32::MAX))
                }
                None => Err(KafkaError::UnknownTopic(topic)),
                Some(err) => match RDKafkaErrorCode::from(err) {
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
                        Err(KafkaError::UnknownTopic(topic))
                    }
                    other => Err(KafkaError::Unavailable(other.to_string())),
                },
            }
        })
        .await
        .map_err(|e| KafkaError::Unavailable(e.to_string()))?
    }

    /// Partition count and watermarks of a topic, straight from Kafka.
    pub async fn describe(&self, name: &str) -> Result<TopicDescription, KafkaError> {
        let count = self.fetch_partitions(name).await?;
        let client = self.metadata.clone();
        let topic = name.to_owned();
        let timeout = self.timeout;
        let partitions = tokio::task::spawn_blocking(move || {
            (0..count)
                .map(|partition| {
                    let (low, high) = client
                        .client()
                        .fetch_watermarks(&topic, partition, timeout)
                        .map_err(unavailable)?;
                    Ok(PartitionInfo {
                        partition,
                        low,
                        high,
                    })
                })
                .collect::<Result<Vec<_>, KafkaError>>()
        })
        .await
        .map_err(|e| KafkaError::Unavailable(e.to_string()))??;
        Ok(TopicDescription {
            name: name.to_owned(),
            partitions,
        })
    }

    /// The offset of each partition that `target` designates.
    pub async fn offsets_for(
        &self,
        name: &str,
        target: OffsetTarget,
    ) -> Result<Vec<(i32, i64)>, KafkaError> {
        let description = self.describe(name).await?;
        let OffsetTarget::Timestamp(ms) = target else {
            return Ok(description
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition,
                        if target == OffsetTarget::Earliest {
                            p.low
                        } else {
                            p.high
                        },
                    )
                })
                .collect());
        };
        let lookup = self.lookup.clone();
        let topic = name.to_owned();
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || {
            let mut query = TopicPartitionList::new();
            for p in &description.partitions {
                query
                    .add_partition_offset(&topic, p.partition, Offset::Offset(ms))
                    .map_err(|e| KafkaError::Unavailable(e.to_string()))?;
            }
            let found = lookup
                .offsets_for_times(query, timeout)
                .map_err(unavailable)?;
            Ok(description
                .partitions
                .iter()
                .map(|p| {
                    let offset = found
                        .find_partition(&topic, p.partition)
                        .and_then(|e| e.offset().to_raw())
                        .filter(|o| *o >= 0)
                        .unwrap_or(p.high);
                    (p.partition, offset)
                })
                .collect())
        })
        .await
        .map_err(|e| KafkaError::Unavailable(e.to_string()))?
    }

    /// A cheap round trip to the cluster, for readiness.
    pub async fn ping(&self) -> Result<(), KafkaError> {
        let producer = self.producer.current();
        let timeout = self.timeout.min(Duration::from_secs(2));
        tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, timeout).map(|_| ())
        })
        .await
        .map_err(|e| KafkaError::Unavailable(e.to_string()))?
        .map_err(unavailable)
    }
}

fn unavailable(err: RdError) -> KafkaError {
    KafkaError::Unavailable(err.to_string())
}
