//! Tenant isolation. Issue 5: tenant B at a steady rate well inside its
//! quota, first alone, then while tenant A is driven at 10 times its own
//! quota; B should see no 429 and its p99 should rise by at most 20 %.
//! Issues 12 and 13 (`attacks`): B at half its quota, alone, then during
//! each attack on the front door, by a neighbour or by an operator; B
//! should keep 100 % success and a p99 at most twice its baseline, and the
//! node should not restart.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::attacks::{Arena, Attack, BASELINE, BASELINE_RELOGIN};
use super::{attacks, requests, Ctx, Target};
use crate::background::Background;
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

/// B's rate during the attack runs: half its quota, half of it produce
/// (100 B × 1) and half consume (`limit=1`) on its own topic.
const B_ATTACK_RATE: f64 = B_QUOTA as f64 / 2.0;

/// B's mixed load: even requests produce, odd ones consume.
fn b_mixed(pool: &Pool, b: &Tenant) -> Op {
    let (user, password) = &b.users[0];
    let auth = crate::client::basic(user, password);
    let produce = requests::produce(
        pool.clone(),
        Arc::new(vec![auth.clone()]),
        &b.topic,
        requests::produce_body(100, 1),
        1,
        100,
    );
    let consume = requests::consume(
        pool.clone(),
        auth,
        &b.topic,
        1,
        Arc::new(vec!["b".to_owned()]),
        100,
    );
    Arc::new(move |worker, seq| {
        if seq % 2 == 0 {
            produce(worker, seq / 2)
        } else {
            consume(worker, seq / 2)
        }
    })
}

