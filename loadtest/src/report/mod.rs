//! What a run measured, in the shape people and machines read: the
//! results table, the JSON file and the Markdown report with charts.

pub mod charts;
pub mod markdown;
pub mod table;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::engine::Raw;

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

/// Labels of one run: what was driven, how, and against what.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Scenario family, e.g. `produce`.
    pub scenario: String,
    /// Unique, readable name of this run.
    pub name: String,
    /// What carried the load: `sluice h1`, `native rdkafka`, …
    pub path: String,
    /// The broker behind it.
    pub broker: String,
    /// Settings that shaped the figure (acks, linger, batch.num.messages…).
    pub settings: String,
    /// Message size, bytes.
    pub msg_bytes: Option<usize>,
    /// Messages per request.
    pub batch: Option<usize>,
    /// Consume limit.
    pub limit: Option<usize>,
}

/// One measured run, named and (once compared) with its ratio to a baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Scenario family.
    pub scenario: String,
    /// Unique name.
    pub name: String,
    /// What carried the load.
    pub path: String,
    /// Broker that produced the figure.
    pub broker: String,
    /// Settings that produced the figure.
    pub settings: String,
    /// Closed or open loop, concurrency.
    pub mode: String,
    /// Message size.
    pub msg_bytes: Option<usize>,
    /// Messages per request.
    pub batch: Option<usize>,
    /// Consume limit.
    pub limit: Option<usize>,
    /// Measured seconds.
    pub duration_s: f64,
    /// Measured requests.
    pub requests: u64,
    /// Successful requests.
    pub ok: u64,
    /// Messages moved.
    pub messages: u64,
    /// Requests per second (all statuses).
    pub requests_per_s: f64,
    /// Successful requests per second.
    pub ok_per_s: f64,
    /// Messages per second.
    pub messages_per_s: f64,
    /// Payload megabytes (10^6) per second.
    pub mb_per_s: f64,
    /// Latency percentiles, µs.
    pub latency_us: Latency,
    /// Failures by status.
    pub errors: BTreeMap<String, u64>,
    /// Server CPU seconds in the window.
    pub cpu_seconds: Option<f64>,
    /// Messages per server CPU-second.
    pub messages_per_cpu_s: Option<f64>,
    /// Requests per server CPU-second.
    pub requests_per_cpu_s: Option<f64>,
    /// Server RSS before the run, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server RSS after the run, KiB.
    pub rss_after_kib: Option<u64>,
    /// Server peak RSS, KiB.
    pub peak_rss_kib: Option<u64>,
    /// Name of the run this one is compared with.
    pub baseline: Option<String>,
    /// This run's figure divided by the baseline's.
    pub ratio: Option<f64>,
    /// Which figure the ratio compares.
    pub ratio_of: Option<String>,
    /// Latency by percentile, for the distribution chart: (percentile, µs).
    pub distribution: Vec<(f64, u64)>,
    /// For a background load (an attacker): its operations still in
    /// flight when the run measured beside it ended, such as connections
    /// the server still held or long polls still open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
}

impl Measurement {
    /// Names a raw run.
    pub fn new(spec: Spec, mode: String, raw: &Raw) -> Self {
        let h = &raw.histogram;
        let secs = raw.elapsed;
        let latency = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                p50: h.value_at_quantile(0.5),
                p90: h.value_at_quantile(0.9),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
                mean: h.mean(),
            }
        };
        let distribution = if h.is_empty() {
            Vec::new()
        } else {
            [
                0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
            ]
            .iter()
            .map(|p| (*p, h.value_at_percentile(*p)))
            .collect()
        };
        let cpu = raw.cpu_seconds.filter(|c| *c > 0.0);
        Self {
            scenario: spec.scenario,
            name: spec.name,
            path: spec.path,
            broker: spec.broker,
            settings: spec.settings,
            mode,
            msg_bytes: spec.msg_bytes,
            batch: spec.batch,
            limit: spec.limit,
            duration_s: secs,
            requests: raw.requests,
            ok: raw.ok,
            messages: raw.messages,
            requests_per_s: raw.requests as f64 / secs,
            ok_per_s: raw.ok as f64 / secs,
            messages_per_s: raw.messages as f64 / secs,
            mb_per_s: raw.bytes as f64 / secs / 1e6,
            latency_us: latency,
            errors: raw.errors.clone(),
            cpu_seconds: raw.cpu_seconds,
            messages_per_cpu_s: cpu.map(|c| raw.messages as f64 / c),
            requests_per_cpu_s: cpu.map(|c| raw.ok as f64 / c),
            rss_before_kib: raw.rss_before_kib,
            rss_after_kib: raw.rss_after_kib,
            peak_rss_kib: raw.hwm_kib,
            baseline: None,
            ratio: None,
            ratio_of: None,
            distribution,
            in_flight: None,
        }
    }

    /// Compares this run with `baseline` on `metric` (`messages/s`,
    /// `requests/s` or `p99`).
    pub fn compare(&mut self, baseline: &Measurement, metric: &str) {
        let (mine, theirs) = match metric {
            "messages/s" => (self.messages_per_s, baseline.messages_per_s),
            "p50" => (self.latency_us.p50 as f64, baseline.latency_us.p50 as f64),
            "p99" => (self.latency_us.p99 as f64, baseline.latency_us.p99 as f64),
            _ => (self.ok_per_s, baseline.ok_per_s),
        };
        self.baseline = Some(baseline.name.clone());
        self.ratio_of = Some(metric.to_owned());
        self.ratio = (theirs > 0.0).then(|| mine / theirs);
    }

    /// Failed requests of any kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A goal of issue 6 (or 5), reported, never asserted.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// The goal as the issue states it.
    pub goal: String,
    /// What this run measured against it.
    pub measured: String,
    /// Met, missed, or not measured in this run.
    pub met: Option<bool>,
}

