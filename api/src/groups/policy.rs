//! A group's dead-letter policy as its tenant sets it: checked against the
//! user's grants (the dead-letter topic takes writes), then stored.

use serde::Deserialize;
use tenancy::store::{DeadLetters, MAX_DELIVERIES_LIMIT};
use tenancy::{Actor, GroupName, TopicName, ValidationError};
use utoipa::ToSchema;

use super::Groups;
use crate::auth::{Access, Principal};
use crate::error::ApiError;

/// `{"max_deliveries":5,"dead_letter_topic":"acme.orders.dlq"}` sets the
/// policy; `{"max_deliveries":null,"dead_letter_topic":null}` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// Deliveries of a range before it is dead-lettered: 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    max_deliveries: Option<i64>,
    /// A topic of the tenant, other than this one, that the user may write.
    #[schema(value_type = Option<crate::name_schemas::TopicName>)]
    dead_letter_topic: Option<String>,
}

fn invalid(reason: impl Into<String>) -> ApiError {
    ValidationError::new("dead_letters", reason).into()
}

impl PolicyBody {
    /// The policy the body asks for (`None`: clear it). The dead-letter
    /// topic must lie in the user's tenant under a `write` grant (else 403
    /// `forbidden`) and differ from `topic` (else 400).
    pub fn policy(
        &self,
        user: &Principal,
        topic: &TopicName,
    ) -> Result<Option<DeadLetters>, ApiError> {
        let (max, dlq) =
            match (self.max_deliveries, self.dead_letter_topic.as_deref()) {
                (None, None) => return Ok(None),
                (Some(max), Some(dlq)) => (max, dlq),
                _ => return Err(invalid(
                    "give both max_deliveries and dead_letter_topic, or neither (null) to clear",
                )),
            };
        let max = i32::try_from(max)
            .ok()
            .filter(|m| (1..=MAX_DELIVERIES_LIMIT).contains(m))
            .ok_or_else(|| invalid(format!("max_deliveries must be 1..={MAX_DELIVERIES_LIMIT}")))?;
        let dlq = user.authorize(dlq, Access::Write)?;
        if &dlq == topic {
            return Err(invalid(
                "the dead-letter topic must differ from the group's topic",
            ));
        }
        Ok(Some(DeadLetters::new(max, dlq)?))
    }
}

impl Groups {
    /// Sets or clears a group's dead-letter policy, creating the group
    /// (within `max_groups`) and its cursors on `topic` if need be;
    /// audited as `group.dead_letters`. The dead-letter topic must exist.
    pub async fn set_policy(
        &self,
        user: &Principal,
        group: &GroupName,
        topic: &TopicName,
        policy: Option<DeadLetters>,
    ) -> Result<(), ApiError> {
        let tenant = &user.tenant;
        self.store.topic(tenant, topic).await?;
        if let Some(policy) = &policy {
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
        self.store
            .set_dead_letters(tenant, &actor, group, policy.as_ref())
            .await?;
        Ok(())
    }
}
