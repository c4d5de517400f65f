//! Memory after load: the node's RSS right after the authentication runs
//! and after a 10 KiB × 1000 produce run, then while it idles, until it is
//! back under twice its idle RSS or 30 s have passed. A process that keeps
//! its peak after the load is gone holds memory its neighbours on the
//! machine could use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{requests, Ctx, Target};
use crate::procfs;
use crate::provision::Tenant;
use crate::report::{MemoryCheck, Spec};

/// How long the node may take to give memory back.
pub const SETTLE: Duration = Duration::from_secs(30);

/// Samples the node until it is under twice `idle_kib` or [`SETTLE`] ends.
async fn settle(ctx: &mut Ctx, target: &Target, after: &str, idle_kib: u64) {
    let Some(loaded) = procfs::sample(target.observe.pid, target.observe.ticks) else {
        return;
    };
    ctx.progress
        .set_message(format!("memory: idling after {after}"));
    let started = Instant::now();
    let mut under = None;
    let mut last = loaded;
    loop {
        if last.rss_kib < idle_kib * 2 {
            under = Some(started.elapsed().as_secs_f64());
            break;
        }
        if started.elapsed() >= SETTLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        match procfs::sample(target.observe.pid, target.observe.ticks) {
            Some(sample) => last = sample,
            None => return,
        }
    }
    let check = MemoryCheck {
        after: after.to_owned(),
        idle_kib,
        loaded_kib: loaded.rss_kib,
        settled_kib: last.rss_kib,
        under_twice_idle_after_s: under,
    };
    ctx.say(format!(
        "  memory after {after}: {:.1} MiB loaded, {:.1} MiB {} (idle {:.1} MiB)",
        check.loaded_kib as f64 / 1024.0,
        check.settled_kib as f64 / 1024.0,
        match under {
            Some(s) => format!("after {s:.1} s idle"),
            None => format!("after {} s idle, still over 2× idle", SETTLE.as_secs()),
        },
        idle_kib as f64 / 1024.0,
    ));
    ctx.memory.push(check);
}

/// RSS after the authentication runs (already done), then after a
/// 10 KiB × 1000 produce run, each followed by an idle wait.
pub async fn run(ctx: &mut Ctx, target: &mut Target, tenant: &Tenant, idle_kib: Option<u64>) {
    let Some(idle_kib) = idle_kib else {
        ctx.notes
            .push("memory: skipped, the sluice process cannot be observed".into());
        return;
    };
    if ctx.find("auth warm").is_some() {
        settle(ctx, target, "the auth scenario", idle_kib).await;
    }
    let (user, password) = &tenant.users[0];
    let auths = Arc::new(vec![crate::client::basic(user, password)]);
    let plan = ctx.plan();
    let size = 10 * 1024;
    ctx.measure(
        Spec {
            scenario: "memory".into(),
            name: "memory produce 10KiB x1000".into(),
            path: ctx.http_path(),
            broker: target.broker.clone(),
            settings: format!(
                "POST /topic JSON, 1000 × 10 KiB (10 MiB bodies); c={}",
                plan.concurrency
            ),
            msg_bytes: Some(size),
            batch: Some(1000),
            limit: None,
        },
        plan,
        requests::produce(
            target.pool.clone(),
            auths,
            &tenant.topic,
            requests::produce_body(size, 1000),
            1000,
            size,
        ),
        target.observe,
    )
    .await;
    settle(ctx, target, "10 KiB × 1000 produce", idle_kib).await;
}
