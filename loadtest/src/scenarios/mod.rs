//! The scenarios, and the context they share: the target, the progress
//! bar and the list of measurements each one appends to.

pub mod attacks;
pub mod auth;
pub mod ceiling;
pub mod consume;
pub mod fanin;
pub mod idempotency;
pub mod isolation;
pub mod latency;
pub mod memory;
pub mod mixed;
pub mod noop;
pub mod peer;
pub mod produce;
pub mod requests;
pub mod sequential;
pub mod streams;
pub mod sweep;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;

use crate::cli::{Args, HttpVersion};
use crate::client::{Admin, Pool};
use crate::engine::{self, Observe, Op, Plan};
use crate::provision::Provisioner;
use crate::report::{Measurement, Spec};

/// A sluice to drive: its public pool, admin API, process and broker.
#[derive(Debug)]
pub struct Target {
    /// Keep-alive HTTPS pool to the public listener.
    pub pool: Pool,
    /// Creates and deletes the test tenants.
    pub provisioner: Provisioner,
    /// The sluice process, for CPU and RSS.
    pub observe: Observe,
    /// Bootstrap servers of its broker, for the native baseline.
    pub bootstrap: String,
    /// Broker label printed with every figure.
    pub broker: String,
}

impl Target {
    /// Connects to a sluice (nothing is sent yet).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        args: &Args,
        url: &str,
        admin_url: &str,
        pid: Option<u32>,
        bootstrap: &str,
        broker: &str,
        ticks: f64,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            pool: Pool::new(
                url,
                args.ca.as_deref(),
                args.http,
                args.concurrency.max(64),
                args.h2_connections,
            )?,
            provisioner: Provisioner::new(Admin::new(admin_url, &args.admin_token)?),
            observe: Observe { pid, ticks },
            bootstrap: bootstrap.to_owned(),
            broker: broker.to_owned(),
        })
    }

    /// How many of `tenant`'s messages sluice served from its cache of
    /// recent messages so far; 0 when the admin API cannot say.
    pub async fn cached_messages(&self, tenant: &str) -> u64 {
        self.provisioner
            .admin()
            .cached_messages(tenant)
            .await
            .unwrap_or(0)
    }
}

/// What every scenario needs.
#[derive(Debug)]
pub struct Ctx {
    /// The command line.
    pub args: Args,
    /// Extra librdkafka properties for the native clients.
    pub extra: Vec<(String, String)>,
    /// Every run so far.
    pub results: Vec<Measurement>,
    /// Facts for the report.
    pub notes: Vec<String>,
    /// The progress bar.
    pub progress: ProgressBar,
    /// Measured seconds per run.
    pub duration: f64,
    /// Warm-up seconds per run.
    pub warmup: f64,
    /// The memory checks after load.
    pub memory: Vec<crate::report::MemoryCheck>,
}

impl Ctx {
    /// The default plan: the configured concurrency, warm-up, duration and
    /// open-loop rate (if any).
    pub fn plan(&self) -> Plan {
        Plan {
            concurrency: self.args.concurrency,
            warmup: Duration::from_secs_f64(self.warmup),
            duration: Duration::from_secs_f64(self.duration),
            rate: self.args.rate,
            max_requests: None,
            until_empty: None,
        }
    }

    /// Label of the HTTP path, e.g. `sluice https h1`.
    pub fn http_path(&self) -> String {
        match self.args.http {
            HttpVersion::H1 => "sluice HTTPS/1.1".to_owned(),
            HttpVersion::H2 => "sluice HTTPS/2".to_owned(),
        }
    }

    /// Describes a plan for the report.
    pub fn mode(plan: &Plan) -> String {
        match (plan.rate, plan.max_requests) {
            (_, Some(n)) => format!("{n} requests, c={}", plan.concurrency),
            (Some(r), None) => format!("open loop {r:.0}/s, c={}", plan.concurrency),
            (None, None) => format!("closed loop, c={}", plan.concurrency),
        }
    }

    /// Runs one measurement, shows it on the progress bar, records it and
    /// returns a copy.
    pub async fn measure(
        &mut self,
        spec: Spec,
        plan: Plan,
        op: Op,
        observe: Observe,
    ) -> Measurement {
        let name = spec.name.clone();
        let (live, ticker) = self.tick(&name);
        let raw = engine::run(plan, op, observe, live).await;
        ticker.abort();
        let m = Measurement::new(spec, Self::mode(&plan), &raw);
        self.finish(&m);
        self.results.push(m.clone());
        m
    }

    /// Runs two loads at once (e.g. produce and consume together).
    pub async fn measure_pair(
        &mut self,
        a: (Spec, Plan, Op),
        b: (Spec, Plan, Op),
        observe: Observe,
    ) -> (Measurement, Measurement) {
        let name = format!("{} + {}", a.0.name, b.0.name);
        let (live, ticker) = self.tick(&name);
        let (ra, rb) = tokio::join!(
            engine::run(a.1, a.2, observe, live.clone()),
            engine::run(b.1, b.2, observe, live)
        );
        ticker.abort();
        let ma = Measurement::new(a.0, Self::mode(&a.1), &ra);
        let mb = Measurement::new(b.0, Self::mode(&b.1), &rb);
        self.finish(&ma);
        self.finish(&mb);
        self.results.push(ma.clone());
        self.results.push(mb.clone());
        (ma, mb)
    }

    fn tick(&self, name: &str) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
        let live = Arc::new(AtomicU64::new(0));
        let bar = self.progress.clone();
        let counter = live.clone();
        let name = name.to_owned();
        let ticker = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            loop {
                let n = counter.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(0.001);
                bar.set_message(format!("{name}: {n} ops, {:.0} ops/s", n as f64 / secs));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        (live, ticker)
    }

    /// Shows a finished run on the progress bar and in the log.
    fn finish(&mut self, m: &Measurement) {
        if m.rss_after_kib.is_none()
            && m.path.starts_with("sluice")
            && self.args.sluice_pid.is_some()
        {
            let note = format!("the sluice process was gone at the end of run `{}`", m.name);
            if !self.notes.contains(&note) {
                self.progress.println(format!("  WARNING: {note}"));
                self.notes.push(note);
            }
        }
        self.progress.inc(1);
        let line = format!(
            "  {:<34} {:>10.0} msg/s {:>9.0} req/s  p99 {:>8.2} ms  errors {}",
            m.name,
            m.messages_per_s,
            m.ok_per_s,
            m.latency_us.p99 as f64 / 1000.0,
            m.error_count()
        );
        self.say(line);
    }

    /// Prints a line above the progress bar, or to stderr when the bar is
    /// hidden (no terminal), which would swallow it.
    pub fn say(&self, line: String) {
        if self.progress.is_hidden() {
            eprintln!("{line}");
        } else {
            self.progress.println(line);
        }
    }

    /// Sets the ratio of run `name` to run `baseline` on `metric`.
    pub fn compare(&mut self, name: &str, baseline: &str, metric: &str) {
        let Some(base) = self.results.iter().find(|m| m.name == baseline).cloned() else {
            return;
        };
        if let Some(m) = self.results.iter_mut().find(|m| m.name == name) {
            m.compare(&base, metric);
        }
    }

    /// A run recorded earlier.
    pub fn find(&self, name: &str) -> Option<&Measurement> {
        self.results.iter().find(|m| m.name == name)
    }
}

/// `100B`, `1KiB`, `10KiB`.
pub fn size_label(bytes: usize) -> String {
    if bytes >= 1024 && bytes & 1023 == 0 {
        format!("{}KiB", bytes / 1024)
    } else {
        format!("{bytes}B")
    }
}
