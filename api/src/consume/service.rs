//! The consume orchestration: cursors leased in Postgres, Kafka read with
//! no database connection held, long polls on the node's watermarks, and
//! the per-tenant caps. The handler only parses and renders.
//!
//! Each attempt leases partitions in Postgres (one short statement), reads
//! them at their cursors holding no database connection, then advances the
//! cursors and clears the lease in another short statement, and only then
//! answers. A long poll (`wait`) waits between attempts on the node's
//! watermark notifier, holding no database connection either.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use tenancy::store::{DeadLetters, HeldRange, LeaseRequest, LeasedPartition, Receipt};
use tenancy::{GroupName, Store, TenantName, TopicName};

use super::admission::ConsumeAdmission;
use super::dead_letters;
use super::filters::{self, GroupFilters, Skipped};
use super::query::{AckMode, ConsumeParams};
use super::wakeups::{Waiter, Wakeups};
use crate::auth::Principal;
use crate::config::ConsumeSettings;
use crate::error::ApiError;
use crate::kafka::{
    ConsumedMessage, Mirror, Producer, ReadOutcome, ReadRequest, Readers, TopicAdmin, TopicMarks,
    Watermarks,
};
use crate::ratelimit::TenantLimits;
use crate::shutdown::Shutdown;

/// Attempts in a row that a poll without `wait` makes while everything it
/// reads is filtered out: a bound on the work one GET does for a filter
/// that matches nothing.
const MAX_FILTER_PASSES: u32 = 16;

/// What one GET delivered.
#[derive(Debug, Default)]
pub struct Delivery {
    pub messages: Vec<ConsumedMessage>,
    /// Messages skipped because a cursor had fallen behind retention.
    pub skipped: i64,
    /// A cursor was beyond the end of the log and moved to the end.
    pub reset: bool,
    /// Manual mode: the receipt the messages are leased under (none when
    /// nothing was delivered).
    pub receipt: Option<Receipt>,
    /// Manual mode: how many times each partition's range has been
    /// delivered, this time included.
    pub deliveries: Vec<(i32, i32)>,
    /// Ranges sent to the dead-letter topic by this attempt: more may be
    /// deliverable behind them at once.
    pub dead_lettered: usize,
    /// Messages read and skipped because they did not match the group's
    /// filter on the topic: the cursor moved past them.
    pub filtered: Skipped,
}

/// One batch's poll: what to read, and what may cut its wait short.
#[derive(Debug)]
pub struct Poll<'a, S> {
    /// Manual mode: the caller's registration for the group's settles,
    /// kept across batches so that a settle between two polls is not
    /// lost (a stream's). A poll without one registers for itself.
    pub settles: Option<&'a mut Waiter>,
    pub params: &'a ConsumeParams,
    /// Ends the wait between attempts (with nothing delivered): a stream's
    /// client went away, or its user must be checked again.
    pub stop: S,
    /// Look again at least this often while waiting, for settles on other
    /// nodes that no notifier reports.
    pub recheck: Option<Duration>,
}

/// What a [`Service`] is built from: the node's shared pieces it drives.
pub struct Parts {
    pub store: Store,
    pub readers: Readers,
    pub watermarks: Arc<Watermarks>,
    pub settings: ConsumeSettings,
    pub mirror: Mirror,
    pub topics: Arc<TopicAdmin>,
    pub quotas: Arc<TenantLimits>,
    pub admission: Arc<ConsumeAdmission>,
    pub shutdown: Shutdown,
    /// Sends ranges delivered too often to their group's dead-letter topic.
    pub producer: Arc<Producer>,
}

/// The consume machinery of a node: cursors, leases, readers, watermarks
/// and the per-tenant admission, behind [`Service::consume`].
pub struct Service {
    pub(super) parts: Parts,
    /// (tenant, group, topic) whose cursor rows exist, to skip the insert.
    known_cursors: Cache<(String, String, String), ()>,
    /// Turns the tie-break between partitions read equally long ago.
    rotation: AtomicU32,
    /// Wakes manual-mode consumers of a group when a settle on this node
    /// frees its partitions.
    pub(super) wakeups: Arc<Wakeups>,
    /// The groups' filters, as this node last looked them up.
    filters: GroupFilters,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("consume::Service").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("consume::Parts").finish_non_exhaustive()
    }
}

impl Service {
    pub fn new(parts: Parts) -> Self {
        Self {
            filters: GroupFilters::new(parts.store.clone()),
            parts,
            known_cursors: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
            rotation: AtomicU32::new(0),
            wakeups: Arc::default(),
        }
    }

