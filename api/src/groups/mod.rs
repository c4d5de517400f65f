//! Consumer groups as their tenant and the operator see and move them:
//! the one place a group's view is built ([`view`]), a group is moved
//! ([`seek`]) or given a dead-letter policy ([`policy`]) and a filter
//! ([`filter`]), both set through [`settings`]; the data-plane
//! routes on `/topic/{topic}/groups` ([`handlers`]); and the lag gauge
//! kept for every group with cursors ([`lag`]).

pub mod filter;
pub mod handlers;
mod lag;
mod policy;
mod seek;
mod settings;
mod view;

use std::sync::Arc;

use tenancy::Store;

pub use lag::spawn_lag_gauge;
pub use seek::{Seek, SeekBody, SeekOffset};
pub use settings::{GroupSettings, SettingsChange};
pub use view::{DeadLettersView, GroupView, LeasedView, PartitionLag};

use crate::kafka::TopicAdmin;

/// What the groups views and moves need: the store for cursors and
/// policies, Kafka for watermarks and offsets.
#[derive(Debug, Clone)]
pub struct Groups {
    store: Store,
    topics: Arc<TopicAdmin>,
}

impl Groups {
    pub fn new(store: Store, topics: Arc<TopicAdmin>) -> Self {
        Self { store, topics }
    }
}
