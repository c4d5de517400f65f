//! Creating, deleting and showing a tenant's topics: the checks, the
//! quota reservation, Kafka, and the audit row, in one place for the
//! admin API and the data plane.

use std::collections::BTreeMap;

use tenancy::{Actor, TenantName, TopicName, TopicRecord, ValidationError};

use super::Topics;
use crate::admin::views::TopicView;
use crate::error::ApiError;
use crate::kafka::ALLOWED_TOPIC_CONFIG;

/// Most partitions one topic may have, whatever the quota.
pub const MAX_PARTITIONS_PER_TOPIC: u32 = 1_000;

/// A topic to create, as the caller asked for it; checked by
/// [`Topics::create`].
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: TopicName,
    pub partitions: u32,
    /// `kafka.replication_factor` when `None`.
    pub replication_factor: Option<i32>,
    /// Only keys of [`ALLOWED_TOPIC_CONFIG`].
    pub config: BTreeMap<String, String>,
}

impl TopicSpec {
    /// Bounds no quota changes: a partition count of 1..=1000, a
    /// replication factor of at least 1, allowed config keys only.
    fn check(&self) -> Result<(), ApiError> {
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(invalid(
                "partitions",
                format!("must be 1..={MAX_PARTITIONS_PER_TOPIC}"),
            ));
        }
        if self.replication_factor.is_some_and(|rf| rf < 1) {
            return Err(invalid("replication_factor", "must be at least 1".into()));
        }
        if let Some(key) = self
            .config
            .keys()
            .find(|k| !ALLOWED_TOPIC_CONFIG.contains(&k.as_str()))
        {
            return Err(invalid(
                "config",
                format!(
                    "'{key}' cannot be set per topic; allowed: {}",
                    ALLOWED_TOPIC_CONFIG.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

fn invalid(field: &'static str, reason: String) -> ApiError {
    ApiError::from(ValidationError::new(field, reason))
}

impl Topics {
    /// Creates a topic in Kafka within the tenant's topic and partition
    /// quotas (409 `quota_exceeded` past them), audited as `topic.create`
    /// by `actor`. The quota is reserved in the store first and committed
    /// only once Kafka has the topic, so the two never disagree.
    pub async fn create(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        spec: &TopicSpec,
    ) -> Result<TopicView, ApiError> {
        spec.check()?;
        let topic = &spec.name;
        let reservation = self
            .store
            .reserve_topic(tenant, topic, spec.partitions)
            .await?;
        let partitions = i32::try_from(spec.partitions).unwrap_or(i32::MAX);
        self.kafka
            .create(
                topic.as_str(),
                partitions,
                spec.replication_factor,
                &spec.config,
            )
            .await?;
        if let Err(err) = reservation
            .commit(actor, serde_json::json!(spec.config))
            .await
        {
            // Kafka has the topic but the store does not: undo, so they agree.
            if let Err(undo) = self.kafka.delete(topic.as_str()).await {
                tracing::error!(topic = %topic, error = %undo, "topic left in Kafka without a record");
            }
            return Err(err.into());
        }
        let record = self.store.topic(tenant, topic).await?;
        Ok(self.view(record).await)
    }

    /// Deletes a topic of the tenant, from Kafka too, once every node has
    /// stopped reading it; audited as `topic.delete` by `actor`.
    pub async fn delete(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        topic: &TopicName,
    ) -> Result<(), ApiError> {
        self.store.topic(tenant, topic).await?;
        self.stop_reading(tenant, std::slice::from_ref(topic))
            .await?;
        self.kafka.delete(topic.as_str()).await?;
        self.store.delete_topic(tenant, actor, topic).await?;
        Ok(())
    }

    /// Deletes every topic of a tenant from Kafka, for a forced tenant
    /// delete (the store's records go with the tenant).
    pub async fn delete_all_in_kafka(&self, tenant: &TenantName) -> Result<(), ApiError> {
        let names = self
            .store
            .list_topics(tenant)
            .await?
            .into_iter()
            .map(|record| TopicName::parse(tenant, &record.name))
            .collect::<Result<Vec<_>, _>>()?;
        self.stop_reading(tenant, &names).await?;
        for name in &names {
            self.kafka.delete(name.as_str()).await?;
        }
        Ok(())
    }

    /// The tenant's topics, each with its watermarks, by name.
    pub async fn list(&self, tenant: &TenantName) -> Result<Vec<TopicView>, ApiError> {
        let mut views = Vec::new();
        for record in self.store.list_topics(tenant).await? {
            views.push(self.view(record).await);
        }
        Ok(views)
    }

    /// The tenant's topics for which `keep` holds, with their watermarks:
    /// Kafka is asked only about those.
    pub async fn list_where(
        &self,
        tenant: &TenantName,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<TopicView>, ApiError> {
        let mut views = Vec::new();
        for record in self.store.list_topics(tenant).await? {
            if keep(&record.name) {
                views.push(self.view(record).await);
            }
        }
        Ok(views)
    }

    /// One topic of the tenant with its watermarks.
    pub async fn show(
        &self,
        tenant: &TenantName,
        topic: &TopicName,
    ) -> Result<TopicView, ApiError> {
        let record = self.store.topic(tenant, topic).await?;
        Ok(self.view(record).await)
    }

    /// A topic with what Kafka says about it; `partitions_detail` is
    /// absent when Kafka could not be asked.
    async fn view(&self, record: TopicRecord) -> TopicView {
        let partitions_detail = match self.kafka.describe(&record.name).await {
            Ok(description) => Some(description.partitions),
            Err(err) => {
                tracing::warn!(topic = %record.name, error = %err, "cannot describe topic");
                None
            }
        };
        TopicView::new(record, partitions_detail)
    }

    /// Makes every node stop reading topics about to be deleted, and waits
    /// until they have: this node's readers at once, the others on the
    /// announcement, within the longest read they may have in progress.
    async fn stop_reading(&self, tenant: &TenantName, names: &[TopicName]) -> Result<(), ApiError> {
        for name in names {
            self.store.announce_topic_deleting(tenant, name).await?;
            self.consumption.release_topic(name.as_str()).await;
        }
        if !names.is_empty() {
            tokio::time::sleep(self.consumption.release_grace()).await;
        }
        Ok(())
    }
}
