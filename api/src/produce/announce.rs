//! Tells the other nodes that a topic has new messages, coalesced per topic
//! over a short window, never one announcement per produce request.

use std::collections::HashMap;
use std::time::Duration;

use tenancy::{ProducedNotice, Store};
use tokio::sync::mpsc;

/// How long announcements are gathered before they go out.
const WINDOW: Duration = Duration::from_millis(20);

/// The sending side, cheap to call from the produce handler.
#[derive(Debug, Clone)]
pub struct Announcer {
    tx: mpsc::Sender<(String, i32, i64)>,
}

impl Announcer {
    /// Starts the coalescing task.
    pub fn spawn(store: Store) -> Self {
        let (tx, mut rx) = mpsc::channel::<(String, i32, i64)>(10_000);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut pending: HashMap<String, HashMap<i32, i64>> = HashMap::new();
                let mut add = |(topic, partition, high): (String, i32, i64)| {
                    let slot = pending
                        .entry(topic)
                        .or_default()
                        .entry(partition)
                        .or_insert(high);
                    *slot = (*slot).max(high);
                };
                add(first);
                let until = tokio::time::Instant::now() + WINDOW;
                while let Ok(Some(next)) = tokio::time::timeout_at(until, rx.recv()).await {
                    add(next);
                }
                for (topic, highs) in pending {
                    let notice = ProducedNotice {
                        topic,
                        highs: highs.into_iter().collect(),
                    };
                    if let Err(err) = store.announce_produced(&notice).await {
                        tracing::debug!(error = %err, "cannot announce new messages");
                    }
                }
            }
        });
        Self { tx }
    }

    /// Queues an announcement; dropped if the queue is full (the
    /// watermark poller catches up).
    pub fn announce(&self, topic: &str, partition: i32, high: i64) {
        let _ = self.tx.try_send((topic.to_owned(), partition, high));
    }
}
