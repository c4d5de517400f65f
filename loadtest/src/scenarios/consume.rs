//! Consume with `limit` ∈ {1000, 100, 1} from a pre-filled topic, each
//! limit with a fresh group, against a native consumer reading the same
//! topic from the beginning; and manual-ack mode (`limit=100&ack=manual`
//! followed by an ack of each receipt) against auto mode `limit=100`.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, Ctx, Target};
use crate::baseline;
use crate::client::Quota;
use crate::engine::Plan;
use crate::report::Spec;

/// Message size of the pre-filled topic.
pub const MSG_BYTES: usize = 100;
const PARTITIONS: u32 = 4;

/// Runs the consume scenario on a tenant of its own.
pub async fn run(ctx: &mut Ctx, target: &mut Target) -> Result<()> {
    let tenant = target
        .provisioner
        .tenant("consume", Quota::unlimited(), 1, PARTITIONS)
        .await?;
    let prefill = ctx
        .args
        .prefill
        .unwrap_or(if ctx.args.quick { 20_000 } else { 250_000 });
    let producer = baseline::prefill_producer(&target.bootstrap, &ctx.extra, &tenant.topic).await?;
    ctx.progress.set_message(format!(
        "pre-filling {} with {prefill} messages",
        tenant.topic
    ));
    let started = std::time::Instant::now();
    baseline::prefill(&producer, &tenant.topic, &[b'x'; MSG_BYTES], prefill).await?;
    ctx.notes.push(format!(
        "consume topic pre-filled with {prefill} × {MSG_BYTES} B over {PARTITIONS} partitions by the native producer in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let (user, password) = &tenant.users[0];
    let auth = crate::client::basic(user, password);
    // limit=1000 first: its group reads from Kafka. The groups after it may
    // be served (in part) from sluice's cache of recent messages, and the
    // notes say how much.
    for limit in [1000usize, 100, 1] {
        let cached_before = target.cached_messages(&tenant.name).await;
        // Each limit drains the whole backlog with a fresh group and is
        // timed over the drain: a warm-up would read part of it unmeasured
        // (with large limits, all of it). The first GET of a new group pays
        // for its cursors, as it does in production.
        let base = Plan {
            warmup: std::time::Duration::ZERO,
            // A slow drain (limit=1) is cut short: its rate is known by then.
            duration: std::time::Duration::from_secs_f64((ctx.duration * 2.5).max(5.0)),
            ..ctx.plan()
        };
        // One GET per partition at a time: more would only get empty answers,
        // since a group's partition is held by one GET at a time.
        let plan = Plan {
            concurrency: PARTITIONS as usize,
            until_empty: Some(3),
            ..base
        };
        let name = format!("consume limit {limit}");
        let native_name = format!("native consume {limit}");
        ctx.measure(
            Spec {
                scenario: "consume".into(),
                name: name.clone(),
                path: ctx.http_path(),
                broker: target.broker.clone(),
                settings: format!("GET /topic?limit={limit}, one fresh group draining {prefill} × {MSG_BYTES} B messages on {PARTITIONS} partitions; c={PARTITIONS}"),
                msg_bytes: Some(MSG_BYTES),
                batch: None,
                limit: Some(limit),
            },
            plan,
            requests::consume(
                target.pool.clone(),
                auth.clone(),
                &tenant.topic,
                limit,
                Arc::new(vec![format!("c{limit}")]),
                MSG_BYTES,
            ),
            target.observe,
        )
        .await;
        let cached = target
            .cached_messages(&tenant.name)
            .await
            .saturating_sub(cached_before);
        ctx.notes.push(format!(
            "{name}: {cached} messages came from sluice's cache of recent messages, the rest from Kafka"
        ));
        let consumer =
            baseline::consumer(&target.bootstrap, &ctx.extra, &tenant.topic, PARTITIONS).await?;
        let native_plan = Plan {
            concurrency: 1,
            max_requests: Some((prefill / limit) as u64),
            warmup: std::time::Duration::ZERO,
            ..base
        };
        ctx.measure(
            Spec {
                scenario: "consume".into(),
                name: native_name.clone(),
                path: "native rdkafka".into(),
                broker: target.broker.clone(),
                settings: format!("StreamConsumer assigned to all {PARTITIONS} partitions from the beginning, {limit} messages per operation; c=1"),
                msg_bytes: Some(MSG_BYTES),
                batch: None,
                limit: Some(limit),
            },
            native_plan,
            baseline::consume_op(Arc::new(tokio::sync::Mutex::new(consumer)), limit),
            target.observe.without_pid(),
        )
        .await;
        ctx.compare(&name, &native_name, "messages/s");
        if limit == MANUAL_LIMIT {
            manual(ctx, target, &tenant.topic, &auth, prefill, base, &name).await;
        }
    }
    if ctx.args.wants("peer") {
        super::peer::consume(ctx, target, &tenant.topic, prefill, MSG_BYTES).await?;
    }
    Ok(())
}

/// The limit of the manual-ack run, compared with auto mode's run of the
/// same limit.
pub const MANUAL_LIMIT: usize = 100;

/// Name of the manual-ack run.
pub const MANUAL_RUN: &str = "consume manual limit 100";

/// Manual-ack mode drains the same backlog with a fresh group: each
/// operation is a GET with `ack=manual` and the ack of its receipt.
async fn manual(
    ctx: &mut Ctx,
    target: &Target,
    topic: &str,
    auth: &str,
    prefill: usize,
    base: Plan,
    auto_name: &str,
) {
    let plan = Plan {
        concurrency: PARTITIONS as usize,
        until_empty: Some(3),
        ..base
    };
    let tenant = topic.split_once('.').map_or(topic, |(t, _)| t);
    let cached_before = target.cached_messages(tenant).await;
    ctx.measure(
        Spec {
            scenario: "consume".into(),
            name: MANUAL_RUN.into(),
            path: ctx.http_path(),
            broker: target.broker.clone(),
            settings: format!("GET /topic?limit={MANUAL_LIMIT}&ack=manual then POST /topic/…/ack of its receipt, one fresh group draining {prefill} × {MSG_BYTES} B messages on {PARTITIONS} partitions; c={PARTITIONS}"),
            msg_bytes: Some(MSG_BYTES),
            batch: None,
            limit: Some(MANUAL_LIMIT),
        },
        plan,
        requests::consume_manual(
            target.pool.clone(),
            auth.to_owned(),
            topic,
            MANUAL_LIMIT,
            "manual100",
            MSG_BYTES,
        ),
        target.observe,
    )
    .await;
    let cached = target
        .cached_messages(tenant)
        .await
        .saturating_sub(cached_before);
    ctx.notes.push(format!(
        "{MANUAL_RUN}: {cached} messages came from sluice's cache of recent messages, the rest from Kafka"
    ));
    ctx.compare(MANUAL_RUN, auto_name, "messages/s");
}
