//! The peer in the same run: Karapace's REST proxy (Aiven's open-source
//! clone of Confluent's REST Proxy) against the same broker and topic,
//! next to a sluice node of the same cluster that serves plain HTTP, since
//! Karapace has no TLS listener: both sides pay the same transport. The
//! broker is the discarding one (tansu `null://`): tansu's memory storage
//! caps both proxies near the same figure, which says nothing about
//! either.

use std::sync::Arc;

use anyhow::Result;
use base64::Engine as _;
use bytes::Bytes;
use futures::FutureExt;

use super::{requests, size_label, Ctx, Target};
use crate::cli::HttpVersion;
use crate::client::Pool;
use crate::client::Quota;
use crate::engine::{Op, Outcome, Status};
use crate::report::Spec;

/// sluice's batch-1 run at a fleet's concurrency, compared with Karapace's.
pub const PRODUCE_1: &str = "peer sluice produce 100B x1 c=256";
/// sluice's 100 × 100 B run, compared with Karapace's.
pub const PRODUCE_100: &str = "peer sluice produce 100B x100 c=16";

/// (batch, requests in flight) of the runs: the report's usual 16, and
/// batch 1 at the 256 connections of the sweep.
const RUNS: [(usize, usize); 3] = [(1, 16), (1, 256), (100, 16)];

/// The v2 produce body: `{"records":[{"value":"<base64>"},…]}`, binary
/// embedded format, the same 100 bytes per value as sluice's runs.
fn karapace_body(msg_bytes: usize, batch: usize) -> Bytes {
    let value = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; msg_bytes]);
    let records: Vec<serde_json::Value> = (0..batch)
        .map(|_| serde_json::json!({ "value": value }))
        .collect();
    Bytes::from(serde_json::json!({ "records": records }).to_string())
}

/// `POST /topics/{topic}` to Karapace. A 200 whose offsets carry an
/// error for any record counts as failed.
fn karapace_produce(pool: Pool, topic: &str, body: Bytes, batch: usize, msg_bytes: usize) -> Op {
    let url = format!("{}/topics/{topic}", pool.base);
    Arc::new(move |worker, _| {
        let request = pool
            .client(worker)
            .post(&url)
            .header("content-type", "application/vnd.kafka.binary.v2+json")
            .header("accept", "application/vnd.kafka.v2+json")
            .body(body.clone());
        async move {
            match request.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    if !status.is_success() {
                        Outcome::failed(Status::Http(status.as_u16()))
                    } else if record_failed(&body) {
                        Outcome::failed(Status::Error("record error"))
                    } else {
                        Outcome::ok(batch as u64, (batch * msg_bytes) as u64)
                    }
                }
                Err(e) => Outcome::failed(requests::transport(&e)),
            }
        }
        .boxed()
    })
}

/// Whether a v2 produce answer names an error for some record.
fn record_failed(body: &[u8]) -> bool {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return true;
    };
    answer["offsets"].as_array().is_none_or(|offsets| {
        offsets
            .iter()
            .any(|o| !o["error_code"].is_null() || !o["error"].is_null())
    })
}

/// Karapace's consume run, compared with sluice's `consume limit 100`.
pub const CONSUME_RUN: &str = "peer karapace consume ~100";

/// Karapace's v2 consumer drains `topic` (pre-filled on the memory
/// broker by the consume scenario) with one instance of a fresh group:
/// `GET …/records` with `max_bytes` sized for 100 values, so that each
/// answer carries about 100 records (Karapace answers when `max_bytes` is
/// reached or its `timeout` ends).
pub async fn consume(
    ctx: &mut Ctx,
    target: &Target,
    topic: &str,
    prefill: usize,
    msg_bytes: usize,
) -> Result<()> {
    let Some(url) = ctx.args.peer_read_url.clone() else {
        return Ok(());
    };
    let karapace = Pool::new(&url, None, HttpVersion::H1, 1, 1)?;
    await_topic(&karapace, topic).await?;
    let client = karapace.client(0).clone();
    let group = format!("lt-{}", std::process::id());
    let v2 = "application/vnd.kafka.v2+json";
    let created = client
        .post(format!("{url}/consumers/{group}"))
        .header("content-type", v2)
        .body(r#"{"name":"i1","format":"binary","auto.offset.reset":"earliest"}"#)
        .send()
        .await?;
    anyhow::ensure!(
        created.status().is_success(),
        "Karapace refused a consumer: {}",
        created.status()
    );
    let instance = format!("{url}/consumers/{group}/instances/i1");
    let subscribed = client
        .post(format!("{instance}/subscription"))
        .header("content-type", v2)
        .body(serde_json::json!({ "topics": [topic] }).to_string())
        .send()
        .await?;
    anyhow::ensure!(
        subscribed.status().is_success(),
        "Karapace refused the subscription: {}",
        subscribed.status()
    );
    let records = format!(
        "{instance}/records?timeout=1000&max_bytes={}",
        100 * msg_bytes
    );
    let op: Op = Arc::new(move |_, _| {
        let request = client
            .get(&records)
            .header("accept", "application/vnd.kafka.binary.v2+json");
        async move {
            match request.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    if !status.is_success() {
                        return Outcome::failed(Status::Http(status.as_u16()));
                    }
                    let n = serde_json::from_slice::<Vec<serde_json::Value>>(&body)
                        .map_or(0, |r| r.len() as u64);
                    Outcome::ok(n, n * msg_bytes as u64)
                }
                Err(e) => Outcome::failed(requests::transport(&e)),
            }
        }
        .boxed()
    });
    let plan = crate::engine::Plan {
        concurrency: 1,
        warmup: std::time::Duration::ZERO,
        duration: std::time::Duration::from_secs_f64((ctx.duration * 2.5).max(5.0)),
        until_empty: Some(3),
        ..ctx.plan()
    };
    ctx.measure(
        Spec {
            scenario: "peer".into(),
            name: CONSUME_RUN.into(),
            path: "Karapace 2.0.1 REST proxy HTTP/1.1".into(),
            broker: target.broker.clone(),
            settings: format!("v2 consumer, one instance of a fresh group draining {prefill} × {msg_bytes} B, GET …/records?max_bytes={} (about 100 records an answer); c=1", 100 * msg_bytes),
            msg_bytes: Some(msg_bytes),
            batch: None,
            limit: Some(100),
        },
        plan,
        op,
        target.observe.without_pid(),
    )
    .await;
    let _ = karapace.client(0).delete(&instance).send().await;
    ctx.compare(CONSUME_RUN, "consume limit 100", "messages/s");
    if let (Some(theirs), Some(ours)) = (ctx.find(CONSUME_RUN), ctx.find("consume limit 100")) {
        if theirs.messages_per_s > 0.0 {
            let note = format!(
                "consume, sluice ÷ Karapace: {:.1}× ({:.0} msg/s at limit=100 over HTTPS against {:.0} msg/s over plain HTTP)",
                ours.messages_per_s / theirs.messages_per_s,
                ours.messages_per_s,
                theirs.messages_per_s
            );
            ctx.notes.push(note);
        }
    }
    Ok(())
}

