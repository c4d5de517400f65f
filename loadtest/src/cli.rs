//! Command-line settings: where the sluice under test and its broker are,
//! and how hard and how long to drive them.

use std::path::PathBuf;

use clap::Parser;

pub use crate::client::HttpVersion;

/// Load scenarios and native-Kafka baselines for sluice, reported as ratios
/// measured in one run.
#[derive(Debug, Clone, Parser)]
#[command(name = "sluice-loadtest", version, args_override_self = true)]
pub struct Args {
    /// Public HTTPS base URL of the sluice under test.
    #[arg(long, env = "SLUICE_LT_URL", default_value = "https://localhost:8443")]
    pub url: String,
    /// Admin API base URL, used to provision and remove the test tenants.
    #[arg(
        long,
        env = "SLUICE_LT_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub admin_url: String,
    /// Admin bearer token.
    #[arg(long, env = "SLUICE_LT_ADMIN_TOKEN")]
    pub admin_token: String,
    /// PEM CA that signed the public listener's certificate; the system
    /// roots are used without it.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Pid of the sluice process, for CPU seconds and RSS (local runs only).
    #[arg(long)]
    pub sluice_pid: Option<u32>,
    /// Kafka bootstrap servers of the broker sluice uses, for the native
    /// baseline against the same broker and topic.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// A name for the broker, printed with every figure.
    #[arg(long, default_value = "kafka")]
    pub broker_label: String,
    /// Extra librdkafka properties for the native clients, `key=value`
    /// (against tansu: `batch.num.messages=1`).
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<String>,
    /// Optional second sluice whose broker discards data (tansu `null://`),
    /// for the produce ceiling with the broker out of the way.
    #[arg(long)]
    pub ceiling_url: Option<String>,
    /// Admin URL of the ceiling sluice.
    #[arg(long)]
    pub ceiling_admin_url: Option<String>,
    /// Pid of the ceiling sluice.
    #[arg(long)]
    pub ceiling_pid: Option<u32>,
    /// Bootstrap of the discarding broker, for the native ceiling.
    #[arg(long)]
    pub ceiling_bootstrap: Option<String>,
    /// Base URL of a peer to compare with: Karapace's REST proxy (plain
    /// HTTP), against the same broker (`loadtest/run --peer karapace=PATH`
    /// starts one).
    #[arg(long)]
    pub peer_url: Option<String>,
    /// Base URL of a second Karapace, on the main (memory) broker, for the
    /// consume comparison: the discarding broker has nothing to read.
    #[arg(long)]
    pub peer_read_url: Option<String>,
    /// Plain-HTTP URL of a sluice node of the same cluster (TLS off), the
    /// side of the peer comparison that pays the same transport.
    #[arg(long)]
    pub plain_url: Option<String>,
    /// Pid of the plain-HTTP sluice node.
    #[arg(long)]
    pub plain_pid: Option<u32>,
    /// HTTP version of the connection pool.
    #[arg(long, value_enum, default_value = "h1")]
    pub http: HttpVersion,
    /// HTTP/2 connections (HTTP/1.1 opens one per concurrent request).
    #[arg(long, default_value_t = 4)]
    pub h2_connections: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Measured seconds per run (default 10, or 2 with `--quick`).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Unmeasured seconds before each run (default 2, or 0.5 with `--quick`).
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Open-loop target rate in requests/s for the throughput runs; without
    /// it they run closed-loop (as fast as responses come back).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Core scenarios with a subset of the sweep and short runs (< 2 min).
    #[arg(long)]
    pub quick: bool,
    /// Run only these scenarios (produce, idempotency, consume, mixed,
    /// isolation, auth, memory, fanin, latency, ceiling, sweep,
    /// sequential, peer, streams); all by default.
    /// `isolation` includes the attack runs of issues 12 and 13; `attacks`
    /// runs only those.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Which attacks the isolation scenario runs while tenant B is
    /// measured; all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub attacks: Vec<crate::scenarios::attacks::Attack>,
    /// Messages pre-filled for the consume scenario (default 250,000, or
    /// 20,000 with `--quick`).
    #[arg(long)]
    pub prefill: Option<usize>,
    /// Groups in the fan-in scenario.
    #[arg(long)]
    pub groups: Option<usize>,
    /// Where the JSON, Markdown and SVG results go.
    #[arg(long, default_value = "loadtest/results")]
    pub out: PathBuf,
    /// Partitions of the test topics.
    #[arg(long, default_value_t = 2)]
    pub partitions: u32,
}

impl Args {
    /// Whether a scenario was selected by `--only`.
    pub fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.wants_only(scenario)
    }

    /// Whether `--only` names a scenario.
    pub fn wants_only(&self, scenario: &str) -> bool {
        self.only.iter().any(|s| s == scenario)
    }
}
