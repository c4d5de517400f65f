//! `sluice-loadtest` against a real node, for a few seconds: the report is
//! written, every run moved messages, and nothing failed.

use clap::Parser;
use serde_json::Value;
use sluice_loadtest::Args;

use crate::helpers::{tls, TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn a_short_load_test_reports_throughput_for_every_run_and_no_errors() {
    let app = TestApp::spawn_with(|f| f.merge(("http.noop_routes", true))).await;
    let out = tempfile::tempdir().unwrap();
    let ca = tls::certs().ca.display().to_string();
    let args = Args::parse_from([
        "sluice-loadtest",
        "--url",
        &app.public_url,
        "--admin-url",
        &app.admin_url,
        "--admin-token",
        ADMIN_TOKEN,
        "--ca",
        &ca,
        "--bootstrap",
        &app.bootstrap,
        "--kafka-property",
        "batch.num.messages=1",
        "--quick",
        "--only",
        "produce,consume",
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--prefill",
        "3000",
        "--concurrency",
        "4",
        "--out",
        &out.path().display().to_string(),
    ]);

    let failed = sluice_loadtest::run(args)
        .await
        .expect("the load test runs");

    assert_eq!(failed, 0, "requests failed");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).unwrap()).unwrap();
    let runs = report["measurements"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|m| m["name"].as_str().unwrap()).collect();
    for wanted in [
        "produce",
        "consume limit 1",
        "consume limit 100",
        "native consume 100",
        "consume manual limit 100",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(wanted)),
            "no run named {wanted}* in {names:?}"
        );
    }
    for run in runs {
        assert!(
            run["requests_per_s"].as_f64().unwrap() > 0.0,
            "{} measured no throughput",
            run["name"]
        );
        assert_eq!(run["errors"], serde_json::json!({}), "{}", run["name"]);
    }
    for run in runs.iter().filter(|m| m["scenario"] != "noop") {
        assert!(
            run["messages_per_s"].as_f64().unwrap() > 0.0,
            "{} moved no messages",
            run["name"]
        );
    }
    let goals = report["goals"].as_array().unwrap();
    for wanted in ["Consume manual-ack limit=100", "Consume auto mode limit=1"] {
        let goal = goals
            .iter()
            .find(|g| g["goal"].as_str().unwrap().starts_with(wanted))
            .unwrap_or_else(|| panic!("no goal {wanted}* in {goals:?}"));
        assert!(
            !goal["measured"]
                .as_str()
                .unwrap()
                .starts_with("not measured"),
            "{goal}"
        );
    }
    let manual = runs
        .iter()
        .find(|m| m["name"] == "consume manual limit 100")
        .unwrap();
    assert_eq!(manual["baseline"], "consume limit 100", "{manual}");
    assert!(out.path().join("report.md").exists());
}
