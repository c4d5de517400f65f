//! The stream of tenancy changes every node listens to, so that caches of
//! credentials, grants, quotas and topics drop stale entries within
//! moments of a change made on any node.

use std::time::Duration;

use sqlx::postgres::PgListener;

use serde::{Deserialize, Serialize};

use crate::audit::{ChangeNotice, CHANGES_CHANNEL};
use crate::error::{Error, Result};
use crate::names::{TenantName, TopicName};
use crate::store::Store;

/// The channel on which nodes announce new messages, coalesced per topic,
/// so that long polls on other nodes wake up.
pub const PRODUCED_CHANNEL: &str = "sluice_produced";

/// New high watermarks of some partitions of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducedNotice {
    pub topic: String,
    /// (partition, high watermark) pairs.
    pub highs: Vec<(i32, i64)>,
}

/// What a listener learns.
#[derive(Debug, Clone)]
pub enum ChangeEvent {
    /// Something changed; drop what is cached about it.
    Changed(ChangeNotice),
    /// Messages were produced through some node.
    Produced(ProducedNotice),
    /// The listening connection was (re-)established. Notifications sent
    /// while it was down are lost, so everything cached must be dropped.
    /// While Postgres is unreachable no change can be made, so caches stay
    /// valid until this arrives.
    Resynced,
}

/// A reconnecting LISTEN on [`CHANGES_CHANNEL`].
#[derive(Debug)]
pub struct ChangeStream {
    store: Store,
    listener: Option<PgListener>,
}

impl Store {
    /// Starts listening for tenancy changes.
    pub fn changes(&self) -> ChangeStream {
        ChangeStream {
            store: self.clone(),
            listener: None,
        }
    }
}

impl ChangeStream {
    /// The next event; waits (reconnecting as needed) until there is one.
    pub async fn next(&mut self) -> ChangeEvent {
        loop {
            let Some(listener) = self.listener.as_mut() else {
                match self.connect().await {
                    Ok(listener) => {
                        self.listener = Some(listener);
                        return ChangeEvent::Resynced;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot listen for tenancy changes; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            };
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let payload = notification.payload();
                    let event = if notification.channel() == PRODUCED_CHANNEL {
                        serde_json::from_str(payload).map(ChangeEvent::Produced)
                    } else {
                        serde_json::from_str(payload).map(ChangeEvent::Changed)
                    };
                    match event {
                        Ok(event) => return event,
                        Err(err) => tracing::warn!(error = %err, "ignoring a malformed notice"),
                    }
                }
                Ok(None) => {
                    tracing::warn!(
                        "lost the tenancy change listener; caches are dropped on reconnect"
                    );
                    self.listener = None;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "tenancy change listener failed");
                    self.listener = None;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    async fn connect(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(self.store.pool()).await?;
        listener
            .listen_all([CHANGES_CHANNEL, PRODUCED_CHANNEL])
            .await?;
        Ok(listener)
    }
}

impl Store {
    /// Tells every node that a topic has new messages.
    pub async fn announce_produced(&self, notice: &ProducedNotice) -> Result<()> {
        let payload = serde_json::to_string(notice).unwrap_or_default();
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(PRODUCED_CHANNEL)
            .bind(payload)
            .execute(self.pool())
            .await
            .map_err(Error::db("announce new messages"))?;
        Ok(())
    }

    /// Tells every node that a topic is about to be deleted, so that they
    /// stop reading it first (some brokers answer fetches for a deleted
    /// topic in a way that crashes librdkafka).
    pub async fn announce_topic_deleting(
        &self,
        tenant: &TenantName,
        topic: &TopicName,
    ) -> Result<()> {
        let payload = serde_json::json!({
            "action": "topic.deleting",
            "tenant": tenant.as_str(),
            "target": topic.as_str(),
        });
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(payload.to_string())
            .execute(self.pool())
            .await
            .map_err(Error::db("announce a topic deletion"))?;
        Ok(())
    }
}
