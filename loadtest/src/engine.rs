//! The load engine: workers that issue operations closed-loop (back to
//! back) or open-loop (each at its intended start time), with a warm-up
//! that is not measured.
//!
//! In open loop, latency is measured from the intended start, not the
//! actual one: when the server stalls, requests that should have been sent
//! meanwhile are charged the wait, which avoids coordinated omission.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::procfs;

/// What one operation produced.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Success, an HTTP status, or a transport error.
    pub status: Status,
    /// Messages produced or consumed by this operation.
    pub messages: u64,
    /// Message payload bytes produced or consumed.
    pub bytes: u64,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A 2xx, or a native client's success.
    Ok,
    /// Any other HTTP status.
    Http(u16),
    /// No HTTP status: a transport, timeout or client error.
    Error(&'static str),
}

impl Outcome {
    /// A success that moved `messages` messages of `bytes` bytes.
    pub fn ok(messages: u64, bytes: u64) -> Self {
        Self {
            status: Status::Ok,
            messages,
            bytes,
        }
    }

    /// A failure.
    pub fn failed(status: Status) -> Self {
        Self {
            status,
            messages: 0,
            bytes: 0,
        }
    }
}

/// An operation: given the worker index and the request sequence number,
/// one request (or one native batch).
pub type Op = Arc<dyn Fn(usize, u64) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// How to drive an operation.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Workers, i.e. operations in flight at most.
    pub concurrency: usize,
    /// Unmeasured lead-in.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// Open-loop rate (operations/s); closed loop when `None`.
    pub rate: Option<f64>,
    /// Stop after this many operations (or `duration`, whichever comes
    /// first), with no warm-up: where each operation must be distinct, e.g.
    /// cold logins, or the data to read is finite.
    pub max_requests: Option<u64>,
    /// Stop a worker after this many successful answers in a row that
    /// moved no messages, with no warm-up: reading a finite backlog, the
    /// run ends when it is drained, and the rate is taken over the time it
    /// took (a warm-up would read part of it unmeasured).
    pub until_empty: Option<u32>,
}

/// Where to read the server's CPU time and memory from.
#[derive(Debug, Clone, Copy)]
pub struct Observe {
    /// The sluice pid, when local.
    pub pid: Option<u32>,
    /// Clock ticks per second for `/proc/PID/stat`.
    pub ticks: f64,
}

impl Observe {
    /// The same, without a process: native runs do not go through sluice,
    /// so its CPU time would only mislead.
    pub fn without_pid(self) -> Self {
        Self { pid: None, ..self }
    }
}

/// What a run measured, before it is named and compared.
#[derive(Debug, Clone)]
pub struct Raw {
    /// Latency in microseconds.
    pub histogram: Histogram<u64>,
    /// Measured operations.
    pub requests: u64,
    /// Of which succeeded.
    pub ok: u64,
    /// Messages moved by successful operations.
    pub messages: u64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Failures by HTTP status or error kind.
    pub errors: BTreeMap<String, u64>,
    /// Measured wall time, seconds.
    pub elapsed: f64,
    /// CPU seconds the server spent in the measured window.
    pub cpu_seconds: Option<f64>,
    /// Server RSS before and after, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server RSS after the run, KiB.
    pub rss_after_kib: Option<u64>,
    /// Server peak RSS since it started, KiB.
    pub hwm_kib: Option<u64>,
}

impl Raw {
    /// A run with nothing counted yet.
    pub fn empty() -> Self {
        Raw {
            histogram: histogram(),
            requests: 0,
            ok: 0,
            messages: 0,
            bytes: 0,
            errors: BTreeMap::new(),
            elapsed: 0.0,
            cpu_seconds: None,
            rss_before_kib: None,
            rss_after_kib: None,
            hwm_kib: None,
        }
    }
}

struct Local {
    histogram: Histogram<u64>,
    requests: u64,
    ok: u64,
    messages: u64,
    bytes: u64,
    errors: BTreeMap<String, u64>,
    last_done: Option<Instant>,
}

