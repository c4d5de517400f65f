//! The tenant's topics as one code path for both planes: the operator's
//! `/v1/tenants/{tenant}/topics` and the self-service `/topics` of users
//! with a `manage` grant create, delete and show topics through
//! [`Topics`], so quotas, validation, the Kafka/store agreement and the
//! audit row cannot differ between them. The data-plane routes are in
//! [`handlers`].

pub mod handlers;
mod lifecycle;

use std::sync::Arc;

use tenancy::Store;

pub use lifecycle::{TopicSpec, MAX_PARTITIONS_PER_TOPIC};

use crate::consume;
use crate::kafka::TopicAdmin;

/// What creating, deleting and showing topics needs: the store for the
/// records and quotas, Kafka for the topics themselves, the consume
/// service to stop every node reading a topic before it goes.
#[derive(Debug, Clone)]
pub struct Topics {
    store: Store,
    kafka: Arc<TopicAdmin>,
    consumption: Arc<consume::Service>,
}

impl Topics {
    pub fn new(store: Store, kafka: Arc<TopicAdmin>, consumption: Arc<consume::Service>) -> Self {
        Self {
            store,
            kafka,
            consumption,
        }
    }
}
