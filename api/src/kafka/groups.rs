//! Deleting the Kafka consumer groups that the mirror creates
//! (`<tenant>.<group>`), when sluice deletes the group itself: otherwise
//! Kafka would keep their committed offsets, and tooling would keep
//! listing them, until Kafka's own offsets retention.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use super::client_config::base_config;
use super::error::KafkaError;
use super::settings::KafkaSettings;

/// An admin client of its own, so that group clean-up never queues behind
/// topic administration.
pub struct KafkaGroups {
    admin: AdminClient<DefaultClientContext>,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaGroups").finish_non_exhaustive()
    }
}

impl KafkaGroups {
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        let admin = base_config(settings)
            .create()
            .map_err(|e| KafkaError::Config(e.to_string()))?;
        Ok(Self {
            admin,
            timeout: settings.request_timeout,
        })
    }

    /// Deletes Kafka groups by id; returns how many existed. A group Kafka
    /// does not know (never mirrored, or already gone) counts as deleted.
    pub async fn delete(&self, group_ids: &[String]) -> Result<usize, KafkaError> {
        if group_ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = group_ids.iter().map(String::as_str).collect();
        let options = AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout));
        let results = self
            .admin
            .delete_groups(&ids, &options)
            .await
            .map_err(|e| KafkaError::Unavailable(e.to_string()))?;
        let mut deleted = 0;
        for result in results {
            match result {
                Ok(_) => deleted += 1,
                Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((group, code)) => {
                    return Err(KafkaError::Unavailable(format!(
                        "cannot delete Kafka group {group}: {code}"
                    )))
                }
            }
        }
        Ok(deleted)
    }
}
