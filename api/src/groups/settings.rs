//! `PUT /topic/{topic}/groups/{group}`: what a tenant sets on its group,
//! the dead-letter policy and the filter. A field left out is left as it
//! is; a field given as `null` is cleared.

use serde::{Deserialize, Deserializer};
use tenancy::store::DeadLetters;
use tenancy::{Actor, GroupName, TopicName};
use utoipa::ToSchema;

use super::filter::Filter;
use super::{policy, Groups};
use crate::auth::Principal;
use crate::error::ApiError;

/// `{"max_deliveries":5,"dead_letter_topic":"acme.orders.dlq"}` sets the
/// dead-letter policy, `{"filter":"value.type == \"order\""}` the filter;
/// `null` clears either, and a field left out keeps its value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupSettings {
    /// Deliveries of a range before it is dead-lettered: 1 to 1000. With
    /// `dead_letter_topic`; both `null` clear the policy.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    max_deliveries: Option<Option<i64>>,
    /// A topic of the tenant, other than this one, that the user may write.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<crate::name_schemas::TopicName>)]
    dead_letter_topic: Option<Option<String>>,
    /// Only messages that match are delivered to the group on this topic;
    /// the others are skipped (its position moves past them). `null`
    /// clears it. The grammar is in the README ("Group filters").
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1024,
        example = "value.type == \"order\" && header.region ^= \"eu-\"")]
    filter: Option<Option<String>>,
}

/// A field that is present, `null` or not: `Some(None)` for `null`, so
/// that an absent field (serde's default, `None`) can be told apart.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A checked [`GroupSettings`]: `None` leaves a setting as it is.
#[derive(Debug, Default)]
pub struct SettingsChange {
    pub dead_letters: Option<Option<DeadLetters>>,
    /// The filter as written, parsed once to check it.
    pub filter: Option<Option<String>>,
}

impl GroupSettings {
    /// Checks the body for `user` on `topic`: a dead-letter topic under a
    /// `write` grant, a filter that parses (else 400 `invalid_filter`,
    /// naming the position).
    pub fn check(&self, user: &Principal, topic: &TopicName) -> Result<SettingsChange, ApiError> {
        let dead_letters = match (&self.max_deliveries, &self.dead_letter_topic) {
            (None, None) => None,
            (max, dlq) => Some(policy::dead_letters(
                user,
                topic,
                max.flatten(),
                dlq.as_ref().and_then(|d| d.as_deref()),
            )?),
        };
        let filter = match &self.filter {
            Some(Some(text)) => {
                Filter::parse(text)?;
                Some(Some(text.clone()))
            }
            Some(None) => Some(None),
            None => None,
        };
        Ok(SettingsChange {
            dead_letters,
            filter,
        })
    }
}

impl Groups {
    /// Applies `change` to `group` on `topic`, creating the group (within
    /// `max_groups`) and its cursors if need be. The topics involved must
    /// exist. Audited as `group.dead_letters` and `group.filter`.
    pub async fn update(
        &self,
        user: &Principal,
        group: &GroupName,
        topic: &TopicName,
        change: SettingsChange,
    ) -> Result<(), ApiError> {
        let tenant = &user.tenant;
        self.store.topic(tenant, topic).await?;
        if let Some(Some(policy)) = &change.dead_letters {
            self.store.topic(tenant, &policy.dead_letter_topic).await?;
        }
        let lows = self
            .topics
            .offsets_for(topic.as_str(), crate::kafka::OffsetTarget::Earliest)
            .await?;
        self.store.admit_group(tenant, group).await?;
        self.store
            .ensure_cursors(tenant, group, topic, &lows)
            .await?;
        let actor = Actor::user(&user.username);
        if let Some(policy) = &change.dead_letters {
            self.store
                .set_dead_letters(tenant, &actor, group, policy.as_ref())
                .await?;
        }
        if let Some(filter) = &change.filter {
            self.store
                .set_group_filter(tenant, &actor, group, topic, filter.as_deref())
                .await?;
        }
        Ok(())
    }
}
