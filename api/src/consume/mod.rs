//! `GET /topic/{topic}`: consume with automatic offsets, from any node.
//!
//! Each attempt leases partitions in Postgres (one short statement), reads
//! them at their cursors holding no database connection, then advances the
//! cursors and clears the lease in another short statement, and only then
//! answers. A long poll (`wait`) waits between attempts on the node's
//! watermark notifier, holding no database connection either.

mod admission;
mod query;
mod response;
mod retention;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use moka::future::Cache;
use tenancy::store::{LeaseRequest, LeasedPartition};
use tenancy::{GroupName, Store, TenantName, TopicName};

pub use admission::{ConsumeAdmission, ConsumeSlot};
pub use query::{ConsumeParams, ConsumeQuery};
pub use response::OutMessage;
pub use retention::spawn_group_retention;

use crate::auth::{Access, Authenticated};
use crate::config::ConsumeSettings;
use crate::error::ApiError;
use crate::kafka::{
    ConsumedMessage, Mirror, ReadOutcome, ReadRequest, Readers, TopicAdmin, TopicMarks, Watermarks,
};
use crate::ratelimit::TenantLimits;

/// The header that reports messages skipped because the cursor had fallen
/// behind retention.
pub const SKIPPED_HEADER: &str = "Sluice-Skipped-Messages";

/// The header that flags a cursor moved to the end of a truncated log
/// (nothing skipped that exists, nothing read again).
pub const RESET_HEADER: &str = "Sluice-Cursor-Reset";

/// What one attempt delivered.
#[derive(Debug, Default)]
struct Batch {
    messages: Vec<ConsumedMessage>,
    skipped: i64,
    /// A cursor was beyond the end of the log and moved to the end.
    reset: bool,
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
    /// Turns the tie-break between partitions read equally long ago.
    rotation: AtomicU32,
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
            rotation: AtomicU32::new(0),
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

    /// One lease-read-commit round, within one time budget: the lease is
    /// one short statement, the read holds no database connection, and a
    /// second short statement commits what was read if the lease is still
    /// this GET's.
    async fn attempt(
        &self,
        tenant: &TenantName,
        group: &GroupName,
        topic: &TopicName,
        marks: &TopicMarks,
        limit: usize,
    ) -> Result<Batch, ApiError> {
        let deadline = Instant::now() + self.settings.read_budget();
        self.ensure_cursors(tenant, group, topic, marks).await?;
        let highs = marks.highs();
        let lease = self
            .store
            .lease(LeaseRequest {
                tenant,
                group,
                topic,
                highs: &highs,
                wanted: i64::try_from(limit).unwrap_or(i64::MAX),
                duration: self.settings.lease(),
                rotation: self.rotation.fetch_add(1, Ordering::Relaxed),
            })
            .await?;
        if lease.partitions.is_empty() {
            return Ok(Batch::default());
        }
        let taken_over = lease.taken_over();
        if taken_over > 0 {
            // A node died mid-read (or overran its lease): its partitions
            // are read again from the same cursors.
            tracing::info!(%tenant, %group, %topic, partitions = taken_over, "took over expired leases");
            metrics::counter!("sluice_consume_leases_expired_total", "tenant" => tenant.to_string())
                .increment(taken_over as u64);
        }
        let leased = lease.partitions.clone();
        let mut reads: Vec<(i32, ReadOutcome)> = Vec::new();
        let mut delivered = 0usize;
        let mut bytes = 0usize;
        let max_bytes = self.settings.max_response_bytes;
        for partition in &leased {
            let remaining = limit - delivered;
            if remaining == 0 || (bytes >= max_bytes && delivered > 0) || Instant::now() >= deadline
            {
                break;
            }
            let outcome = match self
                .read_partition(
                    topic,
                    partition,
                    remaining,
                    max_bytes.saturating_sub(bytes),
                    deadline,
                )
                .await
            {
                Ok(outcome) => outcome,
                Err(err) if delivered == 0 => {
                    if let Err(release) = lease.release().await {
                        tracing::debug!(error = %release, "cannot release a lease; it will expire");
                    }
                    return Err(err.into());
                }
                Err(err) => {
                    tracing::warn!(error = %err, "a partition read failed; answering with what was read");
                    break;
                }
            };
            delivered += outcome.messages.len();
            bytes += outcome
                .messages
                .iter()
                .map(ConsumedMessage::size)
                .sum::<usize>();
            reads.push((partition.partition, outcome));
        }
        let advances: Vec<(i32, i64)> = reads
            .iter()
            .zip(&leased)
            .filter(|((_, outcome), leased)| outcome.next_cursor != leased.next_offset)
            .map(|((partition, outcome), _)| (*partition, outcome.next_cursor))
            .collect();
        let read: Vec<i32> = reads.iter().map(|(partition, _)| *partition).collect();
        // The cursors move before a single byte of the answer is written.
        let settled = lease.commit(&advances, &read).await?;
        let mut batch = Batch::default();
        let mut from_cache = 0usize;
        for ((partition, outcome), leased) in reads.into_iter().zip(&leased) {
            if !settled.kept.contains(&partition) {
                // The lease expired and another GET took the partition
                // over: it delivers these messages, this one must not.
                tracing::warn!(%tenant, %group, %topic, partition, "lost a lease before committing; dropping what was read");
                metrics::counter!("sluice_consume_leases_lost_total", "tenant" => tenant.to_string())
                    .increment(1);
                continue;
            }
            if let Some(end) = outcome.end {
                self.watermarks.observe(topic.as_str(), partition, end);
            }
            if outcome.truncated {
                self.watermarks
                    .truncated(topic.as_str(), partition, outcome.next_cursor);
                report_truncation(
                    tenant,
                    group,
                    topic,
                    partition,
                    leased.next_offset,
                    outcome.next_cursor,
                );
                batch.reset = true;
            }
            batch.skipped += outcome.skipped;
            from_cache += outcome.from_cache;
            batch.messages.extend(outcome.messages);
        }
        let kafka_group = group.kafka_id(tenant);
        for (partition, next_offset) in &advances {
            if settled.kept.contains(partition) {
                self.mirror
                    .record(&kafka_group, topic.as_str(), *partition, *next_offset);
            }
        }
        if from_cache > 0 {
            metrics::counter!("sluice_consume_cache_messages_total", "tenant" => tenant.to_string())
                .increment(from_cache as u64);
        }
        // Lag of the leased partitions as the lease saw them; one series
        // per (tenant, group, topic) active on this node.
        metrics::gauge!(
            "sluice_consumer_lag",
            "tenant" => tenant.to_string(),
            "group" => group.to_string(),
            "topic" => topic.to_string(),
        )
        .set(lease_lag(&leased, &advances) as f64);
        Ok(batch)
    }
}

