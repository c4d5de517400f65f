//! Applies tenancy changes announced by any node to this node's caches.

use std::sync::Arc;

use tenancy::{ChangeEvent, Store, TenantName};

use super::Authenticator;
use crate::kafka::TopicAdmin;

/// Starts the background task that keeps this node's caches in step with
/// changes made anywhere in the cluster.
pub fn spawn_invalidation(store: &Store, auth: Arc<Authenticator>, topics: Arc<TopicAdmin>) {
    let mut changes = store.changes();
    tokio::spawn(async move {
        loop {
            match changes.next().await {
                ChangeEvent::Resynced => {
                    tracing::info!("listening for tenancy changes; cached logins dropped");
                    auth.forget_all();
                }
                ChangeEvent::Changed(notice) => {
                    let (kind, _) = notice
                        .action
                        .split_once('.')
                        .unwrap_or((notice.action.as_str(), ""));
                    match kind {
                        "tenant" => match notice.tenant.as_deref().map(TenantName::parse) {
                            Some(Ok(tenant)) => auth.forget_tenant(&tenant),
                            _ => auth.forget_all(),
                        },
                        "user" | "grant" => auth.forget_user(&notice.target).await,
                        "topic" => topics.forget(&notice.target).await,
                        _ => {}
                    }
                }
            }
        }
    });
}
