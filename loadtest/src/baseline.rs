//! Native Kafka clients against the same broker and topic as sluice, with
//! the same acks, linger and message bytes: the yardstick every sluice
//! figure is divided by.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::FutureExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::engine::{Op, Outcome, Status};

/// The producer settings sluice itself uses (acks=all, idempotence,
/// linger 5 ms), then the operator's extra properties.
pub fn producer_config(bootstrap: &str, extra: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "9000");
    for (k, v) in extra {
        config.set(k, v);
    }
    config
}

/// Human-readable producer settings, printed with every native figure.
pub fn describe(extra: &[(String, String)]) -> String {
    let mut s = "acks=all, enable.idempotence=true, linger.ms=5".to_owned();
    for (k, v) in extra {
        s.push_str(&format!(", {k}={v}"));
    }
    s
}

/// A native producer, connected and warmed up by one acknowledged message
/// to `topic`: its first connection and producer-id handshake must not be
/// charged to the measured run.
pub async fn producer(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
) -> Result<FutureProducer> {
    connected(producer_config(bootstrap, extra), topic).await
}

/// A producer that fills topics for the read scenarios: the baseline's
/// settings with a two-minute delivery timeout, because a pre-fill is not
/// measured and a broker still busy with the produce sweep may take long.
pub async fn prefill_producer(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
) -> Result<FutureProducer> {
    let mut config = producer_config(bootstrap, extra);
    config.set("message.timeout.ms", "120000");
    connected(config, topic).await
}

async fn connected(config: ClientConfig, topic: &str) -> Result<FutureProducer> {
    let producer: FutureProducer = config.create().context("creating the native producer")?;
    send(&producer, topic, b"warm-up")
        .await
        .context("warming up the native producer")?;
    Ok(producer)
}

/// Sends one message, waiting while librdkafka's queue is full.
async fn send(producer: &FutureProducer, topic: &str, payload: &[u8]) -> Result<(), KafkaError> {
    loop {
        match producer.send_result::<(), [u8]>(FutureRecord::to(topic).payload(payload)) {
            Ok(delivery) => {
                return match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e),
                    Err(_) => Err(KafkaError::Canceled),
                }
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// One operation = a batch of `batch` messages of `payload`, awaited
/// together, as sluice does for one request.
pub fn produce_op(
    producer: FutureProducer,
    topic: String,
    payload: Arc<Vec<u8>>,
    batch: usize,
) -> Op {
    Arc::new(move |_, _| {
        let producer = producer.clone();
        let topic = topic.clone();
        let payload = payload.clone();
        async move {
            let sends = (0..batch).map(|_| send(&producer, &topic, &payload));
            let results = futures::future::join_all(sends).await;
            if results.iter().all(Result::is_ok) {
                Outcome::ok(batch as u64, (batch * payload.len()) as u64)
            } else {
                Outcome::failed(Status::Error("kafka_delivery"))
            }
        }
        .boxed()
    })
}

/// Fills `topic` with `count` messages of `payload`, for the consume
/// scenarios.
pub async fn prefill(
    producer: &FutureProducer,
    topic: &str,
    payload: &[u8],
    count: usize,
) -> Result<()> {
    let chunk = 20_000;
    let mut sent = 0;
    while sent < count {
        let n = chunk.min(count - sent);
        let results =
            futures::future::join_all((0..n).map(|_| send(producer, topic, payload))).await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            return Err(e).context("pre-filling the topic");
        }
        sent += n;
    }
    Ok(())
}

/// A native consumer assigned to every partition of `topic` from the
/// beginning: no group membership, like sluice's readers.
pub async fn consumer(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
    partitions: u32,
) -> Result<StreamConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}.native-baseline"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for (k, v) in extra {
        // Producer-only properties would only produce warnings here.
        if k != "batch.num.messages" {
            config.set(k, v);
        }
    }
    let consumer: StreamConsumer = config.create().context("creating the native consumer")?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, i32::try_from(p)?, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    // The first message pays for connecting and the first fetch; sluice's
    // readers are warm by then too, so it is not measured.
    tokio::time::timeout(Duration::from_secs(20), consumer.recv())
        .await
        .context("the native consumer received nothing in 20 s")?
        .context("native consumer")?;
    Ok(consumer)
}

/// One operation = receive `limit` messages, as one sluice GET with that
/// limit returns them. Run it with concurrency 1.
pub fn consume_op(consumer: Arc<tokio::sync::Mutex<StreamConsumer>>, limit: usize) -> Op {
    Arc::new(move |_, _| {
        let consumer = consumer.clone();
        async move {
            let consumer = consumer.lock().await;
            let mut messages = 0u64;
            let mut bytes = 0u64;
            for _ in 0..limit {
                match tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
                    Ok(Ok(m)) => {
                        messages += 1;
                        bytes += m.payload_len() as u64;
                    }
                    Ok(Err(_)) => return Outcome::failed(Status::Error("kafka_fetch")),
                    Err(_) => return Outcome::failed(Status::Error("exhausted")),
                }
            }
            Outcome::ok(messages, bytes)
        }
        .boxed()
    })
}
