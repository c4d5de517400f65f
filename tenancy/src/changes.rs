//! The stream of tenancy changes every node listens to, so that caches of
//! credentials, grants, quotas and topics drop stale entries within
//! moments of a change made on any node.
//!
//! The listening connection is supervised: a connection that dies without
//! a word (a dropped route, a NAT entry gone, a failover) would otherwise
//! leave the node serving stale caches until TCP gives up, which can take
//! hours. So every [`HEARTBEAT`] the listener sends a notice to itself, on a
//! channel of its own; when none has come back for [`DEAD_AFTER`], the
//! connection is dropped and a new one made, and caches are dropped
//! ([`ChangeEvent::Resynced`]) since notices may have been lost meanwhile.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::time::Instant;

use serde::{Deserialize, Serialize};

use crate::audit::{ChangeNotice, CHANGES_CHANNEL};
use crate::error::{Error, Result};
use crate::names::{TenantName, TopicName};
use crate::store::Store;

/// The channel on which nodes announce new messages, coalesced per topic,
/// so that long polls on other nodes wake up.
pub const PRODUCED_CHANNEL: &str = "sluice_produced";

/// How often the listener sends a notice to itself.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long without its own notice coming back before the listening
/// connection counts as dead: three heartbeats, so that one slow round trip
/// does not drop every cache, and well within the 5 s in which a change
/// must reach every node.
pub const DEAD_AFTER: Duration = Duration::from_secs(3);

/// The longest a new listening connection may take to be made.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `application_name` of the listening connection, so that operators (and
/// tests) can tell it apart in `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "sluice-listener";

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

/// A supervised, reconnecting LISTEN on [`CHANGES_CHANNEL`] and
/// [`PRODUCED_CHANNEL`].
pub struct ChangeStream {
    store: Store,
    /// This stream's own channel for heartbeats: no other node listens to
    /// it, so heartbeats cost nothing elsewhere.
    heartbeat_channel: String,
    /// What this stream's heartbeats carry, unique to it.
    heartbeat_payload: String,
    live: Option<Live>,
}

impl std::fmt::Debug for ChangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeStream")
            .field("heartbeat_channel", &self.heartbeat_channel)
            .field("connected", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

/// A listening connection and what is known of its health.
struct Live {
    listener: PgListener,
    /// When the connection last proved that it delivers notices: when it
    /// was made, or when a notice last arrived on it.
    last_heard: Instant,
    /// When the next heartbeat is due.
    next_beat: Instant,
}

/// What one wait on the connection gave.
enum Step {
    Notice(sqlx::postgres::PgNotification),
    Lost,
    Failed(sqlx::Error),
    BeatDue,
}

impl Store {
    /// Starts listening for tenancy changes.
    pub fn changes(&self) -> ChangeStream {
        let id = uuid::Uuid::new_v4().simple().to_string();
        ChangeStream {
            store: self.clone(),
            heartbeat_channel: format!("sluice_listener_{id}"),
            heartbeat_payload: id,
            live: None,
        }
    }
}

impl ChangeStream {
    /// The next event; waits (reconnecting as needed) until there is one.
    pub async fn next(&mut self) -> ChangeEvent {
        loop {
            let Some(live) = self.live.as_mut() else {
                match self.connect().await {
                    Ok(listener) => {
                        let now = Instant::now();
                        self.live = Some(Live {
                            listener,
                            last_heard: now,
                            next_beat: now + HEARTBEAT,
                        });
                        return ChangeEvent::Resynced;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot listen for tenancy changes; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            };
            let dead_at = live.last_heard + DEAD_AFTER;
            if Instant::now() >= dead_at {
                tracing::warn!(
                    silent_for = ?live.last_heard.elapsed(),
                    "the tenancy change listener went silent; reconnecting, caches are dropped"
                );
                self.live = None;
                continue;
            }
            let step = tokio::select! {
                received = live.listener.try_recv() => match received {
                    Ok(Some(notification)) => Step::Notice(notification),
                    Ok(None) => Step::Lost,
                    Err(err) => Step::Failed(err),
                },
                () = tokio::time::sleep_until(live.next_beat.min(dead_at)) => Step::BeatDue,
            };
            match step {
                Step::Notice(notification) => {
                    live.last_heard = Instant::now();
                    if notification.channel() == self.heartbeat_channel {
                        continue;
                    }
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
                Step::Lost => {
                    tracing::warn!(
                        "lost the tenancy change listener; caches are dropped on reconnect"
                    );
                    self.live = None;
                }
                Step::Failed(err) => {
                    tracing::warn!(error = %err, "tenancy change listener failed");
                    self.live = None;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Step::BeatDue if Instant::now() >= live.next_beat => {
                    live.next_beat = Instant::now() + HEARTBEAT;
                    // Sent on the listening connection itself, so that its
                    // coming back proves this very connection works; on a
                    // dead connection the send itself may hang, hence the
                    // deadline.
                    let beat = sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(&self.heartbeat_channel)
                        .bind(&self.heartbeat_payload)
                        .execute(&mut live.listener);
                    match tokio::time::timeout_at(dead_at, beat).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(err)) => {
                            tracing::warn!(error = %err, "tenancy change listener failed a heartbeat; reconnecting");
                            self.live = None;
                        }
                        // The next turn finds it silent for too long.
                        Err(_) => {}
                    }
                }
                Step::BeatDue => {}
            }
        }
    }

    /// A listening connection of its own: from a pool of one, so that it
    /// never waits behind requests for a connection, never gets an idle
    /// connection that died meanwhile, and a dead one that is dropped
    /// takes no slot of the request pool.
    async fn connect(&self) -> Result<PgListener, sqlx::Error> {
        let options = (*self.store.pool().connect_options())
            .clone()
            .application_name(LISTENER_APPLICATION_NAME);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);
        let connect = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            // A lost connection is reported (and replaced) here, so that
            // caches are dropped; not silently re-made underneath.
            listener.eager_reconnect(false);
            listener
                .listen_all([
                    CHANGES_CHANNEL,
                    PRODUCED_CHANNEL,
                    self.heartbeat_channel.as_str(),
                ])
                .await?;
            Ok(listener)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
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
