//! The victim of the attack tests: what it saw (every latency, every
//! failure with its body), and its usual workload, so that each attack
//! test measures the other tenant the same way, alone and under attack.

use std::time::{Duration, Instant};

use serde_json::json;

use super::TestApp;

/// The `p` quantile (0.0–1.0) of sorted latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// What the victim saw over a stretch of its workload.
#[derive(Default)]
pub struct Observed {
    pub latencies: Vec<Duration>,
    /// The slowest answer of each kind, to tell which call an attack slowed.
    pub slowest: std::collections::BTreeMap<String, Duration>,
    /// `what: status: body` of each answer that was not a 2xx.
    pub failures: Vec<String>,
}

impl Observed {
    /// Records one answer, timed from `started`, and returns its body.
    pub async fn record(
        &mut self,
        what: &str,
        started: Instant,
        response: reqwest::Response,
    ) -> String {
        let took = started.elapsed();
        self.latencies.push(took);
        let slowest = self.slowest.entry(what.to_owned()).or_default();
        *slowest = (*slowest).max(took);
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            self.failures.push(format!("{what}: {status}: {text}"));
        }
        text
    }

    pub fn p99(&mut self) -> Duration {
        self.latencies.sort();
        percentile(&self.latencies, 0.99)
    }

    pub fn summary(&mut self) -> String {
        let p99 = self.p99();
        format!(
            "{} requests, median {:?}, p99 {p99:?}, max {:?}, {} failed; slowest of each: {:?}",
            self.latencies.len(),
            percentile(&self.latencies, 0.5),
            self.latencies[self.latencies.len() - 1],
            self.failures.len(),
            self.slowest,
        )
    }

    /// Asserts that the victim was fully served under attack: no failure
    /// at all, and a p99 under `bound`, whatever it was alone (`alone` is
    /// printed beside it, for the reader of a failure).
    pub fn assert_served(&mut self, alone: &mut Observed, bound: Duration) {
        let (attacked, baseline) = (self.summary(), alone.summary());
        println!("victim alone: {baseline}\nvictim under attack: {attacked}");
        assert!(
            self.failures.is_empty(),
            "the victim failed {} of {} requests under attack: {:?}",
            self.failures.len(),
            self.latencies.len(),
            &self.failures[..self.failures.len().min(5)]
        );
        let p99 = self.p99();
        assert!(
            p99 < bound,
            "the victim's p99 was {p99:?} under attack ({attacked}), {:?} alone",
            alone.p99()
        );
    }
}

/// The victim's plain workload for `length`: produce one message to
/// `topic`, then read with `limit=10`, every 50 ms.
pub async fn produce_and_read(
    app: &TestApp,
    (user, password): (&str, &str),
    topic: &str,
    length: Duration,
) -> Observed {
    let mut seen = Observed::default();
    let ends = Instant::now() + length;
    let mut round = 0;
    while Instant::now() < ends {
        let started = Instant::now();
        let body = json!([{ "Value": format!("v{round}") }]).to_string();
        let response = app.produce(user, password, topic, &body).await;
        seen.record("produce", started, response).await;

        let started = Instant::now();
        let response = app.consume(user, password, topic, "limit=10").await;
        seen.record("GET", started, response).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// The victim's baseline: its workload warmed up for half a second, then
/// 4 s of it alone, which must not fail.
pub async fn baseline(app: &TestApp, credentials: (&str, &str), topic: &str) -> Observed {
    produce_and_read(app, credentials, topic, Duration::from_millis(500)).await;
    let alone = produce_and_read(app, credentials, topic, Duration::from_secs(4)).await;
    assert!(
        alone.failures.is_empty(),
        "the victim failed alone: {:?}",
        alone.failures
    );
    alone
}

/// Waits for the attacker loops and adds up what they report: a count of
/// what they did, and the answers they did not expect.
pub async fn gather<T>(attackers: Vec<tokio::task::JoinHandle<(u64, Vec<T>)>>) -> (u64, Vec<T>) {
    let (mut done, mut other) = (0, Vec::new());
    for attacker in attackers {
        let (count, unexpected) = attacker.await.expect("an attacker loop ended");
        done += count;
        other.extend(unexpected);
    }
    (done, other)
}