/// Whether the sluice process is there, by pid; `None` when not observed.
fn node_alive(target: &Target) -> Option<bool> {
    let pid = target.observe.pid?;
    Some(std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// The attack runs of issues 12 and 13: tenant B at half its quota, alone,
/// then during each attack in turn, all in this run; every attacker load
/// is recorded too, with its refusals.
pub async fn attacks(ctx: &mut Ctx, target: &mut Target, selected: &[Attack]) -> Result<()> {
    let selected: Vec<Attack> = Attack::ALL
        .into_iter()
        .filter(|a| selected.is_empty() || selected.contains(a))
        .collect();
    if selected.is_empty() {
        return Ok(());
    }
    ctx.progress.set_message("provisioning the attack tenants");
    let quota = |rps| Quota {
        requests_per_second: rps,
        bytes_per_second: 10_000_000,
        burst_seconds: 1,
    };
    let b = target
        .provisioner
        .tenant("atk-b", quota(B_QUOTA), 1, 1)
        .await?;
    let a = target
        .provisioner
        .tenant("atk-a", quota(attacks::A_QUOTA), 1, 1)
        .await?;
    let admin = target.provisioner.admin().clone();
    let wide = format!("{}.wide", a.name);
    let empty = format!("{}.empty", a.name);
    let recreated = format!("{}.recreated", a.name);
    admin
        .create_topic(&a.name, &wide, attacks::WIDE_PARTITIONS)
        .await?;
    admin.create_topic(&a.name, &empty, 1).await?;
    admin.create_topic(&a.name, &recreated, 4).await?;
    let arena = Arena {
        a_pool: Pool::bound(
            &ctx.args.url,
            ctx.args.ca.as_deref(),
            attacks::a_address(),
            1100,
        )?,
        b,
        a,
        wide,
        empty,
        recreated,
        admin,
        base: ctx.args.url.trim_end_matches('/').to_owned(),
        ca: ctx.args.ca.clone(),
        path: ctx.http_path(),
    };
    // A's topics hold something to read: a few messages for the churned
    // groups, one per partition on the wide topic.
    let (a_user, a_password) = &arena.a.users[0];
    let a_auth = Arc::new(vec![crate::client::basic(a_user, a_password)]);
    let fill = [
        requests::produce(
            arena.a_pool.clone(),
            a_auth.clone(),
            &arena.a.topic,
            requests::produce_body(100, 10),
            10,
            100,
        ),
        requests::produce(
            arena.a_pool.clone(),
            a_auth,
            &arena.wide,
            attacks::one_per_partition(attacks::WIDE_PARTITIONS),
            attacks::WIDE_PARTITIONS as usize,
            100,
        ),
    ];
    for op in fill {
        let outcome = op(0, 0).await;
        anyhow::ensure!(
            outcome.status == crate::engine::Status::Ok,
            "filling tenant A's topics: {:?}",
            outcome.status
        );
    }

    let duration =
        Duration::from_secs_f64(ctx.duration.max(if ctx.args.quick { 3.0 } else { 5.0 }));
    let plan = Plan {
        concurrency: 16,
        warmup: Duration::from_secs_f64(ctx.warmup.max(1.0)),
        duration,
        rate: Some(B_ATTACK_RATE),
        max_requests: None,
        until_empty: None,
    };
    let settings = format!(
        "tenant B (quota {B_QUOTA} req/s): POST 100 B × 1 and GET limit=1 on its own topic, alternately, open loop at {B_ATTACK_RATE:.0} req/s in all, from the main pool"
    );
    b_run(ctx, target, &arena, BASELINE, &settings, plan, false).await;
    if selected.iter().any(|a| a.drops_login()) {
        b_run(ctx, target, &arena, BASELINE_RELOGIN, &settings, plan, true).await;
    }
    for attack in selected {
        let loads = match arena.loads(attack) {
            Ok(loads) => loads,
            Err(e) => {
                ctx.notes
                    .push(format!("attack {} not run: {e:#}", attack.id()));
                continue;
            }
        };
        let alive_before = node_alive(target);
        ctx.progress
            .set_message(format!("attack {}: building up", attack.id()));
        let background = Background::start(loads, target.observe);
        tokio::time::sleep(Duration::from_secs_f64(attack.ramp())).await;
        let name = attack.b_run();
        let during = format!("{settings}; meanwhile {}", attack.title());
        b_run(
            ctx,
            target,
            &arena,
            &name,
            &during,
            plan,
            attack.drops_login(),
        )
        .await;
        for m in background.stop() {
            ctx.finish(&m);
            ctx.results.push(m);
        }
        ctx.compare(&name, attack.baseline(), "p99");
        let alive_after = node_alive(target);
        if let (Some(true), Some(false)) = (alive_before, alive_after) {
            let note = format!(
                "attack {}: the sluice process (pid {}) is gone",
                attack.id(),
                target.observe.pid.unwrap_or(0)
            );
            ctx.progress.println(format!("  WARNING: {note}"));
            ctx.notes.push(note);
        }
        if alive_after == Some(false) {
            break;
        }
        // Let the node settle: connections closing, reads ending.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// One measured run of B; with `drop_login`, B's cached login is dropped
/// half a second into the measured window, so B logs in again mid-run.
async fn b_run(
    ctx: &mut Ctx,
    target: &Target,
    arena: &Arena,
    name: &str,
    settings: &str,
    plan: Plan,
    drop_login: bool,
) {
    let dropper = drop_login.then(|| {
        let admin = arena.admin.clone();
        let tenant = arena.b.name.clone();
        let user = arena.b.users[0].0.clone();
        let after = plan.warmup + Duration::from_millis(500);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            admin.drop_cached_login(&tenant, &user).await
        })
    });
    let settings = if drop_login {
        format!("{settings}; B's cached login dropped 0.5 s into the measured window")
    } else {
        settings.to_owned()
    };
    ctx.measure(
        Spec {
            scenario: "isolation".into(),
            name: name.to_owned(),
            path: ctx.http_path(),
            broker: target.broker.clone(),
            settings,
            msg_bytes: Some(100),
            batch: Some(1),
            limit: Some(1),
        },
        plan,
        b_mixed(&target.pool, &arena.b),
        target.observe,
    )
    .await;
    if let Some(dropper) = dropper {
        match dropper.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => ctx
                .notes
                .push(format!("{name}: dropping B's login failed: {e:#}")),
            Err(e) => ctx
                .notes
                .push(format!("{name}: dropping B's login failed: {e}")),
        }
    }
}
