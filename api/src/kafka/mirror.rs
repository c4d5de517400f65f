//! Mirrors committed cursors to Kafka's own group offsets, debounced and
//! batched, so that standard Kafka tooling (kafka-consumer-groups, lag
//! exporters) shows each group's position and lag. Best effort: the
//! cursors in Postgres stay the truth.
//!
//! rust-rdkafka's safe API has no AlterConsumerGroupOffsets, so this
//! module calls librdkafka's through rdkafka-sys: one admin request per
//! group per flush, over one admin client, so the cost does not grow with
//! clients or threads however many groups there are.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::client_config::base_config;
use super::error::KafkaError;
use super::settings::KafkaSettings;

/// (Kafka group id, topic, partition) → next offset.
type Positions = HashMap<(String, String, i32), i64>;

/// The sending side: consume commits report here, cheaply.
#[derive(Debug, Clone)]
pub struct Mirror {
    tx: Option<mpsc::Sender<(String, String, i32, i64)>>,
}

impl Mirror {
    /// A mirror that does nothing (`consume.mirror_interval = 0`).
    pub fn disabled() -> Self {
        Self { tx: None }
    }

    /// Starts the flushing task.
    pub fn spawn(settings: &KafkaSettings, interval: Duration) -> Result<Self, KafkaError> {
        let admin: AdminClient<DefaultClientContext> = base_config(settings)
            .create()
            .map_err(|e| KafkaError::Config(e.to_string()))?;
        let admin = Arc::new(admin);
        let timeout = settings.request_timeout;
        let (tx, mut rx) = mpsc::channel::<(String, String, i32, i64)>(100_000);
        tokio::spawn(async move {
            let mut pending = Positions::new();
            let mut ticker = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    next = rx.recv() => match next {
                        Some((group, topic, partition, offset)) => {
                            let slot = pending.entry((group, topic, partition)).or_insert(offset);
                            *slot = (*slot).max(offset);
                        }
                        None => break,
                    },
                    _ = ticker.tick() => {
                        if pending.is_empty() {
                            continue;
                        }
                        let batch = std::mem::take(&mut pending);
                        let admin = admin.clone();
                        let started = std::time::Instant::now();
                        let groups = tokio::task::spawn_blocking(move || flush(&admin, batch, timeout)).await;
                        tracing::debug!(?groups, elapsed = ?started.elapsed(), "mirrored cursors to Kafka");
                    }
                }
            }
        });
        Ok(Self { tx: Some(tx) })
    }

    /// Queues a group's new position; dropped if the queue is full.
    pub fn record(&self, kafka_group: &str, topic: &str, partition: i32, next_offset: i64) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send((
                kafka_group.to_owned(),
                topic.to_owned(),
                partition,
                next_offset,
            ));
        }
    }
}

/// Sends one AlterConsumerGroupOffsets per group; returns how many groups
/// were mirrored.
fn flush(admin: &AdminClient<DefaultClientContext>, batch: Positions, timeout: Duration) -> usize {
    let mut by_group: HashMap<String, TopicPartitionList> = HashMap::new();
    for ((group, topic, partition), offset) in batch {
        let list = by_group.entry(group).or_default();
        if let Err(err) = list.add_partition_offset(&topic, partition, Offset::Offset(offset)) {
            tracing::warn!(%err, "cannot mirror an offset");
        }
    }
    let mut mirrored = 0;
    for (group, list) in by_group {
        match alter_group_offsets(admin, &group, &list, timeout) {
            Ok(()) => mirrored += 1,
            Err(err) => tracing::warn!(%group, error = %err, "cannot mirror cursors to Kafka"),
        }
    }
    mirrored
}

fn error_text(ptr: *const std::os::raw::c_char) -> String {
    if ptr.is_null() {
        return "unknown error".to_owned();
    }
    // SAFETY: librdkafka returns NUL-terminated strings that live as long
    // as the event or error they came from, which outlive this call.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// librdkafka's AlterConsumerGroupOffsets for one group, waited for.
fn alter_group_offsets(
    admin: &AdminClient<DefaultClientContext>,
    group: &str,
    offsets: &TopicPartitionList,
    timeout: Duration,
) -> Result<(), String> {
    let group_id = CString::new(group).map_err(|e| e.to_string())?;
    let rk = admin.inner().native_ptr();
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: every pointer passed to librdkafka is valid for the call:
    // `rk` belongs to `admin`, which outlives it; `group_id` and `offsets`
    // are borrowed for the whole function (librdkafka copies both in
    // `_new`). Each object created here is destroyed exactly once below,
    // and the event is read only before it is destroyed.
    unsafe {
        let queue = rd::rd_kafka_queue_new(rk);
        let mut request =
            rd::rd_kafka_AlterConsumerGroupOffsets_new(group_id.as_ptr(), offsets.ptr());
        rd::rd_kafka_AlterConsumerGroupOffsets(rk, &mut request, 1, std::ptr::null(), queue);
        rd::rd_kafka_AlterConsumerGroupOffsets_destroy(request);
        let event = rd::rd_kafka_queue_poll(queue, timeout_ms);
        let result = if event.is_null() {
            Err("timed out".to_owned())
        } else if rd::rd_kafka_event_error(event)
            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            Err(error_text(rd::rd_kafka_event_error_string(event)))
        } else {
            let response = rd::rd_kafka_event_AlterConsumerGroupOffsets_result(event);
            let mut count = 0usize;
            let groups = rd::rd_kafka_AlterConsumerGroupOffsets_result_groups(response, &mut count);
            let mut outcome = Ok(());
            for i in 0..count {
                let error = rd::rd_kafka_group_result_error(*groups.add(i));
                if !error.is_null() {
                    outcome = Err(error_text(rd::rd_kafka_error_string(error)));
                }
            }
            outcome
        };
        if !event.is_null() {
            rd::rd_kafka_event_destroy(event);
        }
        rd::rd_kafka_queue_destroy(queue);
        result
    }
}
