//! Cold authentication (each request a user not yet cached, so argon2
//! runs) against a warm cache, both on the authenticated no-op route so
//! that Kafka stays out of the figure.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, Ctx, Target};
use crate::client::Quota;
use crate::engine::Plan;
use crate::report::Spec;

/// Runs cold and warm authentication with a tenant of distinct users.
pub async fn run(ctx: &mut Ctx, target: &mut Target) -> Result<()> {
    let users = if ctx.args.quick { 24 } else { 100 };
    ctx.progress
        .set_message(format!("creating {users} users (argon2 each)"));
    let tenant = target
        .provisioner
        .tenant("auth", Quota::unlimited(), users, 1)
        .await?;
    let auths = Arc::new(
        tenant
            .users
            .iter()
            .map(|(u, p)| crate::client::basic(u, p))
            .collect::<Vec<_>>(),
    );
    let base = ctx.plan();
    ctx.measure(
        Spec {
            scenario: "auth".into(),
            name: "auth cold".into(),
            path: ctx.http_path(),
            broker: "none".into(),
            settings: format!("GET /_noop/authenticated, {users} distinct users, each once: every request is a cache miss (argon2id m=19 MiB t=2)"),
            ..Spec::default()
        },
        Plan {
            concurrency: 4,
            max_requests: Some(users as u64),
            rate: None,
            duration: std::time::Duration::from_secs(300),
            ..base
        },
        requests::get(target.pool.clone(), "/_noop/authenticated", Some(auths.clone())),
        target.observe,
    )
    .await;
    ctx.measure(
        Spec {
            scenario: "auth".into(),
            name: "auth warm".into(),
            path: ctx.http_path(),
            broker: "none".into(),
            settings: format!("GET /_noop/authenticated, the same {users} users again: every request is a cache hit"),
            ..Spec::default()
        },
        base,
        requests::get(target.pool.clone(), "/_noop/authenticated", Some(auths)),
        target.observe,
    )
    .await;
    ctx.compare("auth cold", "auth warm", "requests/s");
    ctx.compare("auth warm", "noop", "requests/s");
    Ok(())
}