    /// Stops this node's readers on a topic about to be deleted.
    pub async fn release_topic(&self, topic: &str) {
        self.parts.readers.release_topic(topic).await;
        // A read that began before the notice may still cache what it
        // read; it ends within the grace, so forget the topic once more
        // then (a topic created again must not be served old messages).
        let recent = self.parts.readers.recent().clone();
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
        self.parts.settings.read_timeout + Duration::from_millis(250)
    }

    /// Forgets which cursor rows exist, e.g. after a topic was deleted.
    pub fn forget_cursors(&self) {
        self.known_cursors.invalidate_all();
    }

    /// Forgets the groups' filters: one changed (a `group.filter` notice).
    pub fn forget_filters(&self) {
        self.filters.forget();
    }

    /// Forgets everything cached that notices keep fresh: known cursor
    /// rows, the groups' filters and the recently read messages.
    pub fn forget_all(&self) {
        self.forget_cursors();
        self.forget_filters();
        self.parts.readers.recent().forget_all();
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
        self.parts
            .store
            .ensure_cursors(tenant, group, topic, &marks.lows())
            .await?;
        self.known_cursors.insert(key, ()).await;
        Ok(())
    }

    /// One lease-read-commit round, within one time budget: the lease is
    /// one short statement, the read holds no database connection, and a
    /// second short statement commits what was read (auto mode) or keeps it
    /// leased under a receipt (manual mode), if the lease is still this
    /// GET's.
    async fn attempt(
        &self,
        principal: &Principal,
        group: &GroupName,
        topic: &TopicName,
        marks: &TopicMarks,
        params: &ConsumeParams,
    ) -> Result<Delivery, ApiError> {
        let tenant = &principal.tenant;
        let deadline = Instant::now() + self.parts.settings.read_budget();
        self.ensure_cursors(tenant, group, topic, marks).await?;
        let highs = marks.highs();
        let lease = self
            .parts
            .store
            .lease(LeaseRequest {
                tenant,
                group,
                topic,
                highs: &highs,
                wanted: i64::try_from(params.limit).unwrap_or(i64::MAX),
                duration: self.parts.settings.lease(),
                rotation: self.rotation.fetch_add(1, Ordering::Relaxed),
            })
            .await?;
        if lease.partitions.is_empty() {
            return Ok(Delivery::default());
        }
        let taken_over = lease.taken_over();
        if taken_over > 0 && params.ack == AckMode::Auto {
            // A node died mid-read (or overran its lease): its partitions
            // are read again from the same cursors.
            tracing::info!(%tenant, %group, %topic, partitions = taken_over, "took over expired leases");
            metrics::counter!("sluice_consume_leases_expired_total", "tenant" => tenant.to_string())
                .increment(taken_over as u64);
        }
        let leased = lease.partitions.clone();
        let dead_letters = self
            .dead_letters_for(tenant, group, &leased, params.ack)
            .await?;
        let filter = self.filters.of(tenant, group, topic).await?;
        let mut reads: Vec<(&LeasedPartition, ReadOutcome)> = Vec::new();
        let mut filtered = Skipped::default();
        let mut delivered = 0usize;
        let mut bytes = 0usize;
        let mut dead_lettered = 0usize;
        let max_bytes = self.parts.settings.max_response_bytes;
        for partition in &leased {
            let remaining = params.limit - delivered;
            if remaining == 0 || (bytes >= max_bytes && delivered > 0) || Instant::now() >= deadline
            {
                break;
            }
            let scan = if filter.is_some() {
                remaining.max(filters::SCAN_AT_LEAST)
            } else {
                remaining
            };
            let read = self
                .read_leased(
                    tenant,
                    topic,
                    partition,
                    Budget {
                        messages: scan,
                        bytes: max_bytes.saturating_sub(bytes),
                        deadline,
                    },
                    params.ack,
                )
                .await;
            let mut outcome = match read {
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
            if let Some(filter) = &filter {
                // Before dead-lettering: only what the group would have
                // been given can have failed it.
                filtered.add(filters::skip_unmatched(filter, &mut outcome, remaining));
            }
            if let Some(policy) = dead_letters
                .as_ref()
                .filter(|d| partition.deliveries > d.max_deliveries)
            {
                let sent = dead_letters::send(
                    &self.parts.producer,
                    principal,
                    &self.parts.quotas,
                    topic,
                    partition,
                    &outcome,
                    policy,
                )
                .await;
                if !sent {
                    // Left leased: released below, and tried again later.
                    continue;
                }
                outcome.messages.clear();
                dead_lettered += 1;
            }
            delivered += outcome.messages.len();
            bytes += outcome
                .messages
                .iter()
                .map(ConsumedMessage::size)
                .sum::<usize>();
            reads.push((partition, outcome));
        }
        let advances = advances(&reads, params.ack);
        let read: Vec<i32> = reads.iter().map(|(leased, _)| leased.partition).collect();
        let holder = lease.holder();
        // The cursors move (or the ranges are held under the receipt)
        // before a single byte of the answer is written.
        let settled = match params.ack {
            AckMode::Auto => lease.commit(&advances, &read).await?,
            AckMode::Manual { visibility } => {
                let ranges = held_ranges(&reads);
                lease.hold(visibility, &ranges, &advances, &read).await?
            }
        };
        let mut batch = Delivery {
            dead_lettered,
            filtered,
            ..Delivery::default()
        };
        let mut from_cache = 0usize;
        for (leased, outcome) in reads {
            let partition = leased.partition;
            if !settled.kept.contains(&partition) {
                // The lease expired and another GET took the partition
                // over: it delivers these messages, this one must not.
                tracing::warn!(%tenant, %group, %topic, partition, "lost a lease before committing; dropping what was read");
                metrics::counter!("sluice_consume_leases_lost_total", "tenant" => tenant.to_string())
                    .increment(1);
                continue;
            }
            if let Some(end) = outcome.end {
                self.parts
                    .watermarks
                    .observe(topic.as_str(), partition, end);
            }
            if outcome.truncated {
                self.parts
                    .watermarks
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
            if !outcome.messages.is_empty() {
                batch.deliveries.push((partition, leased.deliveries));
            }
            batch.messages.extend(outcome.messages);
        }
        if matches!(params.ack, AckMode::Manual { .. }) && !batch.messages.is_empty() {
            batch.receipt = Some(Receipt::from_holder(holder));
        }
        let kafka_group = group.kafka_id(tenant);
        for (partition, next_offset) in &advances {
            if settled.kept.contains(partition) {
                self.parts
                    .mirror
                    .record(&kafka_group, topic.as_str(), *partition, *next_offset);
            }
        }
        if from_cache > 0 {
            metrics::counter!("sluice_consume_cache_messages_total", "tenant" => tenant.to_string())
                .increment(from_cache as u64);
        }
        Ok(batch)
    }

    /// The group's dead-letter policy, looked up only when it can matter:
    /// in manual mode, for a range delivered before.
    async fn dead_letters_for(
        &self,
        tenant: &TenantName,
        group: &GroupName,
        leased: &[LeasedPartition],
        ack: AckMode,
    ) -> Result<Option<DeadLetters>, ApiError> {
        if ack == AckMode::Auto || leased.iter().all(|p| p.deliveries <= 1) {
            return Ok(None);
        }
        Ok(self.parts.store.dead_letters(tenant, group).await?)
    }

    /// Reads one leased partition and keeps what may be delivered: never
    /// an offset a partial ack settled, and in manual mode nothing past the
    /// range being delivered again, so that `Deliveries` counts one range.
    async fn read_leased(
        &self,
        tenant: &TenantName,
        topic: &TopicName,
        leased: &LeasedPartition,
        mut budget: Budget,
        ack: AckMode,
    ) -> Result<ReadOutcome, crate::kafka::KafkaError> {
        let redelivery = ack != AckMode::Auto && leased.deliveries > 1;
        if redelivery {
            budget.messages = budget.messages.min(
                usize::try_from(leased.expected())
                    .unwrap_or(usize::MAX)
                    .max(1),
            );
        }
        let mut outcome = self.read_partition(tenant, topic, leased, budget).await?;
        if redelivery {
            if let Some(cut) = outcome
                .messages
                .iter()
                .position(|m| m.offset >= leased.end_offset)
            {
                outcome.messages.truncate(cut);
                outcome.next_cursor = outcome.next_cursor.min(leased.end_offset);
            }
        }
        if !leased.acked.is_empty() {
            outcome.first_read = outcome.messages.first().map(|m| m.offset);
            outcome
                .messages
                .retain(|m| leased.acked.binary_search(&m.offset).is_err());
        }
        Ok(outcome)
    }
}

/// What one partition's read may take: messages, bytes and time.
#[derive(Debug, Clone, Copy)]
struct Budget {
    messages: usize,
    bytes: usize,
    deadline: Instant,
}

/// Where each read partition's cursor goes. In manual mode a partition
/// that delivered messages keeps its cursor (its range is held under the
/// receipt instead); one that delivered nothing moves past what it read.
fn advances(reads: &[(&LeasedPartition, ReadOutcome)], ack: AckMode) -> Vec<(i32, i64)> {
    reads
        .iter()
        .filter(|(_, outcome)| ack == AckMode::Auto || outcome.messages.is_empty())
        .filter(|(leased, outcome)| outcome.next_cursor != leased.next_offset)
        .map(|(leased, outcome)| (leased.partition, outcome.next_cursor))
        .collect()
}

/// The ranges a manual-mode GET delivered: from the cursor (or, past
/// messages lost to retention, the first offset read) to after the last
/// offset read.
fn held_ranges(reads: &[(&LeasedPartition, ReadOutcome)]) -> Vec<HeldRange> {
    reads
        .iter()
        .filter(|(_, outcome)| !outcome.messages.is_empty())
        .map(|(leased, outcome)| {
            let first_read = outcome
                .first_read
                .or_else(|| outcome.messages.first().map(|m| m.offset))
                .unwrap_or(leased.next_offset);
            HeldRange {
                partition: leased.partition,
                first: if outcome.skipped > 0 {
                    first_read
                } else {
                    leased.next_offset
                },
                end: outcome.next_cursor,
            }
        })
        .collect()
}

impl Service {
    /// Reads one leased partition at its cursor. A cursor beyond the
    /// watermark this node knows is checked against Kafka first: if the
    /// log really ends before it (truncated, or the topic created again
    /// outside sluice), it moves to the end without a read, since some
    /// brokers (tansu) answer a fetch past the end with nothing at all
    /// rather than an out-of-range error.
    async fn read_partition(
        &self,
        tenant: &TenantName,
        topic: &TopicName,
        leased: &LeasedPartition,
        budget: Budget,
    ) -> Result<ReadOutcome, crate::kafka::KafkaError> {
        let mut known_high = leased.end_offset;
        if leased.next_offset > known_high {
            let (_, high) = self
                .parts
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
            max_messages: budget.messages,
            max_bytes: budget.bytes.max(1),
            deadline: budget.deadline,
            known_high,
        };
        self.parts.readers.read(tenant.as_str(), request).await
    }
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

impl Service {
    /// The limits a query is validated against.
    pub fn settings(&self) -> &ConsumeSettings {
        &self.parts.settings
    }

    /// Serves one GET for `principal` (already authorized to read
    /// `topic`): admission, then lease-read-commit attempts until messages
    /// come, the long poll ends or the node drains. The cursors have moved
    /// before this returns, and the bytes are charged to the tenant.
    pub async fn consume(
        &self,
        principal: &Principal,
        topic: &TopicName,
        params: &ConsumeParams,
    ) -> Result<Delivery, ApiError> {
        // Held until the answer is built: a long poll counts while it waits.
        let _slot = self
            .parts
            .admission
            .take_slot(&principal.tenant, &principal.quota)?;
        let poll = Poll {
            params,
            stop: std::future::pending(),
            recheck: None,
            settles: None,
        };
        self.poll(principal, topic, poll).await
    }

    /// Lease-read-commit attempts for `principal` (already authorized and
    /// admitted) until messages come, `params.wait` ends, the node drains
    /// or `poll.stop` resolves. Only the waits between attempts are cut
    /// short: an attempt, once begun, always settles what it read. Streams
    /// call this once per batch, holding their stream slot instead of a
    /// consume slot.
    pub async fn poll(
        &self,
        principal: &Principal,
        topic: &TopicName,
        poll: Poll<'_, impl Future<Output = ()>>,
    ) -> Result<Delivery, ApiError> {
        let Poll {
            params,
            stop,
            recheck,
            settles,
        } = poll;
        tokio::pin!(stop);
        let tenant = &principal.tenant;
        let mut marks = self.marks_of(topic).await?;
        self.parts
            .admission
            .admit_group(tenant, &params.group)
            .await?;
        // In manual mode a group's partitions may all be leased: a settle
        // on this node wakes the wait at once.
        let mut own = None;
        let mut settles = match settles {
            Some(waiter) => Some(waiter),
            None if matches!(params.ack, AckMode::Manual { .. }) => {
                Some(own.insert(self.wait_on(tenant, &params.group, topic)))
            }
            None => None,
        };
        let deadline = Instant::now() + params.wait;
        let mut retries = 0;
        let mut filter_passes = 0;
        let mut filtered = Skipped::default();
        let mut batch = loop {
            if marks.retired() {
                // The cache dropped these marks (the topic changed, or
                // notices may have been lost): go on with fresh ones if
                // Kafka gives them, else wait out the poll on the old ones.
                if let Ok(fresh) = self.marks_of(topic).await {
                    marks = fresh;
                }
            }
            // Register for wake-ups before looking, so none is missed.
            let changed = marks.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let batch = self
                .attempt(principal, &params.group, topic, &marks, params)
                .await?;
            filtered.add(batch.filtered);
            // What a filter skipped cost the node a read like any other:
            // charged now, pass by pass, so that the byte quota bounds a
            // scan as it goes rather than after the whole GET.
            if batch.filtered.bytes > 0 {
                self.parts
                    .quotas
                    .charge_after(tenant, principal.quota, batch.filtered.bytes);
            }
            if batch.dead_lettered > 0 && batch.messages.is_empty() && retries < 3 {
                // The partition moved past its dead letters: look again.
                retries += 1;
                continue;
            }
            if batch.filtered.messages > 0
                && batch.messages.is_empty()
                && (filter_passes < MAX_FILTER_PASSES || Instant::now() < deadline)
                && !self.parts.shutdown.is_draining()
                && self.parts.quotas.pay_owed(tenant, principal.quota).is_ok()
            {
                // Everything read was filtered out, and more may wait
                // behind it that no watermark change would announce. The
                // long poll goes on reading while the tenant's byte quota
                // pays for each pass; a GET without one stops after
                // MAX_FILTER_PASSES. A scan the quota no longer pays for
                // ends with what it has (nothing, and the count of what it
                // skipped); the tenant's next request waits out the debt.
                filter_passes += 1;
                continue;
            }
            if !batch.messages.is_empty()
                || Instant::now() >= deadline
                || self.parts.shutdown.is_draining()
            {
                break batch;
            }
            let next = recheck.map_or(deadline, |every| deadline.min(Instant::now() + every));
            let settled = async {
                match settles.as_deref_mut() {
                    Some(waiter) => waiter.settled().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut changed => {}
                () = settled => {}
                () = tokio::time::sleep_until(next.into()) => {}
                // A draining node answers its long polls now, with what it has.
                () = self.parts.shutdown.draining() => {}
                () = &mut stop => break Delivery::default(),
            }
        };
        batch.filtered = filtered;
        self.account(principal, &batch);
        Ok(batch)
    }

    /// Registers for the settles of `group` on this node, for a consumer
    /// that polls many times (a stream).
    pub fn wait_on(&self, tenant: &TenantName, group: &GroupName, topic: &TopicName) -> Waiter {
        self.wakeups.wait_on(tenant, group, topic)
    }

    /// Checks that the topic exists (404 `topic_not_found` if not), as a
    /// stream must before it answers 200.
    pub async fn check_topic(&self, topic: &TopicName) -> Result<(), ApiError> {
        self.marks_of(topic).await.map(|_| ())
    }

    /// The topic's watermarks, as the node's cache has them (fetched
    /// from Kafka when it has none, or after it dropped them).
    async fn marks_of(&self, topic: &TopicName) -> Result<Arc<TopicMarks>, ApiError> {
        let partitions = self.parts.topics.partitions(topic.as_str()).await?;
        Ok(self
            .parts
            .watermarks
            .get(topic.as_str(), partitions)
            .await?)
    }

    /// Charges the bytes delivered (known only now; what a filter skipped
    /// was charged pass by pass in [`Service::poll`]) and counts them.
    fn account(&self, principal: &Principal, batch: &Delivery) {
        let tenant = &principal.tenant;
        let bytes: usize = batch.messages.iter().map(ConsumedMessage::size).sum();
        self.parts
            .quotas
            .charge_after(tenant, principal.quota, bytes as u64);
        metrics::counter!("sluice_messages_consumed_total", "tenant" => tenant.to_string())
            .increment(batch.messages.len() as u64);
        metrics::counter!("sluice_bytes_consumed_total", "tenant" => tenant.to_string())
            .increment(bytes as u64);
        if batch.skipped > 0 {
            report_skipped(tenant, batch.skipped);
        }
        if batch.filtered.messages > 0 {
            metrics::counter!("sluice_consume_filtered_messages_total", "tenant" => tenant.to_string())
                .increment(batch.filtered.messages);
        }
    }
}

/// Reports messages skipped because a cursor fell behind retention.
fn report_skipped(tenant: &TenantName, skipped: i64) {
    tracing::warn!(%tenant, skipped, "messages skipped: the cursor had fallen behind retention");
    metrics::counter!("sluice_consume_skipped_messages_total", "tenant" => tenant.to_string())
        .increment(u64::try_from(skipped).unwrap_or(0));
}