/// Waits until Karapace knows the topic: it caches topic metadata for
/// 5 s, so a topic created after it started is a 404 until then.
async fn await_topic(karapace: &Pool, topic: &str) -> Result<()> {
    let url = format!("{}/topics/{topic}", karapace.base);
    for _ in 0..60 {
        let answer = karapace.client(0).get(&url).send().await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    anyhow::bail!("Karapace did not see topic {topic} within 15 s")
}

/// Runs produce at batch 1 and 100 × 100 B through the plain-HTTP sluice
/// and through Karapace, on a topic of the discarding broker's cluster.
pub async fn run(ctx: &mut Ctx, null: &mut Target) -> Result<()> {
    let (Some(peer_url), Some(plain_url)) = (ctx.args.peer_url.clone(), ctx.args.plain_url.clone())
    else {
        ctx.notes.push(
            "peer: not run (loadtest/run --peer karapace=PATH runs Karapace's REST proxy beside a plain-HTTP sluice)".into(),
        );
        return Ok(());
    };
    let tenant = null
        .provisioner
        .tenant("peer", Quota::unlimited(), 1, 2)
        .await?;
    let sluice = Pool::new(&plain_url, None, HttpVersion::H1, 256, 1)?;
    let karapace = Pool::new(&peer_url, None, HttpVersion::H1, 256, 1)?;
    await_topic(&karapace, &tenant.topic).await?;
    let (user, password) = &tenant.users[0];
    let auths = Arc::new(vec![crate::client::basic(user, password)]);
    let broker = "tansu null://".to_owned();
    for (batch, concurrency) in RUNS {
        let label = format!("{} x{batch} c={concurrency}", size_label(100));
        let plan = crate::engine::Plan {
            concurrency,
            ..ctx.plan()
        };
        let peer = format!("peer karapace produce {label}");
        ctx.measure(
            Spec {
                scenario: "peer".into(),
                name: peer.clone(),
                path: "Karapace 2.0.1 REST proxy HTTP/1.1".into(),
                broker: broker.clone(),
                settings: format!(
                    "POST /topics/{{topic}} application/vnd.kafka.binary.v2+json, {batch} × 100 B (base64), no keys (Karapace then sends every record to one partition, each awaited in turn); c={concurrency}"
                ),
                msg_bytes: Some(100),
                batch: Some(batch),
                limit: None,
            },
            plan,
            karapace_produce(
                karapace.clone(),
                &tenant.topic,
                karapace_body(100, batch),
                batch,
                100,
            ),
            null.observe.without_pid(),
        )
        .await;
        let ours = format!("peer sluice produce {label}");
        ctx.measure(
            Spec {
                scenario: "peer".into(),
                name: ours.clone(),
                path: "sluice HTTP/1.1 (no TLS)".into(),
                broker: broker.clone(),
                settings: format!(
                    "POST /topic JSON, {batch} × 100 B, to a plain-HTTP node of the same cluster; c={concurrency}"
                ),
                msg_bytes: Some(100),
                batch: Some(batch),
                limit: None,
            },
            plan,
            requests::produce(
                sluice.clone(),
                auths.clone(),
                &tenant.topic,
                requests::produce_body(100, batch),
                batch,
                100,
            ),
            crate::engine::Observe {
                pid: ctx.args.plain_pid,
                ..null.observe
            },
        )
        .await;
        ctx.compare(&ours, &peer, "messages/s");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_karapace_answer_with_an_error_for_any_record_is_a_failure() {
        assert!(!record_failed(
            br#"{"offsets":[{"partition":0,"offset":4}],"key_schema_id":null}"#
        ));
        assert!(record_failed(
            br#"{"offsets":[{"partition":0,"offset":4},{"error_code":1,"error":"boom"}]}"#
        ));
        assert!(record_failed(b"not json"));
    }

    #[test]
    fn the_karapace_body_carries_the_same_bytes_base64() {
        let body: serde_json::Value = serde_json::from_slice(&karapace_body(100, 2)).unwrap();
        let records = body["records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        let value = base64::engine::general_purpose::STANDARD
            .decode(records[0]["value"].as_str().unwrap())
            .unwrap();
        assert_eq!(value, vec![b'x'; 100]);
    }
}
