//! Issue 16's idempotency benchmark: `100 B × 100` produces with an
//! `Idempotency-Key` each (all unique, so each claims a key and records
//! its answer in Postgres) against the same produces without keys, back
//! to back in the same run, on the same tenant and topic. Goal: keyed
//! ≥ 0.8× unkeyed messages/s.
//!
//! Each run writes to a fresh topic of the tenant, and the runs go
//! unkeyed, keyed, keyed, unkeyed (ABBA): tansu's memory storage slows as
//! a topic grows, which would otherwise favour whichever run came first.
//! Each keyed run is compared with its neighbour, and the note gives the
//! ratio of the sums.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, Ctx, Target};
use crate::provision::Tenant;
use crate::report::Spec;

const SIZE: usize = 100;
const BATCH: usize = 100;

/// The runs, in order: (name, keyed, the run it is compared with).
pub const RUNS: [(&str, bool, Option<&str>); 4] = [
    ("produce 100B x100 no key (1)", false, None),
    (
        "produce 100B x100 with Idempotency-Key (1)",
        true,
        Some("produce 100B x100 no key (1)"),
    ),
    (
        "produce 100B x100 with Idempotency-Key (2)",
        true,
        Some("produce 100B x100 no key (2)"),
    ),
    ("produce 100B x100 no key (2)", false, None),
];

/// Messages/s of the keyed runs and of the unkeyed ones, each summed over
/// the ABBA runs so that drift within the run cancels out.
pub fn sums(measurements: &[crate::report::Measurement]) -> (f64, f64) {
    let total = |keyed: bool| -> f64 {
        RUNS.iter()
            .filter(|run| run.1 == keyed)
            .filter_map(|run| measurements.iter().find(|m| m.name == run.0))
            .map(|m| m.messages_per_s)
            .sum()
    };
    (total(true), total(false))
}

/// Runs both, unkeyed first, and compares them.
pub async fn run(ctx: &mut Ctx, target: &mut Target, tenant: &Tenant) -> Result<()> {
    let (user, password) = &tenant.users[0];
    let auths = Arc::new(vec![crate::client::basic(user, password)]);
    let body = requests::produce_body(SIZE, BATCH);
    // Keys unique to this run, so that no run replays another's answers.
    let run_id: u64 = rand::random();
    let admin = target.provisioner.admin().clone();
    for (index, (name, keyed, _)) in RUNS.into_iter().enumerate() {
        let topic = format!("{}.idem{index}", tenant.name);
        admin
            .create_topic(&tenant.name, &topic, ctx.args.partitions)
            .await?;
        let plan = ctx.plan();
        let key_note = if keyed {
            "a unique Idempotency-Key per request"
        } else {
            "no key"
        };
        let op = if keyed {
            requests::produce_keyed(
                target.pool.clone(),
                auths.clone(),
                &topic,
                body.clone(),
                (BATCH, SIZE),
                format!("lt-{run_id:016x}-{index}"),
            )
        } else {
            requests::produce(
                target.pool.clone(),
                auths.clone(),
                &topic,
                body.clone(),
                BATCH,
                SIZE,
            )
        };
        ctx.measure(
            Spec {
                scenario: "idempotency".into(),
                name: name.into(),
                path: ctx.http_path(),
                broker: target.broker.clone(),
                settings: format!(
                    "POST /topic JSON, {BATCH} × {SIZE} B, {key_note}; c={}",
                    plan.concurrency
                ),
                msg_bytes: Some(SIZE),
                batch: Some(BATCH),
                limit: None,
            },
            plan,
            op,
            target.observe,
        )
        .await;
    }
    for (name, _, baseline) in RUNS {
        if let Some(baseline) = baseline {
            ctx.compare(name, baseline, "messages/s");
        }
    }
    let (with_keys, without) = sums(&ctx.results);
    if without > 0.0 {
        ctx.notes.push(format!(
            "Idempotency keys (issue 16, goal ≥ 0.8×): 100 B × 100 with a unique Idempotency-Key per request at {:.2}× the same without keys ({with_keys:.0} against {without:.0} msg/s, summed over the ABBA runs)",
            with_keys / without
        ));
    }
    Ok(())
}
