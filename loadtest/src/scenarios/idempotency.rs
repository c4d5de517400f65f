//! Issue 16's idempotency benchmark: `100 B × 100` produces with an
//! `Idempotency-Key` each (all unique, so each claims a key and records
//! its answer in Postgres) against the same produces without keys, back
//! to back in the same run, on the same tenant and topic. Goal: keyed
//! ≥ 0.8× unkeyed messages/s.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, Ctx, Target};
use crate::provision::Tenant;
use crate::report::Spec;

const SIZE: usize = 100;
const BATCH: usize = 100;

/// The unkeyed run's name.
pub const PLAIN: &str = "produce 100B x100 (idempotency baseline, no key)";
/// The keyed run's name.
pub const KEYED: &str = "produce 100B x100 with Idempotency-Key";

/// Runs both, unkeyed first, and compares them.
pub async fn run(ctx: &mut Ctx, target: &mut Target, tenant: &Tenant) -> Result<()> {
    let (user, password) = &tenant.users[0];
    let auths = Arc::new(vec![crate::client::basic(user, password)]);
    let body = requests::produce_body(SIZE, BATCH);
    // Keys unique to this run, so that no run replays another's answers.
    let run_id: u64 = rand::random();
    for (name, keyed) in [(PLAIN, false), (KEYED, true)] {
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
                &tenant.topic,
                body.clone(),
                (BATCH, SIZE),
                format!("lt-{run_id:016x}"),
            )
        } else {
            requests::produce(
                target.pool.clone(),
                auths.clone(),
                &tenant.topic,
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
    ctx.compare(KEYED, PLAIN, "messages/s");
    Ok(())
}