/// One load's memory, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryCheck {
    /// Which load came before.
    pub after: String,
    /// RSS before any load, KiB.
    pub idle_kib: u64,
    /// RSS when the load ended, KiB.
    pub loaded_kib: u64,
    /// RSS at the end of the idle wait, KiB.
    pub settled_kib: u64,
    /// Seconds of idleness until RSS was under 2× idle; `None` if it was
    /// not within `scenarios::memory::SETTLE`.
    pub under_twice_idle_after_s: Option<f64>,
}

/// Everything one run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the run started (UTC, RFC 3339).
    pub started: String,
    /// CPUs, kernel and load of the machine.
    pub machine: String,
    /// The sluice URL and HTTP version under test.
    pub target: String,
    /// Broker label.
    pub broker: String,
    /// Quick mode or full sweep.
    pub quick: bool,
    /// Every run, in order.
    pub measurements: Vec<Measurement>,
    /// The goals, reported.
    pub goals: Vec<Goal>,
    /// Facts worth knowing about this run (idle RSS, skipped parts…).
    pub notes: Vec<String>,
    /// RSS after load and after idling.
    pub memory: Vec<MemoryCheck>,
}

impl Report {
    /// Finds a run by name.
    pub fn find(&self, name: &str) -> Option<&Measurement> {
        self.measurements.iter().find(|m| m.name == name)
    }

    /// Writes `results.json`, `report.md` and the SVG charts into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join("results.json"), json)?;
        let charts = charts::draw(self, dir)?;
        std::fs::write(dir.join("report.md"), markdown::render(self, &charts))?;
        std::fs::write(dir.join("summary.md"), markdown::summary(self))?;
        Ok(())
    }
}

/// A short description of this machine, so every figure says where it
/// came from.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), load average at start {load}")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;
    use crate::engine::{self, Observe, Op, Outcome, Plan};

    fn op(batch: u64) -> Op {
        Arc::new(move |_, _| {
            async move {
                tokio::time::sleep(Duration::from_micros(200)).await;
                Outcome::ok(batch, batch * 100)
            }
            .boxed()
        })
    }

    /// The whole output path, from engine runs to the files on disk, with
    /// an in-process operation standing in for sluice.
    #[tokio::test]
    async fn a_run_produces_json_markdown_and_charts() {
        let plan = Plan {
            concurrency: 2,
            warmup: Duration::from_millis(20),
            duration: Duration::from_millis(200),
            rate: None,
            max_requests: None,
            until_empty: None,
        };
        let observe = Observe {
            pid: Some(std::process::id()),
            ticks: crate::procfs::ticks_per_second(),
        };
        let mut measurements = Vec::new();
        for (path, batch) in [
            ("sluice HTTPS/1.1", 1),
            ("native rdkafka", 1),
            ("sluice HTTPS/1.1", 100),
        ] {
            let raw = engine::run(plan, op(batch), observe, Arc::new(AtomicU64::new(0))).await;
            let prefix = if path.starts_with("native") {
                "native "
            } else {
                ""
            };
            measurements.push(Measurement::new(
                Spec {
                    scenario: "produce".into(),
                    name: format!("{prefix}produce 100B x{batch}"),
                    path: path.into(),
                    broker: "fake".into(),
                    settings: "test".into(),
                    msg_bytes: Some(100),
                    batch: Some(batch as usize),
                    limit: None,
                },
                "closed loop, c=2".into(),
                &raw,
            ));
        }
        let native = measurements[1].clone();
        measurements[0].compare(&native, "messages/s");
        let mut report = Report {
            started: "now".into(),
            machine: machine(),
            target: "in-process".into(),
            broker: "fake".into(),
            quick: true,
            measurements,
            goals: Vec::new(),
            notes: Vec::new(),
            memory: Vec::new(),
        };
        report.goals = crate::goals::evaluate(&report, Some(20 * 1024));
        let dir = tempfile::tempdir().unwrap();
        report.write(dir.path()).unwrap();

        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap())
                .unwrap();
        for m in json["measurements"].as_array().unwrap() {
            assert!(m["messages_per_s"].as_f64().unwrap() > 0.0);
            assert!(m["errors"].as_object().unwrap().is_empty());
        }
        assert!(json["measurements"][0]["ratio"].as_f64().unwrap() > 0.0);
        let markdown = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(markdown.contains("| produce 100B x1 |"));
        assert!(markdown.contains("throughput-by-batch.svg"));
        let svg = std::fs::read_to_string(dir.path().join("throughput-by-batch.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("messages/s"));
        assert!(dir.path().join("latency-distribution.svg").exists());
        assert!(table::render(&report).contains("produce 100B x100"));
    }
}
