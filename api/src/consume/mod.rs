//! `GET /topic/{topic}`: consume with automatic offsets, from any node.
//!
//! Each attempt claims partitions in Postgres (`FOR UPDATE SKIP LOCKED`),
//! reads them at their cursors, advances the cursors and commits, and only
//! then answers. A long poll (`wait`) waits between attempts on the node's
//! watermark notifier, holding no database connection.

mod admission;
mod query;
mod response;
mod retention;

use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use moka::future::Cache;
use tenancy::{GroupName, Store, TenantName, TopicName};

pub use admission::{ConsumeAdmission, ConsumeSlot};
pub use query::{ConsumeParams, ConsumeQuery};
pub use response::OutMessage;
pub use retention::spawn_group_retention;

use crate::auth::{Access, Authenticated};
use crate::config::ConsumeSettings;
use crate::error::ApiError;
use crate::kafka::{
    ConsumedMessage, Mirror, ReadRequest, Readers, TopicAdmin, TopicMarks, Watermarks,
};
use crate::ratelimit::TenantLimits;

/// The header that reports messages skipped because the cursor had fallen
/// behind retention.
pub const SKIPPED_HEADER: &str = "Sluice-Skipped-Messages";

/// What one attempt delivered.
#[derive(Debug, Default)]
struct Batch {
    messages: Vec<ConsumedMessage>,
    skipped: i64,
}

/// The consume machinery of a node: cursors, readers and watermarks.
pub struct Consumption {
    store: Store,
    readers: Readers,
    watermarks: std::sync::Arc<Watermarks>,
    settings: ConsumeSettings,
    mirror: Mirror,
    /// (tenant, group, topic) whose cursor rows exist, to skip the insert.
    known_cursors: Cache<(String, String, String), ()>,
}

impl std::fmt::Debug for Consumption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumption").finish_non_exhaustive()
    }
}

impl Consumption {
    pub fn new(
        store: Store,
        readers: Readers,
        watermarks: std::sync::Arc<Watermarks>,
        settings: ConsumeSettings,
        mirror: Mirror,
    ) -> Self {
        Self {
            store,
            readers,
            watermarks,
            settings,
            mirror,
            known_cursors: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
        }
    }

    /// Stops this node's readers on a topic about to be deleted.
    pub async fn release_topic(&self, topic: &str) {
        self.readers.release_topic(topic).await;
        // A read that began before the notice may still cache what it
        // read; it ends within the grace, so forget the topic once more
        // then (a topic created again must not be served old messages).
        let recent = self.readers.recent().clone();
        let topic = topic.to_owned();
        let grace = self.release_grace();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            recent.forget_topic(&topic);
        });
    }

    /// How long the other nodes may need to stop reading a topic once told
    /// to: a read in progress ends within the read timeout.
    pub fn release_grace(&self) -> Duration {
        Duration::from_millis(self.settings.read_timeout_ms + 250)
    }

    /// Forgets which cursor rows exist, e.g. after a topic was deleted.
    pub fn forget_cursors(&self) {
        self.known_cursors.invalidate_all();
    }

    /// Forgets everything cached that notices keep fresh: known cursor
    /// rows and the recently read messages.
    pub fn forget_all(&self) {
        self.forget_cursors();
        self.readers.recent().forget_all();
    }

    async fn ensure_cursors(
        &self,
        tenant: &TenantName,
        group: &GroupName,
        topic: &TopicName,
        marks: &TopicMarks,
    ) -> Result<(), ApiError> {
        let key = (tenant.to_string(), group.to_string(), topic.to_string());
        if self.known_cursors.contains_key(&key) {
            return Ok(());
        }
        // A new group starts at the earliest retained offset.
        self.store
            .ensure_cursors(tenant, group, topic, &marks.lows())
            .await?;
        self.known_cursors.insert(key, ()).await;
        Ok(())
    }

    /// One claim-read-commit round.
    async fn attempt(
        &self,
        tenant: &TenantName,
        group: &GroupName,
        topic: &TopicName,
        marks: &TopicMarks,
        limit: usize,
    ) -> Result<Batch, ApiError> {
        self.ensure_cursors(tenant, group, topic, marks).await?;
        let wanted = i64::try_from(limit).unwrap_or(i64::MAX);
        let claim = self
            .store
            .claim(tenant, group, topic, &marks.highs(), wanted)
            .await?;
        if claim.partitions.is_empty() {
            return Ok(Batch::default());
        }
        let claimed_highs: Vec<(i32, i64, i64)> = claim
            .partitions
            .iter()
            .map(|p| (p.partition, p.next_offset, p.high))
            .collect();
        let mut batch = Batch::default();
        let mut advances = Vec::new();
        let mut bytes = 0usize;
        let mut from_cache = 0usize;
        let max_bytes = self.settings.max_response_bytes;
        for claimed in &claim.partitions {
            let remaining = limit - batch.messages.len();
            if remaining == 0 || (bytes >= max_bytes && !batch.messages.is_empty()) {
                break;
            }
            let request = ReadRequest {
                topic: topic.to_string(),
                partition: claimed.partition,
                cursor: claimed.next_offset,
                max_messages: remaining,
                max_bytes: max_bytes.saturating_sub(bytes).max(1),
                timeout: Duration::from_millis(self.settings.read_timeout_ms),
                known_high: claimed.high,
            };
            let outcome = match self.readers.read(request).await {
                Ok(outcome) => outcome,
                Err(err) if batch.messages.is_empty() => return Err(err.into()),
                Err(err) => {
                    tracing::warn!(error = %err, "a partition read failed; answering with what was read");
                    break;
                }
            };
            if let Some(end) = outcome.end {
                self.watermarks
                    .observe(topic.as_str(), claimed.partition, end);
            }
            if outcome.next_cursor != claimed.next_offset {
                advances.push((claimed.partition, outcome.next_cursor));
            }
            bytes += outcome
                .messages
                .iter()
                .map(ConsumedMessage::size)
                .sum::<usize>();
            batch.skipped += outcome.skipped;
            from_cache += outcome.from_cache;
            batch.messages.extend(outcome.messages);
        }
        // The cursors move before a single byte of the answer is written.
        claim.commit(&advances).await?;
        let kafka_group = group.kafka_id(tenant);
        for (partition, next_offset) in &advances {
            self.mirror
                .record(&kafka_group, topic.as_str(), *partition, *next_offset);
        }
        if from_cache > 0 {
            metrics::counter!("sluice_consume_cache_messages_total", "tenant" => tenant.to_string())
                .increment(from_cache as u64);
        }
        // Lag of the claimed partitions as the claim saw them; one series
        // per (tenant, group, topic) active on this node.
        metrics::gauge!(
            "sluice_consumer_lag",
            "tenant" => tenant.to_string(),
            "group" => group.to_string(),
            "topic" => topic.to_string(),
        )
        .set(claim_lag(&claimed_highs, &advances) as f64);
        Ok(batch)
    }
}