/// A fresh latency histogram: 1 µs to 10 minutes, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Runs `op` according to `plan` and measures it. `live` counts completed
/// operations for the progress bar.
pub async fn run(plan: Plan, op: Op, observe: Observe, live: Arc<AtomicU64>) -> Raw {
    let start = Instant::now() + Duration::from_millis(5);
    let warmup = if plan.max_requests.is_some() || plan.until_empty.is_some() {
        Duration::ZERO
    } else {
        plan.warmup
    };
    let measure_from = start + warmup;
    let end = measure_from + plan.duration;
    let counter = Arc::new(AtomicU64::new(0));

    let monitor = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from).await;
        procfs::sample(observe.pid, observe.ticks)
    });

    let mut handles = Vec::with_capacity(plan.concurrency);
    for worker in 0..plan.concurrency.max(1) {
        let op = op.clone();
        let counter = counter.clone();
        let live = live.clone();
        handles.push(tokio::spawn(async move {
            let mut local = Local {
                histogram: histogram(),
                requests: 0,
                ok: 0,
                messages: 0,
                bytes: 0,
                errors: BTreeMap::new(),
                last_done: None,
            };
            let mut empty_in_a_row = 0u32;
            // All workers start together, on the schedule's origin.
            tokio::time::sleep_until(start).await;
            loop {
                let seq = counter.fetch_add(1, Ordering::Relaxed);
                if let Some(max) = plan.max_requests {
                    if seq >= max {
                        break;
                    }
                }
                let intended = match plan.rate {
                    Some(rate) => {
                        let at = start + Duration::from_secs_f64(seq as f64 / rate);
                        if at >= end {
                            break;
                        }
                        tokio::time::sleep_until(at).await;
                        at
                    }
                    None => {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        now
                    }
                };
                let outcome = op(worker, seq).await;
                let done = Instant::now();
                if outcome.status == Status::Ok && outcome.messages == 0 {
                    empty_in_a_row += 1;
                } else {
                    empty_in_a_row = 0;
                }
                let drained = plan
                    .until_empty
                    .is_some_and(|limit| empty_in_a_row >= limit);
                live.fetch_add(1, Ordering::Relaxed);
                if intended < measure_from {
                    continue;
                }
                let micros =
                    u64::try_from(done.duration_since(intended).as_micros()).unwrap_or(u64::MAX);
                local.histogram.saturating_record(micros.max(1));
                local.requests += 1;
                local.last_done = Some(done);
                match outcome.status {
                    Status::Ok => {
                        local.ok += 1;
                        local.messages += outcome.messages;
                        local.bytes += outcome.bytes;
                    }
                    Status::Http(code) => *local.errors.entry(code.to_string()).or_default() += 1,
                    Status::Error(kind) => *local.errors.entry(kind.to_owned()).or_default() += 1,
                }
                if drained {
                    break;
                }
            }
            local
        }));
    }

    let mut raw = Raw::empty();
    let mut last_done = measure_from;
    for handle in handles {
        let Ok(local) = handle.await else {
            *raw.errors.entry("worker_panicked".to_owned()).or_default() += 1;
            continue;
        };
        let _ = raw.histogram.add(&local.histogram);
        raw.requests += local.requests;
        raw.ok += local.ok;
        raw.messages += local.messages;
        raw.bytes += local.bytes;
        for (k, v) in local.errors {
            *raw.errors.entry(k).or_default() += v;
        }
        if let Some(done) = local.last_done {
            last_done = last_done.max(done);
        }
    }
    let after = procfs::sample(observe.pid, observe.ticks);
    let before = monitor.await.ok().flatten();
    raw.elapsed = last_done
        .duration_since(measure_from)
        .as_secs_f64()
        .max(1e-3);
    if let (Some(b), Some(a)) = (before, after) {
        raw.cpu_seconds = Some(a.cpu_seconds - b.cpu_seconds);
        raw.rss_before_kib = Some(b.rss_kib);
        raw.rss_after_kib = Some(a.rss_kib);
        raw.hwm_kib = Some(a.hwm_kib);
    }
    raw
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn op() -> Op {
        Arc::new(|_, seq| {
            async move {
                if seq % 10 == 9 {
                    Outcome::failed(Status::Http(429))
                } else {
                    Outcome::ok(2, 200)
                }
            }
            .boxed()
        })
    }

    #[tokio::test]
    async fn open_loop_keeps_the_rate_and_counts_failures_by_status() {
        let plan = Plan {
            concurrency: 4,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(500),
            rate: Some(200.0),
            max_requests: None,
            until_empty: None,
        };
        let observe = Observe {
            pid: None,
            ticks: 100.0,
        };
        let raw = run(plan, op(), observe, Arc::new(AtomicU64::new(0))).await;
        // 200/s for 0.5 s, give or take the edges.
        assert!((90..=110).contains(&raw.requests), "{}", raw.requests);
        assert_eq!(raw.messages, raw.ok * 2);
        assert!(raw.errors.get("429").copied().unwrap_or(0) > 0);
        assert_eq!(raw.histogram.len(), raw.requests);
    }

    #[tokio::test]
    async fn a_drain_run_stops_once_answers_come_back_empty_and_measures_everything() {
        let plan = Plan {
            concurrency: 2,
            warmup: Duration::from_secs(10),
            duration: Duration::from_secs(10),
            rate: None,
            max_requests: None,
            until_empty: Some(3),
        };
        let observe = Observe {
            pid: None,
            ticks: 100.0,
        };
        // A backlog of 40 operations' worth of messages, then nothing.
        let drain: Op = Arc::new(|_, seq| {
            async move {
                if seq < 40 {
                    Outcome::ok(5, 500)
                } else {
                    Outcome::ok(0, 0)
                }
            }
            .boxed()
        });
        let started = Instant::now();
        let raw = run(plan, drain, observe, Arc::new(AtomicU64::new(0))).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no warm-up, no full duration"
        );
        assert_eq!(raw.messages, 200, "the whole backlog is measured");
        assert_eq!(
            raw.requests, 46,
            "40 full answers and 3 empty ones per worker"
        );
    }

    #[tokio::test]
    async fn max_requests_stops_after_that_many_without_warm_up() {
        let plan = Plan {
            concurrency: 3,
            warmup: Duration::from_secs(10),
            duration: Duration::from_secs(10),
            rate: None,
            max_requests: Some(25),
            until_empty: None,
        };
        let observe = Observe {
            pid: None,
            ticks: 100.0,
        };
        let raw = run(plan, op(), observe, Arc::new(AtomicU64::new(0))).await;
        assert_eq!(raw.requests, 25);
    }
}
