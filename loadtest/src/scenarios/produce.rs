//! The produce sweep: message size × batch, through sluice and through a
//! native producer with the same acks, linger and bytes, run back to back.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, size_label, Ctx, Target};
use crate::baseline;
use crate::provision::Tenant;
use crate::report::Spec;

/// Sizes and batches of the sweep.
pub fn sweep(quick: bool) -> (Vec<usize>, Vec<usize>) {
    if quick {
        // The two sizes the goals name; the full sweep has the rest.
        (vec![100], vec![1, 100])
    } else {
        (vec![100, 1024, 10 * 1024], vec![1, 10, 100, 1000])
    }
}

/// Runs the sweep on the main tenant's topic.
pub async fn run(ctx: &mut Ctx, target: &mut Target, tenant: &Tenant) -> Result<()> {
    let producer = baseline::producer(&target.bootstrap, &ctx.extra, &tenant.topic).await?;
    let (user, password) = &tenant.users[0];
    let auths = Arc::new(vec![crate::client::basic(user, password)]);
    let (sizes, batches) = sweep(ctx.args.quick);
    let native_settings = baseline::describe(&ctx.extra);
    for &size in &sizes {
        for &batch in &batches {
            let label = format!("{} x{batch}", size_label(size));
            let plan = ctx.plan();
            let sluice_name = format!("produce {label}");
            let native_name = format!("native produce {label}");
            ctx.measure(
                Spec {
                    scenario: "produce".into(),
                    name: sluice_name.clone(),
                    path: ctx.http_path(),
                    broker: target.broker.clone(),
                    settings: format!(
                        "POST /topic JSON, {batch} × {size} B; sluice producer: acks=all, idempotent, linger.ms=5 + server kafka.properties; c={}",
                        plan.concurrency
                    ),
                    msg_bytes: Some(size),
                    batch: Some(batch),
                    limit: None,
                },
                plan,
                requests::produce(
                    target.pool.clone(),
                    auths.clone(),
                    &tenant.topic,
                    requests::produce_body(size, batch),
                    batch,
                    size,
                ),
                target.observe,
            )
            .await;
            ctx.measure(
                Spec {
                    scenario: "produce".into(),
                    name: native_name.clone(),
                    path: "native rdkafka".into(),
                    broker: target.broker.clone(),
                    settings: format!(
                        "{batch} × {size} B awaited together; {native_settings}; c={}",
                        plan.concurrency
                    ),
                    msg_bytes: Some(size),
                    batch: Some(batch),
                    limit: None,
                },
                plan,
                baseline::produce_op(
                    producer.clone(),
                    tenant.topic.clone(),
                    Arc::new(vec![b'x'; size]),
                    batch,
                ),
                target.observe.without_pid(),
            )
            .await;
            ctx.compare(&sluice_name, &native_name, "messages/s");
        }
    }
    Ok(())
}
