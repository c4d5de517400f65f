//! The results table printed on the terminal at the end of a run.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Table};

use super::{Measurement, Report};

/// Formats microseconds as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// A throughput figure with a sensible number of digits.
pub fn rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `name: count` pairs of the errors, or `0`.
pub fn errors(m: &Measurement) -> String {
    if m.errors.is_empty() {
        "0".to_owned()
    } else {
        m.errors
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The ratio and what it is against.
pub fn ratio(m: &Measurement) -> String {
    match (&m.ratio, &m.baseline, &m.ratio_of) {
        (Some(r), Some(b), Some(of)) if *r < 0.1 => format!("{r:.4} × {b} ({of})"),
        (Some(r), Some(b), Some(of)) => format!("{r:.2} × {b} ({of})"),
        _ => String::new(),
    }
}

/// Renders the table of all runs and the goals.
pub fn render(report: &Report) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "run",
        "path",
        "msg/s",
        "req/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "msg/CPU-s",
        "ratio",
    ]);
    for m in &report.measurements {
        table.add_row(vec![
            Cell::new(&m.name),
            Cell::new(&m.path),
            Cell::new(rate(m.messages_per_s)),
            Cell::new(rate(m.ok_per_s)),
            Cell::new(format!("{:.2}", m.mb_per_s)),
            Cell::new(ms(m.latency_us.p50)),
            Cell::new(ms(m.latency_us.p99)),
            Cell::new(ms(m.latency_us.p999)),
            Cell::new(errors(m)),
            Cell::new(m.messages_per_cpu_s.map(rate).unwrap_or_default()),
            Cell::new(ratio(m)),
        ]);
    }
    let mut goals = Table::new();
    goals
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(vec!["goal", "measured", "met"]);
    for g in &report.goals {
        goals.add_row(vec![
            g.goal.clone(),
            g.measured.clone(),
            match g.met {
                Some(true) => "yes".to_owned(),
                Some(false) => "NO".to_owned(),
                None => "not measured".to_owned(),
            },
        ]);
    }
    format!(
        "broker: {}; target: {}\n{table}\n{goals}\n{}",
        report.broker,
        report.target,
        report.notes.join("\n")
    )
}
