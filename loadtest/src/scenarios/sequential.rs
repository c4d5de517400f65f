//! Sequential requests on one connection, one at a time, over HTTP/1.1
//! and over HTTP/2: what every polling consumer pays per request. HTTP/2
//! once took about 22 ms a request here against 1 ms for HTTP/1.1 (Nagle
//! against delayed ACKs; the node now sets TCP_NODELAY), and Go's client
//! and many others pick HTTP/2 over TLS by default.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, Ctx, Target};
use crate::cli::HttpVersion;
use crate::client::Pool;
use crate::engine::Plan;
use crate::provision::Tenant;
use crate::report::Spec;

/// The HTTP/1.1 run, the baseline of the HTTP/2 one.
pub const H1_RUN: &str = "sequential GET /me h1";
/// The HTTP/2 run.
pub const H2_RUN: &str = "sequential GET /me h2";

/// Runs `GET /me` (authenticated, warm) one request at a time on one
/// connection, over each HTTP version.
pub async fn run(ctx: &mut Ctx, target: &mut Target, tenant: &Tenant) -> Result<()> {
    let (user, password) = &tenant.users[0];
    let auths = Arc::new(vec![crate::client::basic(user, password)]);
    for (http, name) in [(HttpVersion::H1, H1_RUN), (HttpVersion::H2, H2_RUN)] {
        let pool = Pool::new(&target.pool.base, ctx.args.ca.as_deref(), http, 1, 1)?;
        let label = match http {
            HttpVersion::H1 => "sluice HTTPS/1.1",
            HttpVersion::H2 => "sluice HTTPS/2",
        };
        ctx.measure(
            Spec {
                scenario: "sequential".into(),
                name: name.into(),
                path: label.into(),
                broker: "none".into(),
                settings: "GET /me, Basic auth (warm); one connection, one request at a time"
                    .into(),
                ..Spec::default()
            },
            Plan {
                concurrency: 1,
                rate: None,
                ..ctx.plan()
            },
            requests::get(pool, "/me", Some(auths.clone())),
            target.observe,
        )
        .await;
    }
    ctx.compare(H2_RUN, H1_RUN, "p50");
    Ok(())
}