impl Consumption {
    /// Reads one leased partition at its cursor. A cursor beyond the
    /// watermark this node knows is checked against Kafka first: if the
    /// log really ends before it (truncated, or the topic created again
    /// outside sluice), it moves to the end without a read, since some
    /// brokers (tansu) answer a fetch past the end with nothing at all
    /// rather than an out-of-range error.
    async fn read_partition(
        &self,
        topic: &TopicName,
        leased: &LeasedPartition,
        max_messages: usize,
        max_bytes: usize,
        deadline: Instant,
    ) -> Result<ReadOutcome, crate::kafka::KafkaError> {
        let mut known_high = leased.end_offset;
        if leased.next_offset > known_high {
            let (_, high) = self
                .watermarks
                .fetch_partition(topic.as_str(), leased.partition)
                .await?;
            if high <= leased.next_offset {
                return Ok(ReadOutcome {
                    next_cursor: high,
                    end: Some(high),
                    truncated: high < leased.next_offset,
                    ..ReadOutcome::default()
                });
            }
            known_high = high;
        }
        let request = ReadRequest {
            topic: topic.to_string(),
            partition: leased.partition,
            cursor: leased.next_offset,
            max_messages,
            max_bytes: max_bytes.max(1),
            deadline,
            known_high,
        };
        self.readers.read(request).await
    }
}

/// Messages left behind the leased partitions' high watermarks once the
/// cursors have moved.
fn lease_lag(leased: &[LeasedPartition], advances: &[(i32, i64)]) -> i64 {
    leased
        .iter()
        .map(|leased| {
            let moved = advances
                .iter()
                .find(|(p, _)| *p == leased.partition)
                .map_or(leased.next_offset, |(_, to)| *to);
            (leased.end_offset - moved).max(0)
        })
        .sum()
}

/// A cursor found beyond the end of the log (truncated, or the topic was
/// created again outside sluice) moved to the end: logged and counted per
/// tenant, and flagged on the response.
fn report_truncation(
    tenant: &TenantName,
    group: &GroupName,
    topic: &TopicName,
    partition: i32,
    from: i64,
    to: i64,
) {
    tracing::warn!(%tenant, %group, %topic, partition, from, to, "the cursor was beyond the end of the log (truncated); moved to the end");
    metrics::counter!(
        "sluice_consume_cursor_resets_total",
        "tenant" => tenant.to_string(),
        "reason" => "truncated",
    )
    .increment(1);
}

/// The consume handler. Its arguments are extractors, one per dependency.
#[allow(clippy::too_many_arguments)]
#[utoipa::path(get, path = "/topic/{topic}", impl_for = consume,
    summary = "Consume: up to `limit` messages, each delivered once per group",
    description = "Reads the topic for a consumer group of the caller's tenant (the user's own unless `group` is given), waiting up to `wait` ms for a first message.", tag = "data plane", security(("basic" = [])),
    params(
        ("topic" = crate::openapi::names::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant"),
        ("limit" = Option<u64>, Query, description = "Messages at most: 1 up to `consume.max_limit` (default 1000); 1 unless given"),
        ("group" = Option<crate::openapi::names::GroupName>, Query, description = "A group of the tenant; the user's own unless given"),
        ("wait" = Option<u64>, Query, description = "Long poll, in ms: 0 (the default) up to `consume.max_wait_ms` (default 30000)"),
        ("encoding" = Option<crate::produce::Encoding>, Query, description = "`base64`: keys, values and header values are base64"),
    ),
    responses(
        (status = 200, description = "Up to `limit` messages; each delivered once per group", body = Vec<OutMessage>,
            headers(
                ("Sluice-Skipped-Messages" = i64, description = "messages skipped because the group's position had fallen behind retention (0 with Sluice-Cursor-Reset)"),
                ("Sluice-Cursor-Reset" = String, description = "`truncated`: the group's position lay beyond the end of the log and moved to the end"),
            )),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`group_limit_reached`: a new group past the tenant's max_groups", body = crate::error::ErrorBody),
        (status = 413, description = "A declared body over `produce.max_body_bytes`", body = crate::error::ErrorBody),
        (status = 429, description = "`rate_limited`, or `too_many_consumes` past the tenant's concurrent consumes on this node; with Retry-After", body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody),
    ))]
#[actix_web::get(
    "/topic/{topic}",
    wrap = "actix_web::middleware::from_fn(crate::produce::limit_declared_body)"
)]
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
    } else if batch.reset {
        response.insert_header((SKIPPED_HEADER, "0"));
    }
    if batch.reset {
        response.insert_header((RESET_HEADER, "truncated"));
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
