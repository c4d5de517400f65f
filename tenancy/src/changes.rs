//! The stream of tenancy changes every node listens to, so that caches of
//! credentials, grants, quotas and topics drop stale entries within
//! moments of a change made on any node.

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::audit::{ChangeNotice, CHANGES_CHANNEL};
use crate::store::Store;

/// What a listener learns.
#[derive(Debug, Clone)]
pub enum ChangeEvent {
    /// Something changed; drop what is cached about it.
    Changed(ChangeNotice),
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
                Ok(Some(notification)) => match serde_json::from_str(notification.payload()) {
                    Ok(notice) => return ChangeEvent::Changed(notice),
                    Err(err) => tracing::warn!(error = %err, "ignoring a malformed change notice"),
                },
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
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(listener)
    }
}