/// Messages left behind the claimed partitions' high watermarks once the
/// cursors have moved.
fn claim_lag(claimed: &[(i32, i64, i64)], advances: &[(i32, i64)]) -> i64 {
    claimed
        .iter()
        .map(|(partition, cursor, high)| {
            let moved = advances
                .iter()
                .find(|(p, _)| p == partition)
                .map_or(*cursor, |(_, to)| *to);
            (high - moved).max(0)
        })
        .sum()
}

/// The consume handler. Its arguments are extractors, one per dependency.
#[allow(clippy::too_many_arguments)]
pub async fn consume(
    user: Authenticated,
    path: web::Path<String>,
    query: web::Query<ConsumeQuery>,
    topics: web::Data<TopicAdmin>,
    watermarks: web::Data<Watermarks>,
    consumption: web::Data<Consumption>,
    quotas: web::Data<TenantLimits>,
    shutdown: web::Data<crate::shutdown::Shutdown>,
    admission: web::Data<ConsumeAdmission>,
) -> Result<HttpResponse, ApiError> {
    let topic = user.0.authorize(&path, Access::Read)?;
    let params = query.validate(&consumption.settings, &user.0.username)?;
    let tenant = &user.0.tenant;
    // Held until the answer is built: a long poll counts while it waits.
    let _slot = admission.take_slot(tenant, &user.0.quota)?;
    let partitions = topics.partitions(topic.as_str()).await?;
    let mut marks = watermarks.get(topic.as_str(), partitions).await?;
    admission.admit_group(tenant, &params.group).await?;
    let deadline = Instant::now() + params.wait;
    let batch = loop {
        if marks.retired() {
            // The cache dropped these marks (the topic changed, or notices
            // may have been lost): go on with fresh ones if Kafka gives
            // them, else wait out the poll on the old ones.
            if let Ok(partitions) = topics.partitions(topic.as_str()).await {
                if let Ok(fresh) = watermarks.get(topic.as_str(), partitions).await {
                    marks = fresh;
                }
            }
        }
        // Register for wake-ups before looking, so none is missed.
        let changed = marks.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let batch = consumption
            .attempt(tenant, &params.group, &topic, &marks, params.limit)
            .await?;
        if !batch.messages.is_empty() || Instant::now() >= deadline || shutdown.is_draining() {
            break batch;
        }
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep_until(deadline.into()) => {}
            // A draining node answers its long polls now, with what it has.
            () = shutdown.draining() => {}
        }
    };
    // Consumed bytes are known only now; they are charged all the same.
    let bytes: usize = batch.messages.iter().map(ConsumedMessage::size).sum();
    quotas.charge_after(tenant, user.0.quota, bytes as u64);
    metrics::counter!("sluice_messages_consumed_total", "tenant" => tenant.to_string())
        .increment(batch.messages.len() as u64);
    metrics::counter!("sluice_bytes_consumed_total", "tenant" => tenant.to_string())
        .increment(bytes as u64);
    let mut response = HttpResponse::Ok();
    response.insert_header(("Cache-Control", "no-store"));
    if batch.skipped > 0 {
        response.insert_header((SKIPPED_HEADER, batch.skipped.to_string()));
        metrics_skipped(tenant, batch.skipped);
    }
    let messages: Vec<OutMessage> = batch
        .messages
        .into_iter()
        .map(|m| OutMessage::new(topic.as_str(), m, params.encoding))
        .collect();
    Ok(response.json(messages))
}

/// Reports messages skipped because a cursor fell behind retention.
fn metrics_skipped(tenant: &TenantName, skipped: i64) {
    tracing::warn!(%tenant, skipped, "messages skipped: the cursor had fallen behind retention");
    metrics::counter!("sluice_consume_skipped_messages_total", "tenant" => tenant.to_string())
        .increment(u64::try_from(skipped).unwrap_or(0));
}
