//! The performance goals of issue 6, the isolation goals of issues 5, 12
//! and 13 and the streaming goals of issue 15, computed from one run's
//! measurements. They are reported, never
//! asserted: these machines are shared and noisy.

use crate::report::{Goal, Measurement, Report};
use crate::scenarios::attacks::{Attack, ATTACKER_SCENARIO};

fn ratio_goal(report: &Report, goal: &str, run: &str, min: f64) -> Goal {
    match report.find(run).and_then(|m| m.ratio.map(|r| (m, r))) {
        Some((m, r)) => Goal {
            goal: goal.to_owned(),
            measured: format!(
                "{r:.2} ({} / {}, {})",
                m.name,
                m.baseline.clone().unwrap_or_default(),
                m.ratio_of.clone().unwrap_or_default()
            ),
            met: Some(r >= min),
        },
        None => missing(goal),
    }
}

fn missing(goal: &str) -> Goal {
    Goal {
        goal: goal.to_owned(),
        measured: "not measured in this run".to_owned(),
        met: None,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Evaluates every goal; `idle_rss_kib` is the sluice RSS before any load.
pub fn evaluate(report: &Report, idle_rss_kib: Option<u64>) -> Vec<Goal> {
    let mut goals = vec![ratio_goal(
        report,
        "Produce 100 B × batch 100 over HTTPS ≥ 0.5 of the native producer's messages/s",
        "produce 100B x100",
        0.5,
    )];
    let batch1 =
        "Produce batch 1 ≥ 0.5 of the no-op route's requests/s (OVH seed: 5–10k msg/s over HTTPS)";
    goals.push(
        match (report.find("produce 100B x1"), report.find("noop")) {
            (Some(p), Some(n)) if n.ok_per_s > 0.0 => {
                let r = p.ok_per_s / n.ok_per_s;
                Goal {
                    goal: batch1.to_owned(),
                    measured: format!(
                        "{r:.2} ({:.0} req/s against {:.0} req/s); absolute: {:.0} msg/s",
                        p.ok_per_s, n.ok_per_s, p.messages_per_s
                    ),
                    met: Some(r >= 0.5),
                }
            }
            _ => missing(batch1),
        },
    );
    goals.push(ratio_goal(
        report,
        "Consume limit=1000 ≥ 0.5 of the native consumer (messages/s)",
        "consume limit 1000",
        0.5,
    ));
    goals.push(ratio_goal(
        report,
        "Consume manual-ack limit=100 (GET with ack=manual, then the ack of its receipt) ≥ 0.5 of auto mode limit=100 (messages/s)",
        crate::scenarios::consume::MANUAL_RUN,
        0.5,
    ));
    let single = "Consume auto mode limit=1 ≥ 0.5 of produce batch 1 (100 B, messages/s)";
    goals.push(
        match (
            report.find("consume limit 1"),
            report.find("produce 100B x1"),
        ) {
            (Some(c), Some(p)) if p.messages_per_s > 0.0 => {
                let r = c.messages_per_s / p.messages_per_s;
                Goal {
                    goal: single.to_owned(),
                    measured: format!(
                        "{r:.2} ({:.0} msg/s against {:.0} msg/s; p99 {:.2} ms against {:.2} ms)",
                        c.messages_per_s,
                        p.messages_per_s,
                        c.latency_us.p99 as f64 / 1000.0,
                        p.latency_us.p99 as f64 / 1000.0
                    ),
                    met: Some(r >= 0.5),
                }
            }
            _ => missing(single),
        },
    );
    let warm = "Authentication with a warm cache ≥ 0.95 of the throughput with authentication off";
    goals.push(
        match (report.find("noop-authenticated"), report.find("auth warm")) {
            (Some(a), w) => {
                let r = a.ratio.unwrap_or(0.0);
                let mut measured = format!("{r:.2} (/_noop/authenticated, one user / /_noop)");
                if let Some(w) = w {
                    measured.push_str(&format!(
                        "; {:.2} for `auth warm` (many users, all cached)",
                        w.ratio.unwrap_or(0.0)
                    ));
                }
                Goal {
                    goal: warm.to_owned(),
                    measured,
                    met: Some(r >= 0.95),
                }
            }
            _ => missing(warm),
        },
    );
    let added = "Added p99 latency over native at half of the maximum load ≤ 2 ms";
    goals.push(
        match (
            report.find("half-load sluice"),
            report.find("half-load native"),
        ) {
            (Some(s), Some(n)) => {
                let delta = (s.latency_us.p99 as f64 - n.latency_us.p99 as f64) / 1000.0;
                Goal {
                    goal: added.to_owned(),
                    measured: format!(
                        "{delta:+.2} ms (p99 {:.2} ms against {:.2} ms at {})",
                        s.latency_us.p99 as f64 / 1000.0,
                        n.latency_us.p99 as f64 / 1000.0,
                        s.mode
                    ),
                    // Faster than native means broker stalls hit the
                    // native run: no conclusion either way.
                    met: (delta >= -1.0).then_some(delta <= 2.0),
                }
            }
            _ => missing(added),
        },
    );
    let idle = "Idle RSS < 50 MB";
    goals.push(match idle_rss_kib {
        Some(kib) => Goal {
            goal: idle.to_owned(),
            measured: format!("{:.1} MiB before any load", mib(kib)),
            met: Some((kib as f64) * 1024.0 < 50e6),
        },
        None => missing(idle),
    });
    let groups = "1,000 active groups add < 100 MB";
    goals.push(
        match report
            .measurements
            .iter()
            .find(|m| m.scenario == "fanin" && m.name != "fan-in 1 group")
        {
            Some(Measurement {
                name,
                rss_before_kib: Some(b),
                rss_after_kib: Some(a),
                ok,
                ..
            }) => {
                let delta = (*a as f64 - *b as f64) * 1024.0;
                // Fewer groups, fewer GETs than groups (most never became
                // active), or a process already grown by earlier scenarios,
                // prove nothing about this goal.
                let conclusive = name.contains("1000 groups") && *ok >= 1000 && delta >= 0.0;
                Goal {
                    goal: groups.to_owned(),
                    measured: format!(
                        "{name}: {ok} GETs answered, RSS {:.1} → {:.1} MiB ({:+.1} MiB){}",
                        *b as f64 / 1024.0,
                        *a as f64 / 1024.0,
                        delta / 1024.0 / 1024.0,
                        if conclusive { "" } else { "; inconclusive" }
                    ),
                    met: conclusive.then_some(delta < 100e6),
                }
            }
            _ => missing(groups),
        },
    );
    goals.extend(stream_goals(report));
    goals.push(idempotency_goal(report));
    goals.extend(performance_goals(report));
    for produce in [true, false] {
        let [alone, with, _] = crate::scenarios::isolation::names(produce);
        let iso = format!(
            "Issue 5 ({}): tenant A at 10× its quota leaves tenant B with no 429s and B's p99 up by ≤ 20 %",
            if produce { "produce" } else { "authenticated no-op route" }
        );
        goals.push(match (report.find(with), report.find(alone)) {
            (Some(with), Some(alone)) => {
                let r = with.ratio.unwrap_or(f64::INFINITY);
                let refused = with.errors.get("429").copied().unwrap_or(0);
                Goal {
                    goal: iso,
                    measured: format!(
                        "B: {refused} × 429, p99 {:.2} ms alone → {:.2} ms with A (× {r:.2})",
                        alone.latency_us.p99 as f64 / 1000.0,
                        with.latency_us.p99 as f64 / 1000.0
                    ),
                    met: Some(refused == 0 && r <= 1.2),
                }
            }
            _ => missing(&iso),
        });
    }
    for attack in Attack::ALL {
        goals.push(attack_goal(report, attack));
    }
    goals
}

/// Issue 15: SSE and WebSocket deliver at least as many messages/s as GET
/// `limit=100`, an SSE event arrives within 50 ms (p99) of its produce at
/// half load, and 1,000 idle streams cost less than 50 MB.
fn stream_goals(report: &Report) -> Vec<Goal> {
    use crate::scenarios::streams::{IDLE_RUN, LATENCY_RUN, SSE_RUN, WS_RUN};
    let mut goals = vec![
        ratio_goal(
            report,
            "Issue 15: SSE streams (auto mode) deliver ≥ 1× the messages/s of GET limit=100",
            SSE_RUN,
            1.0,
        ),
        ratio_goal(
            report,
            "Issue 15: WebSocket streams (manual mode, each frame acked) deliver ≥ 1× the messages/s of GET limit=100",
            WS_RUN,
            1.0,
        ),
    ];
    let latency = "Issue 15: produce → SSE event p99 ≤ 50 ms at half load";
    goals.push(match report.find(LATENCY_RUN) {
        Some(m) if m.ok > 0 => Goal {
            goal: latency.to_owned(),
            measured: format!(
                "p50 {:.2} ms, p99 {:.2} ms ({} messages at {}){}",
                m.latency_us.p50 as f64 / 1000.0,
                m.latency_us.p99 as f64 / 1000.0,
                m.ok,
                m.mode,
                match m.errors.get("not_delivered") {
                    Some(n) => format!("; {n} not delivered"),
                    None => String::new(),
                }
            ),
            // A message that never arrived has no latency, but fails the goal.
            met: Some(m.latency_us.p99 <= 50_000 && m.error_count() == 0),
        },
        _ => missing(latency),
    });
    let idle = "Issue 15: 1,000 idle open streams add < 50 MB of RSS";
    goals.push(match report.find(IDLE_RUN) {
        Some(Measurement {
            ok,
            rss_before_kib: Some(b),
            rss_after_kib: Some(a),
            ..
        }) => {
            let delta = (*a as f64 - *b as f64) * 1024.0;
            // Fewer streams open, or a shrinking process, prove nothing.
            let conclusive = *ok >= 1000 && delta >= 0.0;
            Goal {
                goal: idle.to_owned(),
                measured: format!(
                    "{ok} streams open, RSS {:.1} → {:.1} MiB ({:+.1} MiB){}",
                    mib(*b),
                    mib(*a),
                    delta / 1024.0 / 1024.0,
                    if conclusive { "" } else { "; inconclusive" }
                ),
                met: conclusive.then_some(delta < 50e6),
            }
        }
        _ => missing(idle),
    });
    goals
}

/// `401 × 12, 429 × 3`, or `none`.
fn counts(m: &Measurement) -> String {
    let mut parts: Vec<String> = Vec::new();
    if m.ok > 0 {
        parts.push(format!("2xx × {}", m.ok));
    }
    parts.extend(m.errors.iter().map(|(k, n)| format!("{k} × {n}")));
    if parts.is_empty() {
        parts.push("none finished".to_owned());
    }
    if let Some(n) = m.in_flight.filter(|n| *n > 0) {
        parts.push(format!("{n} still in flight"));
    }
    parts.join(", ")
}

/// Issues 12 and 13: during `attack`, B keeps 100 % success and a p99 at
/// most twice its baseline of the same run, and the node does not restart.
fn attack_goal(report: &Report, attack: Attack) -> Goal {
    let issue = &attack.id()[..2];
    let goal = format!(
        "Issue {issue} ({}): during {}, tenant B keeps 100 % success, a p99 ≤ 2× its baseline, and the node does not restart",
        attack.id(),
        attack.title()
    );
    let (Some(during), Some(alone)) =
        (report.find(&attack.b_run()), report.find(attack.baseline()))
    else {
        return missing(&goal);
    };
    let prefix = attack.prefix();
    let attackers: Vec<&Measurement> = report
        .measurements
        .iter()
        .filter(|m| m.scenario == ATTACKER_SCENARIO && m.name.starts_with(&prefix))
        .collect();
    let success = if during.requests == 0 {
        0.0
    } else {
        during.ok as f64 * 100.0 / during.requests as f64
    };
    let ratio = during.ratio.unwrap_or(f64::INFINITY);
    // Observed when the pid was given: a reading before and none after.
    let gone = std::iter::once(during)
        .chain(attackers.iter().copied())
        .any(|m| m.rss_before_kib.is_some() && m.rss_after_kib.is_none());
    let observed = std::iter::once(alone)
        .chain(attackers.iter().copied())
        .any(|m| m.rss_before_kib.is_some());
    let node = match (observed, gone) {
        (false, _) => "node not observed",
        (true, false) => "node up throughout",
        (true, true) => "NODE GONE",
    };
    let attacker_text = attackers
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                m.name.trim_start_matches(prefix.as_str()),
                counts(m)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let b_errors = if during.errors.is_empty() {
        String::new()
    } else {
        format!(
            " (failed: {})",
            during
                .errors
                .iter()
                .map(|(k, n)| format!("{k} × {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Goal {
        goal,
        measured: format!(
            "B: {success:.2} % of {} ok{b_errors}, p99 {:.2} ms alone → {:.2} ms during (× {ratio:.2}); {attacker_text}; {node}",
            during.requests,
            alone.latency_us.p99 as f64 / 1000.0,
            during.latency_us.p99 as f64 / 1000.0,
        ),
        met: Some(during.requests > 0 && during.ok == during.requests && ratio <= 2.0 && !gone),
    }
}

/// The goals of issue 18: the produce ceiling, batch 1 at a fleet's
/// concurrency, the peer, HTTP/2 sequential latency and memory after load.
fn performance_goals(report: &Report) -> Vec<Goal> {
    use crate::cli::HttpVersion;
    use crate::scenarios::{peer, sequential, sweep};
    let mut goals = vec![ratio_goal(
        report,
        "Produce 100 B × 100 on the null broker ≥ 0.9 of the native producer (messages/s)",
        "ceiling produce 100B x100",
        0.9,
    )];
    let fleet = "Produce batch 1 at 256 connections on the null broker ≥ 0.5 of the no-op route at the same concurrency (stretch: 20k msg/s)";
    goals.push(
        match report.find(&sweep::produce_run(HttpVersion::H1, 256)) {
            Some(m) => match m.ratio {
                Some(r) => Goal {
                    goal: fleet.to_owned(),
                    measured: format!(
                        "{r:.2} ({:.0} msg/s against {:.0} req/s on /_noop)",
                        m.messages_per_s,
                        m.messages_per_s / r
                    ),
                    met: Some(r >= 0.5),
                },
                None => missing(fleet),
            },
            None => missing(fleet),
        },
    );
    for (run, min, goal) in [
        (
            peer::PRODUCE_100,
            100.0,
            "sluice ÷ Karapace REST proxy, produce 100 B × 100 at 16 connections (both plain HTTP, on the null broker) ≥ 100",
        ),
        (
            peer::PRODUCE_1,
            10.0,
            "sluice ÷ Karapace REST proxy, produce batch 1 at 256 connections (both plain HTTP, on the null broker) ≥ 10",
        ),
    ] {
        goals.push(match report.find(run) {
            Some(m) if m.ratio.is_some() => ratio_goal(report, goal, run, min),
            _ => Goal {
                goal: goal.to_owned(),
                measured: "not run (loadtest/run --peer karapace=PATH)".to_owned(),
                met: None,
            },
        });
    }
    let h2 =
        "Sequential requests over HTTP/2: p50 ≤ 1.5 × the HTTP/1.1 p50 (one connection, GET /me)";
    goals.push(match report.find(sequential::H2_RUN) {
        Some(m) => match (m.ratio, report.find(sequential::H1_RUN)) {
            (Some(r), Some(h1)) => Goal {
                goal: h2.to_owned(),
                measured: format!(
                    "{r:.2} (p50 {:.2} ms against {:.2} ms)",
                    m.latency_us.p50 as f64 / 1000.0,
                    h1.latency_us.p50 as f64 / 1000.0
                ),
                met: Some(r <= 1.5),
            },
            _ => missing(h2),
        },
        None => missing(h2),
    });
    let rss = "RSS back under 2 × idle within 30 s of idleness after load";
    goals.push(if report.memory.is_empty() {
        missing(rss)
    } else {
        let measured = report
            .memory
            .iter()
            .map(|c| {
                format!(
                    "after {}: {:.1} → {:.1} MiB ({})",
                    c.after,
                    mib(c.loaded_kib),
                    mib(c.settled_kib),
                    c.under_twice_idle_after_s
                        .map_or("not within 30 s".to_owned(), |s| format!("{s:.1} s"))
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Goal {
            goal: rss.to_owned(),
            measured: format!("{measured}; idle {:.1} MiB", mib(report.memory[0].idle_kib)),
            met: Some(
                report
                    .memory
                    .iter()
                    .all(|c| c.under_twice_idle_after_s.is_some()),
            ),
        }
    });
    goals
}

/// Issue 16: keyed produces against unkeyed ones.
fn idempotency_goal(report: &Report) -> Goal {
    let goal = "Issue 16: produce 100 B × 100 with a unique Idempotency-Key per request ≥ 0.8 of the same without keys (messages/s)";
    let (with_keys, without) = crate::scenarios::idempotency::sums(&report.measurements);
    if without <= 0.0 || with_keys <= 0.0 {
        return missing(goal);
    }
    let r = with_keys / without;
    Goal {
        goal: goal.to_owned(),
        measured: format!(
            "{r:.2} ({with_keys:.0} against {without:.0} msg/s, summed over the ABBA runs)"
        ),
        met: Some(r >= 0.8),
    }
}
