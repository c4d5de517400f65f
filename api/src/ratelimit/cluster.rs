//! How many nodes are alive: each node announces itself to Postgres every
//! second and counts the others, so each can enforce 1/N of every quota.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tenancy::Store;

/// A node is alive if seen within this long.
const ALIVE_WITHIN: Duration = Duration::from_secs(4);
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The live-node count this node believes in.
#[derive(Debug)]
pub struct Cluster {
    id: uuid::Uuid,
    live: AtomicU32,
}

impl Cluster {
    /// Starts the heartbeat. If Postgres is unreachable the last count is
    /// kept: quotas stay split as they were.
    pub fn spawn(store: Store) -> Arc<Self> {
        let cluster = Arc::new(Self {
            id: uuid::Uuid::new_v4(),
            live: AtomicU32::new(1),
        });
        let me = cluster.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(HEARTBEAT);
            loop {
                ticker.tick().await;
                match store.heartbeat(me.id, ALIVE_WITHIN).await {
                    Ok(live) => {
                        let before = me.live.swap(live, Ordering::Relaxed);
                        if before != live {
                            tracing::info!(
                                nodes = live,
                                "live node count changed; quotas re-split"
                            );
                        }
                    }
                    Err(err) => tracing::debug!(error = %err, "heartbeat failed"),
                }
            }
        });
        cluster
    }

    /// Live nodes, at least 1.
    pub fn live_nodes(&self) -> u32 {
        self.live.load(Ordering::Relaxed).max(1)
    }
}
