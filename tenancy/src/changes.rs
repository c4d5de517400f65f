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

/// Postgres refuses a NOTIFY payload of 8000 bytes or more.
pub const MAX_NOTIFY_PAYLOAD: usize = 7999;

impl ProducedNotice {
    /// The notice as JSON payloads each within `max_bytes`: a topic with
    /// many partitions is announced in several notices rather than in one
    /// that NOTIFY refuses (and that would be lost).
    pub fn payloads(&self, max_bytes: usize) -> Vec<String> {
        let whole = serde_json::to_string(self).unwrap_or_default();
        if whole.len() <= max_bytes || self.highs.len() <= 1 {
            return vec![whole];
        }
        // Fill each notice greedily: an empty notice's size plus each
        // pair's, with the comma between pairs.
        let empty = serde_json::to_string(&ProducedNotice {
            topic: self.topic.clone(),
            highs: Vec::new(),
        })
        .unwrap_or_default()
        .len();
        let mut payloads = Vec::new();
        let mut chunk: Vec<(i32, i64)> = Vec::new();
        let mut size = empty;
        for &pair in &self.highs {
            let pair_size = serde_json::to_string(&pair).unwrap_or_default().len();
            let added = pair_size + usize::from(!chunk.is_empty());
            if !chunk.is_empty() && size + added > max_bytes {
                payloads.push(self.with_highs(std::mem::take(&mut chunk)));
                size = empty;
            }
            size += pair_size + usize::from(!chunk.is_empty());
            chunk.push(pair);
        }
        if !chunk.is_empty() {
            payloads.push(self.with_highs(chunk));
        }
        payloads
    }

    fn with_highs(&self, highs: Vec<(i32, i64)>) -> String {
        serde_json::to_string(&ProducedNotice {
            topic: self.topic.clone(),
            highs,
        })
        .unwrap_or_default()
    }
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
    /// Tells every node that a topic has new messages: in as many notices
    /// as NOTIFY's payload limit needs, sent in one statement.
    pub async fn announce_produced(&self, notice: &ProducedNotice) -> Result<()> {
        let payloads = notice.payloads(MAX_NOTIFY_PAYLOAD);
        sqlx::query(
            "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS n(p, i) ORDER BY i",
        )
        .bind(PRODUCED_CHANNEL)
        .bind(payloads)
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

#[cfg(test)]
mod tests {
    use super::{ProducedNotice, MAX_NOTIFY_PAYLOAD};

    #[test]
    fn a_small_notice_goes_out_whole() {
        let notice = ProducedNotice {
            topic: "acme.orders".into(),
            highs: vec![(0, 5), (1, 7)],
        };
        assert_eq!(
            notice.payloads(MAX_NOTIFY_PAYLOAD),
            vec![r#"{"topic":"acme.orders","highs":[[0,5],[1,7]]}"#.to_owned()]
        );
    }

    #[test]
    fn a_thousand_partitions_with_huge_offsets_are_split_under_the_notify_limit_losing_none() {
        let topic = format!("acme.{}", "x".repeat(240));
        let highs: Vec<(i32, i64)> = (0..1000).map(|p| (p, i64::MAX - i64::from(p))).collect();
        let notice = ProducedNotice {
            topic: topic.clone(),
            highs: highs.clone(),
        };
        let payloads = notice.payloads(MAX_NOTIFY_PAYLOAD);
        assert!(payloads.len() > 1);
        let mut seen = Vec::new();
        for payload in &payloads {
            assert!(
                payload.len() <= MAX_NOTIFY_PAYLOAD,
                "{} bytes",
                payload.len()
            );
            let part: ProducedNotice = serde_json::from_str(payload).unwrap();
            assert_eq!(part.topic, topic);
            seen.extend(part.highs);
        }
        assert_eq!(seen, highs);
    }

    #[test]
    fn notices_are_filled_close_to_the_limit() {
        let highs: Vec<(i32, i64)> = (0..5000).map(|p| (p, 1)).collect();
        let payloads = ProducedNotice {
            topic: "acme.orders".into(),
            highs,
        }
        .payloads(1000);
        for payload in &payloads[..payloads.len() - 1] {
            assert!((980..=1000).contains(&payload.len()), "{}", payload.len());
        }
    }
}
