//! Loads that run in the background while another load is measured, and
//! stop when told, mid-request: attackers and noisy neighbours. Unlike the
//! engine's runs they have no fixed end, so a long poll or a connection
//! the server never closes cannot hold up the run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};

use crate::engine::{Observe, Op, Raw, Status};
use crate::procfs;
use crate::report::{Measurement, Spec};

/// One load to run in the background.
pub struct Load {
    /// How it is named in the report.
    pub spec: Spec,
    /// What each worker does, over and over.
    pub op: Op,
    /// Workers: operations in flight at most.
    pub concurrency: usize,
    /// Open-loop rate (operations/s) shared by the workers; closed loop
    /// (each worker back to back) when `None`.
    pub rate: Option<f64>,
}

/// What the workers of one load have done so far.
struct Tally {
    raw: Raw,
}

/// Counts an operation as in flight while it lives, even when it is
/// dropped mid-way.
struct Busy(Arc<AtomicU64>);

impl Busy {
    fn new(gauge: &Arc<AtomicU64>) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One load's name, mode, tally and operations in flight.
struct Running {
    spec: Spec,
    mode: String,
    tally: Arc<Mutex<Tally>>,
    in_flight: Arc<AtomicU64>,
}

/// Loads started together, measured from start to stop.
pub struct Background {
    loads: Vec<Running>,
    tasks: Vec<JoinHandle<()>>,
    started: Instant,
    observe: Observe,
    before: Option<procfs::Sample>,
}

impl Background {
    /// Starts every load at once.
    pub fn start(loads: Vec<Load>, observe: Observe) -> Self {
        let started = Instant::now();
        let before = procfs::sample(observe.pid, observe.ticks);
        let mut tasks = Vec::new();
        let mut tallies = Vec::with_capacity(loads.len());
        for load in loads {
            let tally = Arc::new(Mutex::new(Tally { raw: Raw::empty() }));
            let mode = match load.rate {
                Some(r) => format!("open loop {r:.1}/s, c={}", load.concurrency),
                None => format!("closed loop, c={}", load.concurrency),
            };
            let counter = Arc::new(AtomicU64::new(0));
            let in_flight = Arc::new(AtomicU64::new(0));
            for worker in 0..load.concurrency.max(1) {
                let op = load.op.clone();
                let tally = tally.clone();
                let counter = counter.clone();
                let in_flight = in_flight.clone();
                let rate = load.rate;
                tasks.push(tokio::spawn(async move {
                    loop {
                        let seq = counter.fetch_add(1, Ordering::Relaxed);
                        let intended = match rate {
                            Some(rate) => {
                                let at = started + Duration::from_secs_f64(seq as f64 / rate);
                                tokio::time::sleep_until(at).await;
                                at
                            }
                            None => Instant::now(),
                        };
                        let outcome = {
                            let _busy = Busy::new(&in_flight);
                            op(worker, seq).await
                        };
                        let micros = u64::try_from(intended.elapsed().as_micros())
                            .unwrap_or(u64::MAX)
                            .max(1);
                        let Ok(mut tally) = tally.lock() else {
                            return;
                        };
                        let raw = &mut tally.raw;
                        raw.histogram.saturating_record(micros);
                        raw.requests += 1;
                        match outcome.status {
                            Status::Ok => {
                                raw.ok += 1;
                                raw.messages += outcome.messages;
                                raw.bytes += outcome.bytes;
                            }
                            Status::Http(code) => {
                                *raw.errors.entry(code.to_string()).or_default() += 1;
                            }
                            Status::Error(kind) => {
                                *raw.errors.entry(kind.to_owned()).or_default() += 1;
                            }
                        }
                    }
                }));
            }
            tallies.push(Running {
                spec: load.spec,
                mode,
                tally,
                in_flight,
            });
        }
        Self {
            loads: tallies,
            tasks,
            started,
            observe,
            before,
        }
    }

    /// Stops every worker, dropping what is in flight (its connections
    /// close), and returns one measurement per load, from start to now,
    /// with what was still in flight. The server's RSS after is missing
    /// when its process is gone.
    pub fn stop(self) -> Vec<Measurement> {
        let in_flight: Vec<u64> = self
            .loads
            .iter()
            .map(|l| l.in_flight.load(Ordering::Relaxed))
            .collect();
        for task in &self.tasks {
            task.abort();
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let after = procfs::sample(self.observe.pid, self.observe.ticks);
        self.loads
            .into_iter()
            .zip(in_flight)
            .map(|(load, in_flight)| {
                let mut raw = match load.tally.lock() {
                    Ok(tally) => tally.raw.clone(),
                    Err(_) => Raw::empty(),
                };
                raw.elapsed = elapsed;
                if let Some(b) = self.before {
                    raw.rss_before_kib = Some(b.rss_kib);
                    if let Some(a) = after {
                        raw.cpu_seconds = Some(a.cpu_seconds - b.cpu_seconds);
                        raw.rss_after_kib = Some(a.rss_kib);
                        raw.hwm_kib = Some(a.hwm_kib);
                    }
                }
                let mut m = Measurement::new(load.spec, load.mode, &raw);
                m.in_flight = Some(in_flight);
                m
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::engine::Outcome;

    #[tokio::test]
    async fn stopping_cuts_operations_that_never_end_and_keeps_what_finished() {
        let finished = Arc::new(AtomicU64::new(0));
        let count = finished.clone();
        // Every third operation hangs forever, like a long poll or a held
        // connection; the others fail fast with a 401.
        let op: Op = Arc::new(move |_, seq| {
            let count = count.clone();
            async move {
                if seq % 3 == 2 {
                    futures::future::pending::<()>().await;
                }
                count.fetch_add(1, Ordering::Relaxed);
                Outcome::failed(Status::Http(401))
            }
            .boxed()
        });
        let load = Load {
            spec: Spec {
                name: "hang".into(),
                ..Spec::default()
            },
            op,
            concurrency: 4,
            rate: Some(1000.0),
        };
        let observe = Observe {
            pid: None,
            ticks: 100.0,
        };
        let background = Background::start(vec![load], observe);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let measured = background.stop();
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(measured.len(), 1);
        let m = &measured[0];
        assert!(m.requests > 0, "some operations finished before they hung");
        assert_eq!(m.errors.get("401").copied(), Some(m.requests));
        assert_eq!(m.requests, finished.load(Ordering::Relaxed));
        assert_eq!(
            m.in_flight,
            Some(4),
            "every worker ended on a hung operation"
        );
    }
}
