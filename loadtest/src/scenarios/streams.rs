//! Issue 15's benchmark of the stream routes:
//!
//! - **Throughput.** A fresh group drains a pre-filled topic (100 B
//!   messages, 4 partitions, as the consume scenario) through 4 SSE streams
//!   of the group in auto mode, then another fresh group through 4
//!   WebSocket connections in manual mode that ack each frame as it comes;
//!   each is compared with `consume limit 100` (GET `limit=100`) of the
//!   same run, or with a GET `limit=100` drain of this scenario's own topic
//!   when the consume scenario was not selected.
//! - **Latency.** One SSE stream reads while a producer sends 100 B
//!   messages open loop at half the batch-1 produce maximum (or a fixed
//!   rate); each value carries its send time, so the figure is produce start
//!   → event arrival.
//! - **Memory.** sluice's RSS before and with 1,000 idle SSE streams open.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Result;
use futures::{FutureExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{requests, Ctx, Target};
use crate::baseline;
use crate::engine::{self, Op, Outcome, Plan, Raw, Status};
use crate::procfs;
use crate::provision::Tenant;
use crate::report::{Measurement, Spec};
use crate::stream_client::{self, Frame, SseRead, SseReader, WsTarget};

/// Message size, as in the consume scenario.
const MSG_BYTES: usize = 100;
/// Partitions of the scenario's topics, as in the consume scenario.
const PARTITIONS: u32 = 4;
/// Streams (or connections) of the group in the throughput runs: one per
/// partition, as the GET run has one GET per partition in flight.
const STREAMS: usize = PARTITIONS as usize;
/// The WebSocket runs' credit: generous, so that flow control never
/// throttles the drain (the acks come back well within it).
const WS_CREDIT: u64 = 10_000;
/// Idle streams of the memory run (the figure).
const IDLE_STREAMS: usize = 1000;
/// Loopback addresses the idle streams leave from, so that none of them
/// holds more than `http.max_connections_per_address` (256 by default).
const IDLE_ADDRESSES: u8 = 8;
/// Open-loop rate of the latency run when the batch-1 produce run did not
/// run: about half of what it reaches over HTTP/1.1 on the 2-core machine
/// (2.7k–3.9k msg/s in BENCHMARKS.md).
const FALLBACK_RATE: f64 = 1500.0;
/// The trickle the half-load latency is compared with.
const LOW_RATE: f64 = 100.0;

/// Name of the SSE throughput run.
pub const SSE_RUN: &str = "stream SSE";
/// Name of the WebSocket throughput run.
pub const WS_RUN: &str = "stream WebSocket";
/// The GET `limit=100` run both are compared with, from the consume
/// scenario.
pub const GET_RUN: &str = "consume limit 100";
/// This scenario's own GET `limit=100` run, when the consume scenario was
/// not selected.
pub const OWN_GET_RUN: &str = "streams GET limit 100";
/// Name of the end-to-end latency run.
pub const LATENCY_RUN: &str = "stream SSE latency";
/// Name of the idle-streams memory run.
pub const IDLE_RUN: &str = "1000 idle SSE streams";

/// Runs the scenario on a tenant of its own (whose quota allows 100,000
/// streams: see `Admin::create_tenant`).
pub async fn run(ctx: &mut Ctx, target: &mut Target) -> Result<()> {
    let tenant = target
        .provisioner
        .tenant("streams", crate::client::Quota::unlimited(), 1, PARTITIONS)
        .await?;
    let (user, password) = &tenant.users[0];
    let auth = crate::client::basic(user, password);
    // Memory first: the throughput runs leave freed heap behind that idle
    // streams would reuse unseen.
    idle(ctx, target, &tenant, &auth).await?;
    throughput(ctx, target, &tenant, &auth).await?;
    latency(ctx, target, &tenant, &auth).await?;
    Ok(())
}

/// A reading of sluice's counters, when its pid is known.
fn sample(target: &Target) -> Option<procfs::Sample> {
    procfs::sample(target.observe.pid, target.observe.ticks)
}

/// Records a run measured outside the engine (streams are not
/// request/response operations), with the server's counters around it.
fn record(
    ctx: &mut Ctx,
    spec: Spec,
    mode: String,
    mut raw: Raw,
    before: Option<procfs::Sample>,
    after: Option<procfs::Sample>,
) -> Measurement {
    if let (Some(b), Some(a)) = (before, after) {
        raw.cpu_seconds = Some(a.cpu_seconds - b.cpu_seconds);
        raw.rss_before_kib = Some(b.rss_kib);
        raw.rss_after_kib = Some(a.rss_kib);
        raw.hwm_kib = Some(a.hwm_kib);
    }
    let m = Measurement::new(spec, mode, &raw);
    ctx.finish(&m);
    ctx.results.push(m.clone());
    m
}

fn spec(ctx: &Ctx, target: &Target, name: &str, settings: String, limit: Option<usize>) -> Spec {
    Spec {
        scenario: "streams".into(),
        name: name.into(),
        path: ctx.http_path(),
        broker: target.broker.clone(),
        settings,
        msg_bytes: Some(MSG_BYTES),
        batch: None,
        limit,
    }
}

/// Opens `IDLE_STREAMS` SSE streams on an empty topic and reads sluice's
/// RSS before and after.
async fn idle(ctx: &mut Ctx, target: &Target, tenant: &Tenant, auth: &str) -> Result<()> {
    let topic = format!("{}.idle", tenant.name);
    target
        .provisioner
        .admin()
        .create_topic(&tenant.name, &topic, PARTITIONS)
        .await?;
    let base = target.pool.base.clone();
    let ca = ctx.args.ca.clone();
    let spread = stream_client::is_loopback(&base);
    let clients: Vec<reqwest::Client> = if spread {
        (0..IDLE_ADDRESSES)
            .map(|i| {
                stream_client::sse_client(
                    &base,
                    ca.as_deref(),
                    Some(IpAddr::from([127, 0, 0, 21 + i])),
                )
            })
            .collect::<Result<_>>()?
    } else {
        vec![stream_client::sse_client(&base, ca.as_deref(), None)?]
    };
    ctx.progress
        .set_message(format!("opening {IDLE_STREAMS} idle SSE streams"));
    let settle = Duration::from_secs(if ctx.args.quick { 3 } else { 5 });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = sample(target);
    let started = Instant::now();
    let query = "group=idle";
    // The first alone: it puts the user in the login cache, so the others
    // do not queue for password verifications.
    let open = |i: usize| {
        let client = clients[i % clients.len()].clone();
        let (base, auth, topic) = (base.clone(), auth.to_owned(), topic.clone());
        async move {
            let began = Instant::now();
            let mut outcome = SseReader::open(&client, &base, &auth, &topic, query).await;
            // A refusal for the rate of logins is retried; any other is
            // the figure.
            for _ in 0..5 {
                match &outcome {
                    Err((429, _)) | Err((0, _)) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        outcome = SseReader::open(&client, &base, &auth, &topic, query).await;
                    }
                    _ => break,
                }
            }
            let outcome = match outcome {
                // Open means the preamble arrived.
                Ok(mut reader) => match reader.read(Duration::from_secs(10)).await {
                    SseRead::Events(_) => Ok(reader),
                    SseRead::Idle => Err((0, "no preamble within 10 s".to_owned())),
                    SseRead::Ended => Err((0, "ended at once".to_owned())),
                },
                Err(e) => Err(e),
            };
            (began.elapsed(), outcome)
        }
    };
    let mut results = vec![open(0).await];
    results.extend(
        futures::stream::iter(1..IDLE_STREAMS)
            .map(open)
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await,
    );
    let opened_in = started.elapsed();
    let mut raw = Raw::empty();
    let mut readers = Vec::with_capacity(IDLE_STREAMS);
    let mut first_error = None;
    for (took, outcome) in results {
        raw.requests += 1;
        raw.histogram
            .saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        match outcome {
            Ok(reader) => {
                raw.ok += 1;
                readers.push(reader);
            }
            Err((status, body)) => {
                let key = if status == 0 {
                    "transport".to_owned()
                } else {
                    status.to_string()
                };
                *raw.errors.entry(key).or_default() += 1;
                first_error.get_or_insert(format!("{status}: {body}"));
            }
        }
    }
    tokio::time::sleep(settle).await;
    let after = sample(target);
    raw.elapsed = opened_in.as_secs_f64().max(1e-3);
    let open_now = readers.len();
    drop(readers);
    let s = spec(
        ctx,
        target,
        IDLE_RUN,
        format!(
            "{IDLE_STREAMS} SSE streams of one group on an empty topic ({PARTITIONS} partitions), auto mode, opened 32 at a time{}; RSS read {} s after the last opened; latency = time to open each (until its first comment)",
            if spread {
                format!(" from {IDLE_ADDRESSES} loopback addresses (127.0.0.21–{}), below http.max_connections_per_address", 20 + IDLE_ADDRESSES)
            } else {
                String::new()
            },
            settle.as_secs()
        ),
        None,
    );
    let m = record(
        ctx,
        s,
        format!("{IDLE_STREAMS} streams, 32 opening at a time"),
        raw,
        before,
        after,
    );
    if let Some(e) = first_error {
        ctx.notes.push(format!(
            "{IDLE_RUN}: {} of {IDLE_STREAMS} streams did not open; the first refusal: {e}",
            IDLE_STREAMS - open_now
        ));
    }
    if let (Some(b), Some(a)) = (m.rss_before_kib, m.rss_after_kib) {
        ctx.notes.push(format!(
            "{IDLE_RUN}: {open_now} open, sluice RSS {:.1} → {:.1} MiB ({:+.1} MiB, {:.1} KiB per stream)",
            b as f64 / 1024.0,
            a as f64 / 1024.0,
            (a as f64 - b as f64) / 1024.0,
            (a as f64 - b as f64) / open_now.max(1) as f64
        ));
    }
    // Let the node see them go before the next runs.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

/// Counters the readers of one throughput run share.
#[derive(Debug, Default)]
struct Progress {
    messages: AtomicU64,
    /// Microseconds from the run's start to the last message seen.
    last_micros: AtomicU64,
    stop: AtomicBool,
}

/// What one reader of a throughput run counted.
#[derive(Debug)]
struct ReaderOutcome {
    /// Gaps between the batches it received, µs.
    gaps: Histogram<u64>,
    batches: u64,
    messages: u64,
    errors: Vec<String>,
}

impl ReaderOutcome {
    fn new() -> Self {
        Self {
            gaps: engine::histogram(),
            batches: 0,
            messages: 0,
            errors: Vec::new(),
        }
    }

    fn batch(&mut self, n: u64, last: &mut Instant, progress: &Progress, origin: Instant) {
        let now = Instant::now();
        self.gaps.saturating_record(
            u64::try_from(now.duration_since(*last).as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        *last = now;
        self.batches += 1;
        self.messages += n;
        progress.messages.fetch_add(n, Ordering::Relaxed);
        progress.last_micros.fetch_max(
            u64::try_from(now.duration_since(origin).as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// How a throughput run ends: the whole backlog arrived, nothing arrived
/// for `quiet`, or `max` passed.
#[derive(Debug, Clone, Copy)]
struct Drain {
    expected: u64,
    quiet: Duration,
    max: Duration,
}

/// Waits for the end of a drain, then stops the readers.
async fn supervise(progress: &Progress, origin: Instant, drain: Drain) {
    let mut seen = 0;
    let mut seen_at = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = progress.messages.load(Ordering::Relaxed);
        if now >= drain.expected || origin.elapsed() >= drain.max {
            break;
        }
        if now != seen {
            seen = now;
            seen_at = Instant::now();
        } else if seen_at.elapsed() >= drain.quiet {
            break;
        }
    }
    progress.stop.store(true, Ordering::Relaxed);
}

/// Merges the readers' counts into a run, timed from the start to the last
/// message (as a drain of GETs is timed to its last answer with messages).
fn merge(outcomes: Vec<ReaderOutcome>, progress: &Progress) -> Raw {
    let mut raw = Raw::empty();
    for o in outcomes {
        let _ = raw.histogram.add(&o.gaps);
        raw.requests += o.batches + o.errors.len() as u64;
        raw.ok += o.batches;
        raw.messages += o.messages;
        raw.bytes += o.messages * MSG_BYTES as u64;
        for e in o.errors {
            *raw.errors.entry(e).or_default() += 1;
        }
    }
    raw.elapsed = (progress.last_micros.load(Ordering::Relaxed) as f64 / 1e6).max(1e-3);
    raw
}

/// One SSE stream of a throughput run, counting events until stopped.
async fn sse_reader(
    client: reqwest::Client,
    base: String,
    auth: String,
    topic: String,
    query: String,
    progress: Arc<Progress>,
    origin: Instant,
) -> ReaderOutcome {
    let mut out = ReaderOutcome::new();
    let mut reader = match SseReader::open(&client, &base, &auth, &topic, &query).await {
        Ok(reader) => reader,
        Err((status, _)) => {
            out.errors.push(if status == 0 {
                "transport".into()
            } else {
                status.to_string()
            });
            return out;
        }
    };
    let mut last = Instant::now();
    while !progress.stop.load(Ordering::Relaxed) {
        match reader.read(Duration::from_millis(100)).await {
            SseRead::Events(events) => {
                let n = stream_client::count_events(&events);
                if n > 0 {
                    out.batch(n, &mut last, &progress, origin);
                }
            }
            SseRead::Idle => {}
            SseRead::Ended => {
                out.errors.push("stream_ended".into());
                break;
            }
        }
    }
    out
}

/// One WebSocket connection of a throughput run, acking each frame as it
/// arrives, until stopped.
async fn ws_reader(
    target: WsTarget,
    auth: String,
    topic: String,
    query: String,
    progress: Arc<Progress>,
    origin: Instant,
) -> ReaderOutcome {
    let mut out = ReaderOutcome::new();
    let mut ws = match target.connect(&auth, &topic, &query).await {
        Ok(ws) => ws,
        Err((status, _)) => {
            out.errors.push(if status == 0 {
                "transport".into()
            } else {
                status.to_string()
            });
            return out;
        }
    };
    let mut last = Instant::now();
    while !progress.stop.load(Ordering::Relaxed) {
        let frame = match tokio::time::timeout(Duration::from_millis(100), ws.next()).await {
            Err(_) => continue,
            Ok(frame) => frame,
        };
        match frame {
            Some(Ok(Message::Text(text))) => match stream_client::classify(text.as_str()) {
                Frame::Batch { receipt, messages } => {
                    // A frame counts once its ack is on the wire, as a
                    // manual GET counts once acked.
                    if let Some(receipt) = receipt {
                        if stream_client::ack(&mut ws, receipt).await.is_err() {
                            out.errors.push("ack_failed".into());
                            break;
                        }
                    }
                    out.batch(messages, &mut last, &progress, origin);
                }
                Frame::Settled => {}
                Frame::Error => out.errors.push("error_frame".into()),
            },
            Some(Ok(Message::Close(frame))) => {
                out.errors.push(format!(
                    "closed_{}",
                    frame.map_or(1005, |f| u16::from(f.code))
                ));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                out.errors.push("transport".into());
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    out
}

/// Pre-fills a topic of the tenant, drains it through SSE and through
/// WebSocket, each with a fresh group, and compares both with GET
/// `limit=100`.
async fn throughput(ctx: &mut Ctx, target: &Target, tenant: &Tenant, auth: &str) -> Result<()> {
    let prefill = ctx
        .args
        .prefill
        .unwrap_or(if ctx.args.quick { 20_000 } else { 250_000 });
    let producer = baseline::prefill_producer(&target.bootstrap, &ctx.extra, &tenant.topic).await?;
    ctx.progress.set_message(format!(
        "pre-filling {} with {prefill} messages",
        tenant.topic
    ));
    baseline::prefill(&producer, &tenant.topic, &[b'x'; MSG_BYTES], prefill).await?;
    drop(producer);
    let drain = Drain {
        expected: prefill as u64,
        quiet: Duration::from_secs(3),
        max: Duration::from_secs_f64((ctx.duration * 5.0).max(20.0)),
    };
    // The GET runs it is compared with drain a backlog that an earlier
    // group already read (the consume scenario's `limit=1000` comes first),
    // mostly from sluice's cache of recent messages: so are these.
    warm(ctx, target, tenant, auth, prefill).await;
    let baseline_name = if ctx.find(GET_RUN).is_some() {
        GET_RUN
    } else {
        own_get(ctx, target, tenant, auth, prefill).await;
        OWN_GET_RUN
    };
    let base = target.pool.base.clone();
    let what = format!(
        "one fresh group draining {prefill} × {MSG_BYTES} B messages on {PARTITIONS} partitions"
    );

    // SSE, auto mode.
    let client = stream_client::sse_client(&base, ctx.args.ca.as_deref(), None)?;
    let progress = Arc::new(Progress::default());
    let cached_before = target.cached_messages(&tenant.name).await;
    let before = sample(target);
    let origin = Instant::now();
    let readers: Vec<_> = (0..STREAMS)
        .map(|_| {
            tokio::spawn(sse_reader(
                client.clone(),
                base.clone(),
                auth.to_owned(),
                tenant.topic.clone(),
                "group=sse&limit=100".into(),
                progress.clone(),
                origin,
            ))
        })
        .collect();
    ctx.progress.set_message(format!("{SSE_RUN}: draining"));
    supervise(&progress, origin, drain).await;
    let outcomes = join(readers).await;
    let after = sample(target);
    let raw = merge(outcomes, &progress);
    let s = spec(
        ctx,
        target,
        SSE_RUN,
        format!("GET /topic/…/stream?group=…&limit=100 (auto mode), {STREAMS} streams of {what}; timed from opening to the last event; latency = gap between a stream's batches"),
        Some(100),
    );
    record(ctx, s, format!("{STREAMS} streams"), raw, before, after);
    short_note(ctx, SSE_RUN, prefill);
    cache_note(ctx, target, tenant, SSE_RUN, cached_before).await;
    ctx.compare(SSE_RUN, baseline_name, "messages/s");

    // WebSocket, manual mode with an ack per frame.
    let ws_target = WsTarget::new(&base, ctx.args.ca.as_deref())?;
    let progress = Arc::new(Progress::default());
    let cached_before = target.cached_messages(&tenant.name).await;
    let before = sample(target);
    let origin = Instant::now();
    let readers: Vec<_> = (0..STREAMS)
        .map(|_| {
            tokio::spawn(ws_reader(
                ws_target.clone(),
                auth.to_owned(),
                tenant.topic.clone(),
                format!("group=ws&limit=100&ack=manual&visibility=60000&credit={WS_CREDIT}"),
                progress.clone(),
                origin,
            ))
        })
        .collect();
    ctx.progress.set_message(format!("{WS_RUN}: draining"));
    supervise(&progress, origin, drain).await;
    let outcomes = join(readers).await;
    let after = sample(target);
    let raw = merge(outcomes, &progress);
    let s = spec(
        ctx,
        target,
        WS_RUN,
        format!("GET /topic/…/ws?group=…&limit=100&ack=manual&credit={WS_CREDIT}, {STREAMS} connections of {what}, each frame acked ({{\"ack\":…}}) as it arrives; timed from connecting to the last frame; latency = gap between a connection's frames"),
        Some(100),
    );
    record(
        ctx,
        s,
        format!("{STREAMS} connections, credit {WS_CREDIT}"),
        raw,
        before,
        after,
    );
    short_note(ctx, WS_RUN, prefill);
    cache_note(ctx, target, tenant, WS_RUN, cached_before).await;
    ctx.compare(WS_RUN, baseline_name, "messages/s");
    Ok(())
}

async fn join(handles: Vec<tokio::task::JoinHandle<ReaderOutcome>>) -> Vec<ReaderOutcome> {
    let mut outcomes = Vec::with_capacity(handles.len());
    for handle in handles {
        outcomes.push(handle.await.unwrap_or_else(|_| {
            let mut o = ReaderOutcome::new();
            o.errors.push("reader_panicked".into());
            o
        }));
    }
    outcomes
}

/// Says so when a drain ended before the whole backlog arrived (a stall
/// of the server longer than the quiet period, or the time cap).
fn short_note(ctx: &mut Ctx, run: &str, prefill: usize) {
    if let Some(m) = ctx.find(run) {
        if m.messages < prefill as u64 {
            let note = format!(
                "{run}: the drain ended with {} of {prefill} messages delivered (nothing more came for 3 s, or the time cap)",
                m.messages
            );
            ctx.notes.push(note);
        }
    }
}

async fn cache_note(ctx: &mut Ctx, target: &Target, tenant: &Tenant, run: &str, before: u64) {
    let cached = target
        .cached_messages(&tenant.name)
        .await
        .saturating_sub(before);
    ctx.notes.push(format!(
        "{run}: {cached} messages came from sluice's cache of recent messages, the rest from Kafka"
    ));
}

/// Name of the unmeasured-in-goals drain that puts the backlog in
/// sluice's cache of recent messages.
pub const WARM_RUN: &str = "streams GET limit 1000 (cache warm-up)";

/// Drains the backlog once with GET `limit=1000` and a group of its own,
/// as the consume scenario's first run does before `limit=100`.
async fn warm(ctx: &mut Ctx, target: &Target, tenant: &Tenant, auth: &str, prefill: usize) {
    let plan = Plan {
        concurrency: PARTITIONS as usize,
        warmup: Duration::ZERO,
        duration: Duration::from_secs_f64((ctx.duration * 2.5).max(5.0)),
        until_empty: Some(3),
        ..ctx.plan()
    };
    let s = spec(
        ctx,
        target,
        WARM_RUN,
        format!("GET /topic?limit=1000, a group of its own draining the {prefill} messages first, so that the stream runs, like the GET runs they are compared with, read them mostly from sluice's cache of recent messages; c={PARTITIONS}"),
        Some(1000),
    );
    ctx.measure(
        s,
        plan,
        requests::consume(
            target.pool.clone(),
            auth.to_owned(),
            &tenant.topic,
            1000,
            Arc::new(vec!["warm".to_owned()]),
            MSG_BYTES,
        ),
        target.observe,
    )
    .await;
}

/// GET `limit=100` draining the same backlog with a fresh group, as the
/// consume scenario does, when that scenario did not run.
async fn own_get(ctx: &mut Ctx, target: &Target, tenant: &Tenant, auth: &str, prefill: usize) {
    let plan = Plan {
        concurrency: PARTITIONS as usize,
        warmup: Duration::ZERO,
        duration: Duration::from_secs_f64((ctx.duration * 2.5).max(5.0)),
        until_empty: Some(3),
        ..ctx.plan()
    };
    let cached_before = target.cached_messages(&tenant.name).await;
    ctx.measure(
        spec(
            ctx,
            target,
            OWN_GET_RUN,
            format!("GET /topic?limit=100, one fresh group draining {prefill} × {MSG_BYTES} B messages on {PARTITIONS} partitions; c={PARTITIONS} (the consume scenario's run, on this scenario's topic)"),
            Some(100),
        ),
        plan,
        requests::consume(
            target.pool.clone(),
            auth.to_owned(),
            &tenant.topic,
            100,
            Arc::new(vec!["get100".to_owned()]),
            MSG_BYTES,
        ),
        target.observe,
    )
    .await;
    cache_note(ctx, target, tenant, OWN_GET_RUN, cached_before).await;
}

/// A produce whose single 100 B value starts with the microseconds since
/// `origin` at which the request was sent.
fn timed_produce(pool: crate::client::Pool, auth: String, topic: &str, origin: Instant) -> Op {
    let url = format!("{}/topic/{topic}", pool.base);
    Arc::new(move |worker, _| {
        let sent = origin.elapsed().as_micros();
        let value = format!("{sent:020}{}", "x".repeat(MSG_BYTES - 20));
        let request = pool
            .client(worker)
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(format!("[{{\"Value\":\"{value}\"}}]"));
        async move {
            match request.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let _ = resp.bytes().await;
                    if status.is_success() {
                        Outcome::ok(1, MSG_BYTES as u64)
                    } else {
                        Outcome::failed(Status::Http(status.as_u16()))
                    }
                }
                Err(e) => Outcome::failed(requests::transport(&e)),
            }
        }
        .boxed()
    })
}

/// The send time a latency run's value carries, µs since the origin.
fn sent_micros(data: &[u8]) -> Option<u64> {
    const VALUE: &[u8] = b"\"Value\":\"";
    let at = data.windows(VALUE.len()).position(|w| w == VALUE)? + VALUE.len();
    let digits = data.get(at..at + 20)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// What the latency run's reader saw.
#[derive(Debug)]
struct Arrivals {
    histogram: Histogram<u64>,
    measured: u64,
    received: u64,
    /// Reads that brought events: events per read say whether the
    /// stream keeps up (a few) or falls behind (full batches).
    reads: u64,
}

/// One SSE stream while a producer sends timed messages at a fixed rate:
/// the latency from each produce's start to its event's arrival.
async fn latency(ctx: &mut Ctx, target: &Target, tenant: &Tenant, auth: &str) -> Result<()> {
    let (rate, why) = match ctx.find("produce 100B x1").map(|m| m.ok_per_s) {
        Some(max) if max > 2.0 => (
            (max / 2.0).round(),
            format!("half the {max:.0} req/s of `produce 100B x1` in this run"),
        ),
        _ => (
            FALLBACK_RATE,
            "a fixed rate, about half what batch-1 produce reaches over HTTP/1.1 on this machine (the produce sweep did not run)".to_owned(),
        ),
    };
    // The goal's rate, then a trickle: whether a slow event is the
    // stream's pace or a wait that even a light load pays.
    for run in [
        LatencyRun {
            name: LATENCY_RUN.to_owned(),
            rate,
            why,
            label: "latency",
        },
        LatencyRun {
            name: format!("{LATENCY_RUN} at {LOW_RATE:.0}/s"),
            rate: LOW_RATE,
            why: "a trickle, for comparison".to_owned(),
            label: "trickle",
        },
    ] {
        // A topic each: a fresh group starts at the beginning of its topic.
        let topic = format!("{}.{}", tenant.name, run.label);
        target
            .provisioner
            .admin()
            .create_topic(&tenant.name, &topic, PARTITIONS)
            .await?;
        latency_at(ctx, target, &topic, auth, run).await;
    }
    Ok(())
}

/// One latency run: its name, producer rate (and why that rate), and the
/// name of its topic in the tenant.
#[derive(Debug)]
struct LatencyRun {
    name: String,
    rate: f64,
    why: String,
    label: &'static str,
}

/// Measures produce → event latency on one SSE stream of a fresh group at
/// `run.rate` messages/s.
async fn latency_at(ctx: &mut Ctx, target: &Target, topic: &str, auth: &str, run: LatencyRun) {
    let LatencyRun {
        name,
        rate,
        why,
        label: _,
    } = run;
    let base = target.pool.base.clone();
    let client = match stream_client::sse_client(&base, ctx.args.ca.as_deref(), None) {
        Ok(client) => client,
        Err(e) => {
            ctx.notes.push(format!("{name}: skipped: {e:#}"));
            return;
        }
    };
    let mut reader = match SseReader::open(&client, &base, auth, topic, "group=latency").await {
        Ok(reader) => reader,
        Err((status, body)) => {
            ctx.notes.push(format!(
                "{name}: skipped, the stream did not open: {status} {body}"
            ));
            return;
        }
    };
    // The preamble: the stream is open and polling.
    let _ = reader.read(Duration::from_secs(10)).await;
    let origin = Instant::now();
    let plan = Plan {
        rate: Some(rate),
        concurrency: ctx.args.concurrency.max(32),
        duration: Duration::from_secs_f64(ctx.duration.max(3.0)),
        ..ctx.plan()
    };
    let warmup_micros = u64::try_from(plan.warmup.as_micros()).unwrap_or(u64::MAX);
    let stop = Arc::new(AtomicBool::new(false));
    let arrivals = Arc::new(Mutex::new(Arrivals {
        histogram: engine::histogram(),
        measured: 0,
        received: 0,
        reads: 0,
    }));
    let reading = {
        let (stop, arrivals) = (stop.clone(), arrivals.clone());
        tokio::spawn(async move {
            let mut quiet_since = Instant::now();
            loop {
                if stop.load(Ordering::Relaxed)
                    && quiet_since.elapsed() >= Duration::from_millis(500)
                {
                    break;
                }
                match reader.read(Duration::from_millis(100)).await {
                    SseRead::Events(events) => {
                        let arrived =
                            u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
                        let mut a = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
                        a.reads += 1;
                        for data in stream_client::message_data(&events) {
                            a.received += 1;
                            quiet_since = Instant::now();
                            if let Some(sent) = sent_micros(data).filter(|s| *s >= warmup_micros) {
                                a.measured += 1;
                                a.histogram
                                    .saturating_record(arrived.saturating_sub(sent).max(1));
                            }
                        }
                    }
                    SseRead::Idle => {}
                    SseRead::Ended => break,
                }
            }
        })
    };
    let produced = ctx
        .measure(
            Spec {
                scenario: "streams".into(),
                name: format!("{name} producer"),
                path: ctx.http_path(),
                broker: target.broker.clone(),
                settings: format!("POST /topic/… 100 B × 1, open loop at {rate:.0} req/s ({why}), each value starting with its send time; the load of `{name}`"),
                msg_bytes: Some(MSG_BYTES),
                batch: Some(1),
                limit: None,
            },
            plan,
            timed_produce(target.pool.clone(), auth.to_owned(), topic, origin),
            target.observe,
        )
        .await;
    // Stragglers: up to 5 s for the last events, then 0.5 s of quiet.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let measured = arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .measured;
        if measured >= produced.ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = reading.await;
    let a = std::mem::replace(
        &mut *arrivals.lock().unwrap_or_else(PoisonError::into_inner),
        Arrivals {
            histogram: engine::histogram(),
            measured: 0,
            received: 0,
            reads: 0,
        },
    );
    let mut raw = Raw::empty();
    raw.histogram = a.histogram;
    raw.requests = a.measured;
    raw.ok = a.measured;
    raw.messages = a.measured;
    raw.bytes = a.measured * MSG_BYTES as u64;
    raw.elapsed = produced.duration_s;
    let missing = produced.ok.saturating_sub(a.measured);
    if missing > 0 {
        raw.errors.insert("not_delivered".into(), missing);
    }
    raw.cpu_seconds = produced.cpu_seconds;
    raw.rss_before_kib = produced.rss_before_kib;
    raw.rss_after_kib = produced.rss_after_kib;
    raw.hwm_kib = produced.peak_rss_kib;
    let s = spec(
        ctx,
        target,
        &name,
        format!("one SSE stream (auto mode, limit=100) of a fresh group while `{name} producer` sends 100 B × 1 at {rate:.0} msg/s ({why}); latency = produce request start → the event read by the client, for the {} messages sent after the warm-up", a.measured),
        Some(100),
    );
    record(
        ctx,
        s,
        format!("open loop {rate:.0}/s, 1 stream"),
        raw,
        None,
        None,
    );
    ctx.notes.push(format!(
        "{name}: {} events in {} reads of the stream ({:.1} per read; a stream that keeps up brings a few at a time)",
        a.received,
        a.reads,
        a.received as f64 / a.reads.max(1) as f64
    ));
    if missing > 0 {
        ctx.notes.push(format!(
            "{name}: {missing} of the {} measured messages produced did not arrive on the stream within 5 s of the end ({} events read in all)",
            produced.ok, a.received
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_time_is_read_back_from_an_event() {
        let data = format!(
            "{{\"Topic\":\"t.a\",\"Partition\":0,\"Offset\":3,\"Value\":\"{:020}{}\"}}",
            1234567u64,
            "x".repeat(80)
        );
        assert_eq!(sent_micros(data.as_bytes()), Some(1234567));
        assert_eq!(sent_micros(b"{\"Value\":\"xx\"}"), None);
    }
}
