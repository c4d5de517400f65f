//! Sequential requests on one connection, one at a time, over HTTP/1.1
//! and over HTTP/2: what every polling consumer pays per request. HTTP/2
//! once took about 22 ms a request here against 1 ms for HTTP/1.1 (Nagle
//! against delayed ACKs; the node now sets TCP_NODELAY), and Go's client
//! and many others pick HTTP/2 over TLS by default.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
    // The issue's own measurement: curl, many URLs on one connection.
    let mut means = Vec::new();
    for version in ["--http1.1", "--http2"] {
        let best = curl_mean(ctx, &target.pool.base, (user, password), version).await;
        means.push(best);
    }
    if let [Some(h1), Some(h2)] = means[..] {
        ctx.notes.push(format!(
            "sequential GET /me with curl ({CURL_REQUESTS} on one connection, best of 3): {:.3} ms a request over HTTP/1.1, {:.3} ms over HTTP/2 ({:.2}×)",
            h1.as_secs_f64() * 1000.0,
            h2.as_secs_f64() * 1000.0,
            h2.as_secs_f64() / h1.as_secs_f64()
        ));
    }
    Ok(())
}

/// Requests per curl run.
const CURL_REQUESTS: u32 = 200;

/// The mean time per request of `curl` fetching `GET /me` [`CURL_REQUESTS`]
/// times on one connection, best of three runs; `None` without curl.
async fn curl_mean(
    ctx: &Ctx,
    base: &str,
    (user, password): (&str, &str),
    version: &str,
) -> Option<Duration> {
    let url = format!("{base}/me");
    let mut best: Option<Duration> = None;
    for _ in 0..3 {
        let mut command = tokio::process::Command::new("curl");
        command
            .args(["-s", "-o", "/dev/null", "--fail", version])
            .arg("-u")
            .arg(format!("{user}:{password}"));
        if let Some(ca) = &ctx.args.ca {
            command.arg("--cacert").arg(ca);
        }
        for _ in 0..CURL_REQUESTS {
            command.arg(&url);
        }
        let started = Instant::now();
        let status = command.status().await.ok()?;
        let took = started.elapsed() / CURL_REQUESTS;
        if !status.success() {
            return None;
        }
        best = Some(best.map_or(took, |b| b.min(took)));
    }
    best
}
