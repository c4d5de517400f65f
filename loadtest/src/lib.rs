//! `sluice-loadtest`: drives a running sluice with the scenarios of the
//! load-test issue, runs native-Kafka and no-op baselines in the same run,
//! and writes the ratios as a table, JSON, and a Markdown report with SVG
//! charts. Figures are only worth comparing within one run: machines are
//! shared and noisy.

mod background;
mod baseline;
pub mod cli;
mod client;
mod engine;
mod goals;
mod procfs;
mod provision;
mod report;
mod scenarios;
mod slow;
mod stream_client;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

pub use crate::cli::Args;
use crate::client::Quota;
use crate::report::Report;
use crate::scenarios::{Ctx, Target};

fn properties(args: &Args) -> Result<Vec<(String, String)>> {
    args.kafka_properties
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => bail!("--kafka-property {kv}: expected KEY=VALUE"),
        })
        .collect()
}

/// Runs everything, writes the report to `args.out`, and returns the
/// number of unexpected failed requests.
pub async fn run(args: Args) -> Result<u64> {
    let extra = properties(&args)?;
    let ticks = procfs::ticks_per_second();
    let broker = if extra.is_empty() {
        args.broker_label.clone()
    } else {
        format!(
            "{} ({}; clients: {})",
            args.broker_label,
            args.bootstrap,
            extra
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut target = Target::new(
        &args,
        &args.url,
        &args.admin_url,
        args.sluice_pid,
        &args.bootstrap,
        &broker,
        ticks,
    )?;
    let mut ceiling = match (&args.ceiling_url, &args.ceiling_admin_url) {
        (Some(url), Some(admin)) => Some(Target::new(
            &args,
            url,
            admin,
            args.ceiling_pid,
            args.ceiling_bootstrap.as_deref().unwrap_or(&args.bootstrap),
            "tansu null://",
            ticks,
        )?),
        _ => None,
    };
    let idle = procfs::sample(args.sluice_pid, ticks);
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} runs done · {msg}")
            .context("progress template")?,
    );
    progress.enable_steady_tick(Duration::from_millis(120));
    let quick = args.quick;
    let mut ctx = Ctx {
        duration: args.duration.unwrap_or(if quick { 2.0 } else { 10.0 }),
        warmup: args.warmup.unwrap_or(if quick { 0.5 } else { 2.0 }),
        args,
        extra,
        results: Vec::new(),
        notes: Vec::new(),
        progress: progress.clone(),
        memory: Vec::new(),
    };
    let started = chrono::Utc::now();
    let machine = report::machine();
    if let Some(idle) = idle {
        ctx.notes.push(format!(
            "sluice RSS before any load: {:.1} MiB (peak so far {:.1} MiB)",
            idle.rss_kib as f64 / 1024.0,
            idle.hwm_kib as f64 / 1024.0
        ));
    }
    let idle_kib = idle.map(|s| s.rss_kib);
    let outcome = scenarios(&mut ctx, &mut target, ceiling.as_mut(), idle_kib).await;
    progress.set_message("cleaning up");
    target.provisioner.cleanup().await;
    if let Some(c) = ceiling.as_mut() {
        c.provisioner.cleanup().await;
    }
    progress.finish_and_clear();
    if let Some(end) = procfs::sample(ctx.args.sluice_pid, ticks) {
        ctx.notes.push(format!(
            "sluice peak RSS over the whole run (VmHWM): {:.1} MiB",
            end.hwm_kib as f64 / 1024.0
        ));
    }
    if let Err(e) = &outcome {
        ctx.notes.push(format!("the run stopped early: {e:#}"));
    }
    let mut report = Report {
        started: started.to_rfc3339(),
        machine,
        target: format!("{} ({:?})", ctx.args.url, ctx.args.http),
        broker,
        quick,
        measurements: ctx.results,
        goals: Vec::new(),
        notes: ctx.notes,
        memory: ctx.memory,
    };
    report.goals = goals::evaluate(&report, idle.map(|s| s.rss_kib));
    println!("{}", report::table::render(&report));
    report.write(&ctx.args.out)?;
    println!(
        "results: {}/report.md, results.json and SVG charts",
        ctx.args.out.display()
    );
    outcome?;
    // Refusals of the tenant driven over its quota, and of attackers, are
    // the point of those runs.
    Ok(report
        .measurements
        .iter()
        .filter(|m| !(m.scenario == "isolation" && m.name.contains(" A at 10x")))
        .filter(|m| m.scenario != scenarios::attacks::ATTACKER_SCENARIO)
        .map(|m| m.error_count())
        .sum())
}

async fn scenarios(
    ctx: &mut Ctx,
    target: &mut Target,
    mut ceiling: Option<&mut Target>,
    idle_kib: Option<u64>,
) -> Result<()> {
    ctx.progress.set_message("provisioning the main tenant");
    let main = target
        .provisioner
        .tenant("main", Quota::unlimited(), 1, ctx.args.partitions)
        .await?;
    ctx.progress.println(format!(
        "provisioned tenant {} (topic {})",
        main.name, main.topic
    ));
    scenarios::noop::run(ctx, target, &main).await;
    if ctx.args.wants("sequential") {
        scenarios::sequential::run(ctx, target, &main).await?;
    }
    if ctx.args.wants("produce") {
        scenarios::produce::run(ctx, target, &main).await?;
    }
    if ctx.args.wants("idempotency") {
        scenarios::idempotency::run(ctx, target, &main).await?;
    }
    if ctx.args.wants("latency") {
        scenarios::latency::run(ctx, target, &main).await?;
    }
    if ctx.args.wants("isolation") {
        scenarios::isolation::run(ctx, target).await?;
    }
    if ctx.args.wants("auth") {
        scenarios::auth::run(ctx, target).await?;
    }
    // Right after auth: its RSS is the first memory check.
    if ctx.args.wants("memory") {
        scenarios::memory::run(ctx, target, &main, idle_kib).await;
    }
    if ctx.args.wants("ceiling") {
        if let Some(bootstrap) = ctx.args.ceiling_bootstrap.clone() {
            let observe = ceiling.as_ref().map_or(target.observe, |c| c.observe);
            scenarios::ceiling::run(ctx, ceiling.as_deref_mut(), &bootstrap, observe).await?;
        }
    }
    if ctx.args.wants("peer") {
        match ceiling.as_deref_mut() {
            Some(null) => scenarios::peer::run(ctx, null).await?,
            None => ctx
                .notes
                .push("peer: skipped, no sluice in front of a discarding broker".into()),
        }
    }
    if ctx.args.wants("sweep") {
        match ceiling {
            Some(null) => scenarios::sweep::run(ctx, null).await?,
            None => ctx
                .notes
                .push("sweep: skipped, no sluice in front of a discarding broker".into()),
        }
    }
    // The read path last: a crash there must not cost the other figures.
    if ctx.args.wants("consume") {
        scenarios::consume::run(ctx, target).await?;
    }
    if ctx.args.wants("mixed") {
        scenarios::mixed::run(ctx, target).await?;
    }
    if ctx.args.wants("fanin") {
        scenarios::fanin::run(ctx, target).await?;
    }
    // After consume: its `consume limit 100` is the streams' baseline.
    if ctx.args.wants("streams") {
        scenarios::streams::run(ctx, target).await?;
    }
    // The attacks last of all: one of them has been seen to crash a node.
    if ctx.args.wants("isolation") || ctx.args.wants_only("attacks") {
        let selected = ctx.args.attacks.clone();
        scenarios::isolation::attacks(ctx, target, &selected).await?;
    }
    Ok(())
}
