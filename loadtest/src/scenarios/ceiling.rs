//! The produce ceiling: the same requests against a broker that discards
//! what it receives (tansu `null://`), so that the broker is out of the
//! way and what remains is sluice (or librdkafka) itself.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, size_label, Ctx, Target};
use crate::baseline;
use crate::client::Quota;
use crate::engine::Observe;
use crate::report::Spec;

/// Runs 100 B × {1, 100} natively against the discarding broker, and
/// through the ceiling sluice when one is given.
pub async fn run(
    ctx: &mut Ctx,
    ceiling: Option<&mut Target>,
    bootstrap: &str,
    observe: Observe,
) -> Result<()> {
    let broker = format!("tansu null:// ({bootstrap})");
    let mut sluice = match ceiling {
        Some(t) => {
            let tenant = t
                .provisioner
                .tenant("ceiling", Quota::unlimited(), 1, 2)
                .await?;
            Some((t, tenant))
        }
        None => None,
    };
    let topic = match &sluice {
        Some((_, tenant)) => tenant.topic.clone(),
        None => "loadtest.ceiling".to_owned(),
    };
    // Nothing reads from the discarding broker, so tansu's read quirk does
    // not apply: the ceiling keeps librdkafka's real batching.
    let producer = baseline::producer(bootstrap, &[], &topic).await?;
    for batch in [1usize, 100] {
        let label = format!("{} x{batch}", size_label(100));
        let plan = ctx.plan();
        let native = format!("ceiling native produce {label}");
        ctx.measure(
            Spec {
                scenario: "ceiling".into(),
                name: native.clone(),
                path: "native rdkafka".into(),
                broker: broker.clone(),
                settings: format!(
                    "{batch} × 100 B; {} (default batching); c={}",
                    baseline::describe(&[]),
                    plan.concurrency
                ),
                msg_bytes: Some(100),
                batch: Some(batch),
                limit: None,
            },
            plan,
            baseline::produce_op(
                producer.clone(),
                topic.clone(),
                Arc::new(vec![b'x'; 100]),
                batch,
            ),
            observe.without_pid(),
        )
        .await;
        if let Some((target, tenant)) = sluice.as_mut() {
            let name = format!("ceiling produce {label}");
            let (user, password) = &tenant.users[0];
            ctx.measure(
                Spec {
                    scenario: "ceiling".into(),
                    name: name.clone(),
                    path: ctx.http_path(),
                    broker: broker.clone(),
                    settings: format!("POST /topic JSON, {batch} × 100 B to a sluice whose broker discards data, default batching; c={}", plan.concurrency),
                    msg_bytes: Some(100),
                    batch: Some(batch),
                    limit: None,
                },
                plan,
                requests::produce(
                    target.pool.clone(),
                    Arc::new(vec![crate::client::basic(user, password)]),
                    &tenant.topic,
                    requests::produce_body(100, batch),
                    batch,
                    100,
                ),
                target.observe,
            )
            .await;
            ctx.compare(&name, &native, "messages/s");
        }
    }
    Ok(())
}
