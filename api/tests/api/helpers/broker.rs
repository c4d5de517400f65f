//! The Kafka-protocol broker for the tests: the one `ops/test` started
//! (SLUICE_TEST_KAFKA_BOOTSTRAP), or else a tansu this process starts once,
//! watched so that it dies with the test process.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static BOOTSTRAP: OnceLock<String> = OnceLock::new();

/// Bootstrap servers of the shared test broker.
pub fn bootstrap() -> String {
    BOOTSTRAP
        .get_or_init(|| match std::env::var("SLUICE_TEST_KAFKA_BOOTSTRAP") {
            Ok(servers) => servers,
            Err(_) => start_tansu(),
        })
        .clone()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tansu_binary() -> String {
    if let Ok(path) = std::env::var("SLUICE_TEST_TANSU") {
        return path;
    }
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../ops/tansu"))
        .arg("path")
        .output()
        .expect("ops/tansu runs");
    assert!(out.status.success(), "ops/tansu path failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A tansu broker of the calling test's own (in memory, gone with the test
/// process), for tests that delete and recreate topics or crash things.
pub fn own_broker() -> String {
    start_tansu()
}

fn start_tansu() -> String {
    let port = free_port();
    let tansu = tansu_binary();
    let me = std::process::id();
    // The watchdog kills the broker once this test process is gone.
    let script = format!(
        "'{tansu}' broker --listener-url tcp://127.0.0.1:{port} --advertised-listener-url tcp://127.0.0.1:{port} \
         --storage-engine memory://tansu/ >/dev/null 2>&1 & b=$!; \
         while kill -0 {me} 2>/dev/null; do sleep 1; done; kill $b"
    );
    // Never waited on: the watchdog outlives this function on purpose and
    // exits by itself once the test process is gone.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "tansu did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("127.0.0.1:{port}")
}
