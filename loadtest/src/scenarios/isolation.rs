//! Tenant isolation (issue 5): tenant B at a steady rate well inside its
//! quota, first alone, then while tenant A is driven at 10 times its own
//! quota. B should see no 429 and its p99 should rise by at most 20 %.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::{requests, Ctx, Target};
use crate::client::{Pool, Quota};
use crate::engine::Op;
use crate::engine::Plan;
use crate::provision::Tenant;
use crate::report::Spec;

/// A's quota, requests/s; it is driven at ten times this.
pub const A_QUOTA: u64 = 50;
/// B's quota, requests/s.
pub const B_QUOTA: u64 = 200;
/// B's steady rate: half its quota.
pub const B_RATE: f64 = 100.0;

/// Runs the isolation scenario with two tenants of its own.
pub async fn run(ctx: &mut Ctx, target: &mut Target) -> Result<()> {
    let quota = |rps| Quota {
        requests_per_second: rps,
        bytes_per_second: 10_000_000,
        burst_seconds: 1,
    };
    let a = target
        .provisioner
        .tenant("iso-a", quota(A_QUOTA), 1, 1)
        .await?;
    let b = target
        .provisioner
        .tenant("iso-b", quota(B_QUOTA), 1, 1)
        .await?;
    for route in [Route::Produce, Route::Authenticated] {
        one(ctx, target, &a, &b, route).await;
    }
    Ok(())
}

/// What tenants A and B send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `POST /topic`, 100 B × 1: the whole path, broker included.
    Produce,
    /// `GET /_noop/authenticated`: authentication and the limiter only, so
    /// that broker hiccups do not blur what A does to B.
    Authenticated,
}

fn op_for(pool: &Pool, tenant: &Tenant, route: Route) -> Op {
    let (user, password) = &tenant.users[0];
    let auths = Arc::new(vec![crate::client::basic(user, password)]);
    match route {
        Route::Produce => requests::produce(
            pool.clone(),
            auths,
            &tenant.topic,
            requests::produce_body(100, 1),
            1,
            100,
        ),
        Route::Authenticated => requests::get(pool.clone(), "/_noop/authenticated", Some(auths)),
    }
}

/// Names of the three runs of a route: B alone, B with A, A.
pub fn names(produce: bool) -> [&'static str; 3] {
    if produce {
        [
            "isolation B alone",
            "isolation B with A at 10x",
            "isolation A at 10x quota",
        ]
    } else {
        [
            "isolation (auth route) B alone",
            "isolation (auth route) B with A at 10x",
            "isolation (auth route) A at 10x quota",
        ]
    }
}

async fn one(ctx: &mut Ctx, target: &mut Target, a: &Tenant, b: &Tenant, route: Route) {
    let [alone, with, hammer] = names(route == Route::Produce);
    let what = match route {
        Route::Produce => "POST /topic 100 B × 1",
        Route::Authenticated => "GET /_noop/authenticated",
    };
    // Enough samples for a p99 worth reading, even in quick mode.
    let duration =
        Duration::from_secs_f64(ctx.duration.max(if ctx.args.quick { 3.0 } else { 5.0 }));
    let b_plan = Plan {
        concurrency: 8,
        warmup: Duration::from_secs_f64(ctx.warmup.max(1.0)),
        duration,
        rate: Some(B_RATE),
        max_requests: None,
        until_empty: None,
    };
    let a_plan = Plan {
        concurrency: 32,
        rate: Some(A_QUOTA as f64 * 10.0),
        ..b_plan
    };
    let path = ctx.http_path();
    let broker = match route {
        Route::Produce => target.broker.clone(),
        Route::Authenticated => "none".to_owned(),
    };
    let spec = |name: &str, settings: String| Spec {
        scenario: "isolation".into(),
        name: name.to_owned(),
        path: path.clone(),
        broker: broker.clone(),
        settings,
        msg_bytes: None,
        batch: None,
        limit: None,
    };
    let b_settings = format!(
        "{what}; tenant B: quota {B_QUOTA} req/s burst 1 s, driven open loop at {B_RATE:.0} req/s"
    );
    let a_settings = format!(
        "{what}; tenant A: quota {A_QUOTA} req/s burst 1 s, driven open loop at {} req/s",
        A_QUOTA * 10
    );
    ctx.measure(
        spec(alone, b_settings.clone()),
        b_plan,
        op_for(&target.pool, b, route),
        target.observe,
    )
    .await;
    let (_, a_run) = ctx
        .measure_pair(
            (
                spec(with, format!("{b_settings}; meanwhile {a_settings}")),
                b_plan,
                op_for(&target.pool, b, route),
            ),
            (
                spec(hammer, a_settings),
                a_plan,
                op_for(&target.pool, a, route),
            ),
            target.observe,
        )
        .await;
    ctx.compare(with, alone, "p99");
    ctx.notes.push(format!(
        "{hammer}: tenant A was admitted {:.1} req/s against a quota of {A_QUOTA} req/s ({} refused with 429)",
        a_run.ok_per_s,
        a_run.errors.get("429").copied().unwrap_or(0)
    ));
}
