//! The Markdown report: tables and charts people read in a browser.

use std::fmt::Write as _;

use super::charts::Chart;
use super::table::{errors, ms, rate, ratio};
use super::Report;

/// Renders the whole report.
pub fn render(report: &Report, charts: &[Chart]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# sluice load test, {}\n", report.started);
    let _ = writeln!(s, "- machine: {}", report.machine);
    let _ = writeln!(s, "- target: {}", report.target);
    let _ = writeln!(s, "- broker: {}", report.broker);
    let _ = writeln!(
        s,
        "- mode: {}\n",
        if report.quick { "quick" } else { "full sweep" }
    );
    for note in &report.notes {
        let _ = writeln!(s, "- {note}");
    }
    let _ = writeln!(s, "\n## Goals (reported, not asserted)\n");
    goals_table(&mut s, report);
    let _ = writeln!(s, "\n## Runs\n");
    let _ = writeln!(
        s,
        "| run | path | mode | msg/s | req/s | MB/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | server CPU s | msg/CPU-s | peak RSS MiB | ratio |"
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for m in &report.measurements {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.name,
            m.path,
            m.mode,
            rate(m.messages_per_s),
            rate(m.ok_per_s),
            m.mb_per_s,
            ms(m.latency_us.p50),
            ms(m.latency_us.p90),
            ms(m.latency_us.p99),
            ms(m.latency_us.p999),
            errors(m),
            m.cpu_seconds.map(|c| format!("{c:.2}")).unwrap_or_default(),
            m.messages_per_cpu_s.map(rate).unwrap_or_default(),
            m.peak_rss_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or_default(),
            ratio(m),
        );
    }
    let _ = writeln!(s, "\n### Settings of each run\n");
    let _ = writeln!(s, "| run | broker | settings |\n|---|---|---|");
    for m in &report.measurements {
        let _ = writeln!(s, "| {} | {} | {} |", m.name, m.broker, m.settings);
    }
    if !charts.is_empty() {
        let _ = writeln!(s, "\n## Charts\n");
        for c in charts {
            let _ = writeln!(s, "![{}]({})\n\n{}\n", c.caption, c.file, c.caption);
        }
    }
    s
}

/// The goals as one table: the goal, what it was measured against and
/// the ratio, and whether it is met.
fn goals_table(s: &mut String, report: &Report) {
    let _ = writeln!(
        s,
        "| goal | latest figure (ratio, and its anchor) | met |\n|---|---|---|"
    );
    for g in &report.goals {
        let met = match g.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(s, "| {} | {} | {met} |", g.goal, g.measured);
    }
}

/// `summary.md`: the goals of one named run, ready to be copied into
/// BENCHMARKS.md between its summary markers.
pub fn summary(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Run of {} ({}), {}; broker {}; {}.\n",
        report.started,
        if report.quick {
            "`loadtest/run --quick`"
        } else {
            "`loadtest/run`"
        },
        report.target,
        report.broker,
        report.machine
    );
    goals_table(&mut s, report);
    s
}
