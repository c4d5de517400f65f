//! Liveness and readiness, served on both listeners. Liveness says the
//! process serves HTTP; readiness says Postgres and Kafka answer, so that a
//! balancer stops sending traffic to a node that cannot serve it.
//!
//! Readiness is public and anonymous, so it must cost nothing: one task per
//! node checks Postgres and Kafka every [`READINESS_REFRESH`], and `/readyz`
//! only reads the last result. A flood of `/readyz` calls never reaches
//! Postgres or Kafka.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use tenancy::Store;
use tokio::sync::watch;

use crate::kafka::TopicAdmin;

/// How often the readiness task checks Postgres and Kafka; what `/readyz`
/// answers is at most this old, plus the time the checks took.
pub const READINESS_REFRESH: Duration = Duration::from_millis(500);

/// A dependency that has not answered within this long counts as
/// unavailable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of the last check of each dependency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Checked {
    /// `false` until the first check has finished.
    done: bool,
    postgres: bool,
    kafka: bool,
}

/// The node's readiness, kept fresh by a background task.
#[derive(Debug, Clone)]
pub struct Readiness {
    state: watch::Receiver<Checked>,
}

impl Readiness {
    /// Starts the one task of this node that checks its dependencies.
    pub fn spawn(store: Store, topics: Arc<TopicAdmin>) -> Self {
        let (tx, state) = watch::channel(Checked::default());
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(READINESS_REFRESH);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let (postgres, kafka) = futures::join!(
                    tokio::time::timeout(CHECK_TIMEOUT, store.ping()),
                    tokio::time::timeout(CHECK_TIMEOUT, topics.ping()),
                );
                let postgres = outcome("postgres", postgres.map(|r| r.map_err(|e| e.to_string())));
                let kafka = outcome("kafka", kafka.map(|r| r.map_err(|e| e.to_string())));
                crate::metrics::record_readiness(postgres.is_ok(), kafka.is_ok());
                let now = Checked {
                    done: true,
                    postgres: postgres.is_ok(),
                    kafka: kafka.is_ok(),
                };
                let before = tx.send_replace(now);
                log_change(before, now, &postgres, &kafka);
            }
        });
        Self { state }
    }

    /// The last outcome; before the first check has finished, waits for it
    /// (at most as long as a check may take).
    async fn current(&self) -> Checked {
        let mut state = self.state.clone();
        let first = tokio::time::timeout(CHECK_TIMEOUT, state.wait_for(|s| s.done)).await;
        match first {
            Ok(Ok(checked)) => *checked,
            _ => *self.state.borrow(),
        }
    }
}

fn outcome(
    dependency: &'static str,
    result: Result<Result<(), String>, tokio::time::error::Elapsed>,
) -> Result<(), String> {
    match result {
        Ok(inner) => inner,
        Err(_) => Err(format!(
            "{dependency} did not answer within {CHECK_TIMEOUT:?}"
        )),
    }
}

/// Logs when a dependency comes or goes, not at every check.
fn log_change(
    before: Checked,
    now: Checked,
    postgres: &Result<(), String>,
    kafka: &Result<(), String>,
) {
    for (name, was, is, result) in [
        ("postgres", before.postgres, now.postgres, postgres),
        ("kafka", before.kafka, now.kafka, kafka),
    ] {
        match result {
            Err(err) if was || !before.done => {
                tracing::warn!(dependency = name, error = %err, "readiness: unavailable");
            }
            Ok(()) if !was && is && before.done => {
                tracing::info!(dependency = name, "readiness: available again");
            }
            _ => {}
        }
    }
}

/// What `/healthz` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// What `/readyz` answers. Fields in alphabetical order, as the answer has
/// always had them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadinessView {
    /// Absent while draining.
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<Checks>,
    /// `ready`, `not_ready` or `draining`.
    #[schema(value_type = String, example = "ready")]
    status: &'static str,
}

/// Each dependency: `ok` or `unavailable`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Checks {
    #[schema(value_type = String, example = "ok")]
    kafka: &'static str,
    #[schema(value_type = String, example = "ok")]
    postgres: &'static str,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(tag = "health", security(()), responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: Postgres and Kafka answered the last background check (at
/// most about 1 s old), and the node is not draining.
#[utoipa::path(tag = "health", security(()), responses(
    (status = 200, body = ReadinessView),
    (status = 503, description = "Not ready, or draining", body = ReadinessView),
))]
#[get("/readyz")]
pub async fn readyz(
    readiness: web::Data<Readiness>,
    shutdown: web::Data<crate::shutdown::Shutdown>,
) -> HttpResponse {
    if shutdown.is_draining() {
        return HttpResponse::ServiceUnavailable().json(ReadinessView {
            checks: None,
            status: "draining",
        });
    }
    let checked = readiness.current().await;
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let ready = checked.postgres && checked.kafka;
    let body = ReadinessView {
        checks: Some(Checks {
            kafka: word(checked.kafka),
            postgres: word(checked.postgres),
        }),
        status: if ready { "ready" } else { "not_ready" },
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
