//! A node run as the real `sluice` binary, for tests that kill it, signal
//! it, read its logs or measure its threads and memory.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinHandle;

use super::{data_client, tls, TestApp, ADMIN_TOKEN};

pub struct BinaryNode {
    pub child: tokio::process::Child,
    pub admin_url: String,
    pub public_url: String,
    /// Every log line, returned when the process ends.
    pub log: JoinHandle<Vec<String>>,
    _dir: tempfile::TempDir,
}

impl BinaryNode {
    /// Starts `sluice serve` with a config file, JSON logs at `rust_log`.
    pub async fn start(database_url: &str, bootstrap: &str, rust_log: &str) -> BinaryNode {
        Self::launch(database_url, bootstrap, rust_log, "", &[]).await
    }

    /// Like [`BinaryNode::start`], with `extra` appended to the config
    /// file (whole TOML tables, e.g. `[consume]\nlease_ms = 3000\n`).
    pub async fn start_with(
        database_url: &str,
        bootstrap: &str,
        rust_log: &str,
        extra: &str,
    ) -> BinaryNode {
        Self::launch(database_url, bootstrap, rust_log, extra, &[]).await
    }

    /// [`BinaryNode::start`] with `SLUICE_*` overrides in its environment.
    pub async fn start_with_env(
        database_url: &str,
        bootstrap: &str,
        rust_log: &str,
        env: &[(&str, &str)],
    ) -> BinaryNode {
        Self::launch(database_url, bootstrap, rust_log, "", env).await
    }

    async fn launch(
        database_url: &str,
        bootstrap: &str,
        rust_log: &str,
        extra: &str,
        env: &[(&str, &str)],
    ) -> BinaryNode {
        let certs = tls::certs();
        let dir = tempfile::tempdir().unwrap();
        // A copy of its own, so that a test can replace it and reload.
        let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
        std::fs::copy(&certs.cert, &cert).unwrap();
        std::fs::copy(&certs.key, &key).unwrap();
        let config: PathBuf = dir.path().join("sluice.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\n\
                 [tls]\nenabled = true\ncert = \"{}\"\nkey = \"{}\"\n\
                 [database]\nurl = \"{database_url}\"\n\
                 [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n\
                 [kafka]\nbootstrap_servers = \"{bootstrap}\"\nreplication_factor = 1\n\
                 [kafka.properties]\n\"batch.num.messages\" = \"1\"\n\
                 [log]\nformat = \"json\"\n{extra}",
                cert.display(),
                key.display(),
            ),
        )
        .unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            // The startup line carries the bound ports; keep it whatever the level.
            .env("RUST_LOG", format!("{rust_log},sluice::startup=info"))
            .env_remove("SLUICE_CONFIG")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = Vec::new();
        let (admin, public) = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("the server starts")
                .unwrap()
                .expect("the server is still running");
            log.push(line.clone());
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                if event["message"] == "sluice is serving" {
                    break (
                        event["admin"].as_str().unwrap().to_owned(),
                        event["public"].as_str().unwrap().to_owned(),
                    );
                }
            }
        };
        let log = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                log.push(line);
            }
            log
        });
        BinaryNode {
            child,
            admin_url: format!("http://{admin}"),
            public_url: format!("https://localhost:{}", public.rsplit_once(':').unwrap().1),
            log,
            _dir: dir,
        }
    }

    /// The node's own certificate and key files.
    pub fn tls_files(&self) -> (PathBuf, PathBuf) {
        (
            self._dir.path().join("server.pem"),
            self._dir.path().join("server.key"),
        )
    }

    /// An unlabelled counter or gauge of this node's `/metrics`; 0 when it
    /// has no sample yet.
    pub async fn metric(&self, name: &str) -> f64 {
        let metrics = reqwest::get(format!("{}/metrics", self.admin_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("{name} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// A `TestApp` whose endpoint helpers talk to this node.
    pub async fn test_app(&self, database_url: &str, bootstrap: &str) -> TestApp {
        TestApp {
            admin_url: self.admin_url.clone(),
            public_url: self.public_url.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            data: data_client(),
            db: sqlx::PgPool::connect(database_url).await.unwrap(),
            database_url: database_url.to_owned(),
            bootstrap: bootstrap.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends a signal by name (TERM, KILL, …).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Threads and resident memory (KiB) of the process, from /proc.
    pub fn threads_and_rss(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        (field("Threads:"), field("VmRSS:"))
    }
}
