//! Added latency at half load: sluice and the native producer driven open
//! loop at the same rate, half of sluice's closed-loop maximum for
//! 100 B × 1, so that the p99 difference is what sluice adds.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, Ctx, Target};
use crate::baseline;
use crate::engine::Plan;
use crate::provision::Tenant;
use crate::report::Spec;

/// Runs both at half of the `produce 100B x1` maximum (needs the sweep).
pub async fn run(ctx: &mut Ctx, target: &mut Target, tenant: &Tenant) -> Result<()> {
    let Some(max) = ctx.find("produce 100B x1").map(|m| m.ok_per_s) else {
        ctx.notes
            .push("half-load latency: skipped, the produce sweep did not run".into());
        return Ok(());
    };
    let rate = (max / 2.0).max(1.0);
    let plan = Plan {
        rate: Some(rate),
        concurrency: ctx.args.concurrency.max(32),
        ..ctx.plan()
    };
    let (user, password) = &tenant.users[0];
    let auths = Arc::new(vec![crate::client::basic(user, password)]);
    let settings = format!("100 B × 1, open loop at {rate:.0} req/s = half the closed-loop maximum of sluice; latency from the intended start");
    ctx.measure(
        Spec {
            scenario: "latency".into(),
            name: "half-load sluice".into(),
            path: ctx.http_path(),
            broker: target.broker.clone(),
            settings: settings.clone(),
            msg_bytes: Some(100),
            batch: Some(1),
            limit: None,
        },
        plan,
        requests::produce(
            target.pool.clone(),
            auths,
            &tenant.topic,
            requests::produce_body(100, 1),
            1,
            100,
        ),
        target.observe,
    )
    .await;
    let producer = baseline::producer(&target.bootstrap, &ctx.extra, &tenant.topic).await?;
    ctx.measure(
        Spec {
            scenario: "latency".into(),
            name: "half-load native".into(),
            path: "native rdkafka".into(),
            broker: target.broker.clone(),
            settings: format!("{settings}; {}", baseline::describe(&ctx.extra)),
            msg_bytes: Some(100),
            batch: Some(1),
            limit: None,
        },
        plan,
        baseline::produce_op(producer, tenant.topic.clone(), Arc::new(vec![b'x'; 100]), 1),
        target.observe.without_pid(),
    )
    .await;
    ctx.compare("half-load sluice", "half-load native", "p99");
    Ok(())
}
