//! The no-op routes: the same sluice binary answering 204 with nothing but
//! HTTP and TLS (`/_noop`), or with authentication and the rate limiter
//! too (`/_noop/authenticated`). They separate the HTTP/TLS tax and the
//! auth cost from the Kafka path.

use std::sync::Arc;

use super::{requests, Ctx, Target};
use crate::provision::Tenant;
use crate::report::Spec;

/// Runs both no-op baselines with the main tenant's user.
pub async fn run(ctx: &mut Ctx, target: &mut Target, tenant: &Tenant) {
    let auths = Arc::new(
        tenant
            .users
            .iter()
            .map(|(u, p)| crate::client::basic(u, p))
            .collect::<Vec<_>>(),
    );
    let path = ctx.http_path();
    let settings = format!("no Kafka; c={}", ctx.args.concurrency);
    let plan = ctx.plan();
    ctx.measure(
        Spec {
            scenario: "noop".into(),
            name: "noop".into(),
            path: path.clone(),
            broker: "none".into(),
            settings: format!("GET /_noop, no auth; {settings}"),
            ..Spec::default()
        },
        plan,
        requests::get(target.pool.clone(), "/_noop", None),
        target.observe,
    )
    .await;
    ctx.measure(
        Spec {
            scenario: "noop".into(),
            name: "noop-authenticated".into(),
            path,
            broker: "none".into(),
            settings: format!(
                "GET /_noop/authenticated, Basic auth (warm cache) + rate limiter; {settings}"
            ),
            ..Spec::default()
        },
        plan,
        requests::get(target.pool.clone(), "/_noop/authenticated", Some(auths)),
        target.observe,
    )
    .await;
    ctx.compare("noop-authenticated", "noop", "requests/s");
}
