//! Applies what other nodes announce through Postgres to this node's
//! caches: tenancy changes drop cached logins and topic metadata; produce
//! announcements raise watermarks and wake long polls. When the listening
//! connection is replaced, notices may have been lost, so every cache fed
//! by them is dropped.

use std::sync::Arc;

use tenancy::{ChangeEvent, Store, TenantName};

use crate::auth::Authenticator;
use crate::consume::{self, ConsumeAdmission};
use crate::kafka::{TopicAdmin, Watermarks};
use crate::stream::Streams;

/// The caches a node keeps in step with the cluster.
#[derive(Debug, Clone)]
pub struct Caches {
    pub auth: Arc<Authenticator>,
    pub topics: Arc<TopicAdmin>,
    pub watermarks: Arc<Watermarks>,
    pub consumption: Arc<consume::Service>,
    pub admission: Arc<ConsumeAdmission>,
    /// Open streams, told to check their users again on changes.
    pub streams: Arc<Streams>,
}

impl Caches {
    /// Drops everything notices keep fresh: cached logins, partition
    /// counts, watermarks, recently read messages and known cursor rows.
    pub fn forget_all(&self) {
        self.auth.forget_all();
        self.topics.forget_all();
        self.watermarks.forget_all();
        self.consumption.forget_all();
        self.streams.recheck_all();
    }
}

/// Starts the background task.
pub fn spawn(store: &Store, caches: Caches) {
    let mut changes = store.changes();
    tokio::spawn(async move {
        loop {
            match changes.next().await {
                ChangeEvent::Resynced => {
                    tracing::info!("listening for cluster notices; caches fed by them dropped");
                    // More than one per node start means the listening
                    // connection was lost or went silent.
                    metrics::counter!("sluice_notice_listener_connects_total").increment(1);
                    caches.forget_all();
                }
                ChangeEvent::Produced(notice) => {
                    for (partition, high) in notice.highs {
                        caches.watermarks.observe(&notice.topic, partition, high);
                    }
                }
                ChangeEvent::Changed(notice) => {
                    let (kind, _) = notice
                        .action
                        .split_once('.')
                        .unwrap_or((notice.action.as_str(), ""));
                    match kind {
                        "tenant" => match notice.tenant.as_deref().map(TenantName::parse) {
                            Some(Ok(tenant)) => {
                                caches.auth.forget_tenant(&tenant);
                                caches.streams.recheck_tenant(tenant.as_str());
                            }
                            _ => {
                                caches.auth.forget_all();
                                caches.streams.recheck_all();
                            }
                        },
                        "user" | "grant" => {
                            caches.auth.forget_user(&notice.target);
                            caches.streams.recheck_user(&notice.target);
                        }
                        "topic" => {
                            if notice.action == "topic.deleting" {
                                caches.consumption.release_topic(&notice.target).await;
                            }
                            caches.topics.forget(&notice.target).await;
                            caches.watermarks.forget(&notice.target);
                            caches.consumption.forget_cursors();
                            caches.consumption.forget_filters();
                        }
                        "group" if notice.action == "group.filter" => {
                            caches.consumption.forget_filters();
                        }
                        // A group deleted (by an operator or the retention):
                        // its next GET must create it and its cursors again.
                        "group" if notice.action != "group.reset" => {
                            caches.admission.forget_groups();
                            caches.consumption.forget_cursors();
                            caches.consumption.forget_filters();
                        }
                        _ => {}
                    }
                }
            }
        }
    });
}
