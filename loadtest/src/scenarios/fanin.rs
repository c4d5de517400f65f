//! Fan-in: many consumer groups reading one topic, to watch what each
//! group's cursors and the reader pool cost in throughput and memory,
//! against one group on the same topic.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, Ctx, Target};
use crate::baseline;
use crate::client::Quota;
use crate::engine::Plan;
use crate::report::Spec;

const MSG_BYTES: usize = 100;
const LIMIT: usize = 10;

/// Runs one group, then many groups, on a pre-filled topic.
pub async fn run(ctx: &mut Ctx, target: &mut Target) -> Result<()> {
    let groups = ctx
        .args
        .groups
        .unwrap_or(if ctx.args.quick { 100 } else { 1000 });
    let tenant = target
        .provisioner
        .tenant("fanin", Quota::unlimited(), 1, 2)
        .await?;
    let producer = baseline::prefill_producer(&target.bootstrap, &ctx.extra, &tenant.topic).await?;
    let prefill = if ctx.args.quick { 10_000 } else { 40_000 };
    ctx.progress.set_message(format!(
        "pre-filling {} with {prefill} messages",
        tenant.topic
    ));
    baseline::prefill(&producer, &tenant.topic, &[b'x'; MSG_BYTES], prefill).await?;
    let (user, password) = &tenant.users[0];
    let auth = crate::client::basic(user, password);
    let plan = Plan {
        rate: None,
        ..ctx.plan()
    };
    ctx.measure(
        Spec {
            scenario: "fanin".into(),
            name: "fan-in 1 group".into(),
            path: ctx.http_path(),
            broker: target.broker.clone(),
            settings: format!(
                "GET limit={LIMIT}, one group, 2 partitions; c={}",
                plan.concurrency
            ),
            msg_bytes: Some(MSG_BYTES),
            batch: None,
            limit: Some(LIMIT),
        },
        plan,
        requests::consume(
            target.pool.clone(),
            auth.clone(),
            &tenant.topic,
            LIMIT,
            Arc::new(vec!["one".to_owned()]),
            MSG_BYTES,
        ),
        target.observe,
    )
    .await;
    let names: Vec<String> = (0..groups).map(|g| format!("g{g}")).collect();
    let name = format!("fan-in {groups} groups");
    let cached_before = target.cached_messages(&tenant.name).await;
    let m = ctx
        .measure(
            Spec {
                scenario: "fanin".into(),
                name: name.clone(),
                path: ctx.http_path(),
                broker: target.broker.clone(),
                settings: format!(
                    "GET limit={LIMIT}, {groups} groups round-robin, 2 partitions; c={}",
                    plan.concurrency
                ),
                msg_bytes: Some(MSG_BYTES),
                batch: None,
                limit: Some(LIMIT),
            },
            plan,
            requests::consume(
                target.pool.clone(),
                auth,
                &tenant.topic,
                LIMIT,
                Arc::new(names),
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
        "{name}: sluice served {cached} messages from its cache of recent messages (warm-up included; {} were measured)",
        m.messages
    ));
    ctx.compare(&name, "fan-in 1 group", "messages/s");
    if let (Some(before), Some(after)) = (m.rss_before_kib, m.rss_after_kib) {
        ctx.notes.push(format!(
            "fan-in: RSS went from {:.1} MiB to {:.1} MiB with {groups} active groups ({:+.1} MiB)",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after as f64 - before as f64) / 1024.0
        ));
    }
    Ok(())
}
