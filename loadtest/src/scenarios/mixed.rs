//! Mixed load: producers and consumers on one topic at the same time, the
//! shape of a real queue. The producers' rate is compared with a native
//! producer of the same shape alone.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, Ctx, Target};
use crate::baseline;
use crate::client::Quota;
use crate::engine::Plan;
use crate::report::Spec;

const MSG_BYTES: usize = 1024;
const BATCH: usize = 10;
const LIMIT: usize = 100;

/// Runs the mixed scenario on a tenant of its own.
pub async fn run(ctx: &mut Ctx, target: &mut Target) -> Result<()> {
    let tenant = target
        .provisioner
        .tenant("mixed", Quota::unlimited(), 1, 2)
        .await?;
    let (user, password) = &tenant.users[0];
    let auth = crate::client::basic(user, password);
    let base = ctx.plan();
    let producers = Plan {
        concurrency: (base.concurrency / 2).max(1),
        ..base
    };
    let consumers = Plan {
        concurrency: 2,
        ..base
    };
    let producer = baseline::producer(&target.bootstrap, &ctx.extra, &tenant.topic).await?;
    ctx.measure(
        Spec {
            scenario: "mixed".into(),
            name: "native produce 1KiB x10 (mixed baseline)".into(),
            path: "native rdkafka".into(),
            broker: target.broker.clone(),
            settings: format!(
                "{BATCH} × {MSG_BYTES} B, alone; {}; c={}",
                baseline::describe(&ctx.extra),
                producers.concurrency
            ),
            msg_bytes: Some(MSG_BYTES),
            batch: Some(BATCH),
            limit: None,
        },
        producers,
        baseline::produce_op(
            producer,
            tenant.topic.clone(),
            Arc::new(vec![b'x'; MSG_BYTES]),
            BATCH,
        ),
        target.observe.without_pid(),
    )
    .await;
    let produce = (
        Spec {
            scenario: "mixed".into(),
            name: "mixed produce 1KiB x10".into(),
            path: ctx.http_path(),
            broker: target.broker.clone(),
            settings: format!(
                "{BATCH} × {MSG_BYTES} B while 2 consumers read limit={LIMIT}; c={}",
                producers.concurrency
            ),
            msg_bytes: Some(MSG_BYTES),
            batch: Some(BATCH),
            limit: None,
        },
        producers,
        requests::produce(
            target.pool.clone(),
            Arc::new(vec![auth.clone()]),
            &tenant.topic,
            requests::produce_body(MSG_BYTES, BATCH),
            BATCH,
            MSG_BYTES,
        ),
    );
    let consume = (
        Spec {
            scenario: "mixed".into(),
            name: "mixed consume limit 100".into(),
            path: ctx.http_path(),
            broker: target.broker.clone(),
            settings: format!("GET limit={LIMIT}, one group, while producers write; c=2; server CPU counted for both halves together"),
            msg_bytes: Some(MSG_BYTES),
            batch: None,
            limit: Some(LIMIT),
        },
        consumers,
        requests::consume(
            target.pool.clone(),
            auth,
            &tenant.topic,
            LIMIT,
            Arc::new(vec!["mixed".to_owned()]),
            MSG_BYTES,
        ),
    );
    ctx.measure_pair(produce, consume, target.observe).await;
    ctx.compare(
        "mixed produce 1KiB x10",
        "native produce 1KiB x10 (mixed baseline)",
        "messages/s",
    );
    Ok(())
}
