//! Batch 1 at the concurrency a fleet of clients brings. With 16 requests
//! in flight and the producer's linger, Little's law caps batch 1 near
//! 16 / 6 ms whatever sluice does; at 64 and 256 connections (and 64
//! HTTP/2 streams) on the discarding broker, the cap is sluice. Each level
//! runs the no-op route at the same concurrency, so the ratio is sluice's
//! produce path against its own HTTP and TLS floor.

use std::sync::Arc;

use anyhow::Result;

use super::{requests, Ctx, Target};
use crate::cli::HttpVersion;
use crate::client::{Pool, Quota};
use crate::engine::Plan;
use crate::report::Spec;

/// One level of the sweep: the HTTP version and the requests in flight.
#[derive(Debug, Clone, Copy)]
struct Level {
    http: HttpVersion,
    concurrency: usize,
}

impl Level {
    fn label(self) -> String {
        match self.http {
            HttpVersion::H1 => format!("h1 c={}", self.concurrency),
            HttpVersion::H2 => format!("h2 {} streams", self.concurrency),
        }
    }
}

/// The produce run of a level, for the goals and the summary.
pub fn produce_run(http: HttpVersion, concurrency: usize) -> String {
    format!(
        "sweep produce 100B x1 {}",
        Level { http, concurrency }.label()
    )
}

/// The no-op run of a level.
pub fn noop_run(http: HttpVersion, concurrency: usize) -> String {
    format!("sweep noop {}", Level { http, concurrency }.label())
}

/// Runs the sweep against the sluice in front of the discarding broker.
pub async fn run(ctx: &mut Ctx, ceiling: &mut Target) -> Result<()> {
    let tenant = ceiling
        .provisioner
        .tenant("sweep", Quota::unlimited(), 1, 2)
        .await?;
    let (user, password) = &tenant.users[0];
    let auths = Arc::new(vec![crate::client::basic(user, password)]);
    let levels = [
        (HttpVersion::H1, 16),
        (HttpVersion::H1, 64),
        (HttpVersion::H1, 256),
        (HttpVersion::H2, 64),
    ];
    for (http, concurrency) in levels {
        let level = Level { http, concurrency };
        let pool = Pool::new(
            &ceiling.pool.base,
            ctx.args.ca.as_deref(),
            http,
            concurrency,
            ctx.args.h2_connections,
        )?;
        let path = match http {
            HttpVersion::H1 => "sluice HTTPS/1.1".to_owned(),
            HttpVersion::H2 => format!("sluice HTTPS/2 ({} connections)", ctx.args.h2_connections),
        };
        let plan = Plan {
            concurrency,
            ..ctx.plan()
        };
        let noop = noop_run(http, concurrency);
        ctx.measure(
            Spec {
                scenario: "sweep".into(),
                name: noop.clone(),
                path: path.clone(),
                broker: "none".into(),
                settings: format!("GET /_noop, no auth; {}", level.label()),
                ..Spec::default()
            },
            plan,
            requests::get(pool.clone(), "/_noop", None),
            ceiling.observe,
        )
        .await;
        let produce = produce_run(http, concurrency);
        ctx.measure(
            Spec {
                scenario: "sweep".into(),
                name: produce.clone(),
                path,
                broker: "tansu null://".into(),
                settings: format!(
                    "POST /topic JSON, 1 × 100 B to a sluice whose broker discards data; {}",
                    level.label()
                ),
                msg_bytes: Some(100),
                batch: Some(1),
                limit: None,
            },
            plan,
            requests::produce(
                pool,
                auths.clone(),
                &tenant.topic,
                requests::produce_body(100, 1),
                1,
                100,
            ),
            ceiling.observe,
        )
        .await;
        ctx.compare(&produce, &noop, "requests/s");
    }
    Ok(())
}
