//! Forgets receipts long ended: each is kept `consume.receipt_retention`
//! past its expiry, so that a repeated ack still gets 204 and a late one
//! 409 `receipt_expired`, and then deleted so the table stays small.

use std::time::Duration;

use tenancy::Store;

/// Starts the purge on this node, every `interval`. Nodes purging at once
/// delete disjoint or no rows: the statement is idempotent and indexed.
pub fn spawn_receipt_purge(store: Store, keep: Duration, interval: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match store.purge_receipts(keep).await {
                Ok(0) => {}
                Ok(purged) => {
                    tracing::debug!(purged, "forgot receipts past consume.receipt_retention")
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot purge old receipts; retrying later")
                }
            }
        }
    });
}
