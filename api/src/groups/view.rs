//! What a group looks like from outside: per partition its next offset,
//! the high watermark, the lag and any leased range; its dead-letter
//! policy and its filter; when it was last used. Built once, here, for the operator's
//! `/v1/tenants/{tenant}/groups` and the tenant's `/topic/{topic}/groups`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tenancy::store::{Position, PositionFilter};
use tenancy::{GroupName, GroupRecord, TenantName, TopicName};
use utoipa::ToSchema;

use super::Groups;
use crate::error::ApiError;
use crate::kafka::TopicAdmin;
use crate::name_schemas as names;

/// A range leased to a GET in flight or a manual-mode receipt.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeasedView {
    /// The range's first offset (the group's next offset).
    from: i64,
    /// Its end, exclusive; `null` when the lease does not know it yet.
    to: Option<i64>,
    /// When the lease ends unless settled (or extended).
    expires_at: DateTime<Utc>,
    /// How many times the range has been delivered.
    deliveries: i32,
}

/// A group's position and lag on one partition.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionLag {
    partition: i32,
    /// The next offset the group will receive.
    offset: i64,
    /// The partition's high watermark; `null` when Kafka could not be asked.
    high: Option<i64>,
    lag: Option<i64>,
    /// `null` when nothing holds the partition right now.
    leased: Option<LeasedView>,
}

/// A group's dead-letter policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLettersView {
    /// Deliveries of a range before it goes to the dead-letter topic.
    max_deliveries: i32,
    #[schema(value_type = names::TopicName)]
    dead_letter_topic: String,
}

/// A consumer group on one topic.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    #[schema(value_type = names::GroupName)]
    pub(crate) group: String,
    /// The group id Kafka tooling shows.
    kafka_group: String,
    /// `null` for a group with no cursors (its topics were deleted, or it
    /// was never read).
    #[schema(value_type = Option<names::TopicName>)]
    pub(crate) topic: Option<String>,
    /// Messages not yet delivered, over all partitions; `null` when Kafka
    /// could not be asked.
    lag: Option<i64>,
    partitions: Vec<PartitionLag>,
    /// When a GET last used the group (to within a minute); it is deleted
    /// once unused for `consume.group_retention`.
    last_used_at: Option<DateTime<Utc>>,
    /// `null` when the group has no dead-letter policy.
    dead_letters: Option<DeadLettersView>,
    /// The group's filter on this topic, as written; `null` when it has
    /// none (every message is delivered).
    filter: Option<String>,
}

/// Each partition's high watermark, `None` when Kafka cannot tell.
pub(crate) async fn highs(topics: &TopicAdmin, topic: &str) -> Option<HashMap<i32, i64>> {
    let described = topics.describe(topic).await.ok()?;
    Some(
        described
            .partitions
            .iter()
            .map(|p| (p.partition, p.high))
            .collect(),
    )
}

/// Messages behind the high watermark; never negative.
pub(crate) fn lag(high: i64, next_offset: i64) -> i64 {
    (high - next_offset).max(0)
}

impl Groups {
    /// The tenant's groups that have cursors matching `filter`, one view
    /// per (group, topic). With no topic in the filter, groups without
    /// any cursor are listed too, with no topic.
    pub async fn views(
        &self,
        tenant: &TenantName,
        filter: PositionFilter<'_>,
    ) -> Result<Vec<GroupView>, ApiError> {
        let records: HashMap<String, GroupRecord> = self
            .store
            .list_groups(tenant)
            .await?
            .into_iter()
            .map(|g| (g.group_name.clone(), g))
            .collect();
        let mut by_group: BTreeMap<(String, String), Vec<Position>> = BTreeMap::new();
        for position in self.store.positions(tenant, filter).await? {
            by_group
                .entry((position.group_name.clone(), position.topic.clone()))
                .or_default()
                .push(position);
        }
        let mut filters = self.store.group_filters(tenant).await?;
        let mut marks: HashMap<String, Option<HashMap<i32, i64>>> = HashMap::new();
        let mut views = Vec::new();
        for ((group, topic), positions) in by_group {
            if !marks.contains_key(&topic) {
                marks.insert(topic.clone(), highs(&self.topics, &topic).await);
            }
            let highs = marks.get(&topic).and_then(Option::as_ref);
            let partitions = positions.into_iter().map(|p| partition(p, highs)).collect();
            let filter = filters.remove(&(group.clone(), topic.clone()));
            let mut shown = view(tenant, &group, Some(topic), partitions, records.get(&group));
            shown.filter = filter;
            views.push(shown);
        }
        if filter.topic.is_none() && filter.group.is_none() {
            let placed: HashSet<String> = views.iter().map(|v| v.group.clone()).collect();
            for record in records.values() {
                if !placed.contains(&record.group_name) {
                    let name = &record.group_name;
                    views.push(view(tenant, name, None, Vec::new(), Some(record)));
                }
            }
        }
        views.sort_by(|a, b| (&a.group, &a.topic).cmp(&(&b.group, &b.topic)));
        Ok(views)
    }
}

impl Groups {
    /// The tenant's groups on a topic (which must exist).
    pub async fn on_topic(
        &self,
        tenant: &TenantName,
        topic: &TopicName,
    ) -> Result<Vec<GroupView>, ApiError> {
        self.store.topic(tenant, topic).await?;
        let filter = PositionFilter {
            topic: Some(topic),
            group: None,
        };
        self.views(tenant, filter).await
    }

    /// One group's view on one topic; `group_not_found` when it has no
    /// cursors there.
    pub async fn one(
        &self,
        tenant: &TenantName,
        topic: &TopicName,
        group: &GroupName,
    ) -> Result<GroupView, ApiError> {
        self.store.topic(tenant, topic).await?;
        let filter = PositionFilter {
            topic: Some(topic),
            group: Some(group),
        };
        let found = self.views(tenant, filter).await?.pop();
        found.ok_or_else(|| {
            ApiError::from(tenancy::Error::NotFound {
                kind: tenancy::ObjectKind::Group,
                name: group.to_string(),
            })
        })
    }
}

fn partition(position: Position, highs: Option<&HashMap<i32, i64>>) -> PartitionLag {
    let high = highs.and_then(|m| m.get(&position.partition).copied());
    PartitionLag {
        partition: position.partition,
        offset: position.next_offset,
        high,
        lag: high.map(|h| lag(h, position.next_offset)),
        leased: position.leased.map(|l| LeasedView {
            from: l.from,
            to: l.to,
            expires_at: l.expires_at,
            deliveries: l.deliveries,
        }),
    }
}

fn view(
    tenant: &TenantName,
    group: &str,
    topic: Option<String>,
    partitions: Vec<PartitionLag>,
    record: Option<&GroupRecord>,
) -> GroupView {
    let lag = partitions.iter().map(|p| p.lag).sum::<Option<i64>>();
    let dead_letters = record.and_then(|r| {
        Some(DeadLettersView {
            max_deliveries: r.max_deliveries?,
            dead_letter_topic: r.dead_letter_topic.clone()?,
        })
    });
    GroupView {
        kafka_group: format!("{tenant}.{group}"),
        group: group.to_owned(),
        topic,
        // A group without cursors has nothing to deliver.
        lag: if partitions.is_empty() { Some(0) } else { lag },
        partitions,
        last_used_at: record.map(|r| r.last_used_at),
        dead_letters,
        filter: None,
    }
}

#[cfg(test)]
mod tests {
    use tenancy::store::LeasedRange;

    use super::*;

    fn position(partition: i32, next_offset: i64) -> Position {
        Position {
            group_name: "billing".into(),
            topic: "acme.orders".into(),
            partition,
            next_offset,
            leased: None,
        }
    }

    #[test]
    fn lag_is_what_lies_between_the_position_and_the_high_watermark_never_negative() {
        let highs = HashMap::from([(0, 10), (1, 3)]);
        let ahead = partition(position(1, 5), Some(&highs));
        assert_eq!((ahead.high, ahead.lag), (Some(3), Some(0)));
        let behind = partition(position(0, 4), Some(&highs));
        assert_eq!((behind.high, behind.lag), (Some(10), Some(6)));
        let unknown = partition(position(0, 4), None);
        assert_eq!((unknown.high, unknown.lag), (None, None));
    }

    #[test]
    fn a_group_lag_is_unknown_when_any_partition_is_and_a_lease_is_shown_as_a_range() {
        let tenant = TenantName::parse("acme").unwrap();
        let highs = HashMap::from([(0, 10)]);
        let mut leased = position(0, 4);
        leased.leased = Some(LeasedRange {
            from: 4,
            to: Some(8),
            expires_at: Utc::now(),
            deliveries: 2,
        });
        let parts = vec![
            partition(leased, Some(&highs)),
            partition(position(1, 0), Some(&highs)),
        ];
        let shown = view(&tenant, "billing", Some("acme.orders".into()), parts, None);
        assert_eq!(shown.lag, None);
        assert_eq!(shown.kafka_group, "acme.billing");
        let range = shown.partitions[0].leased.as_ref().unwrap();
        assert_eq!((range.from, range.to, range.deliveries), (4, Some(8), 2));
        let empty = view(&tenant, "idle", None, Vec::new(), None);
        assert_eq!(empty.lag, Some(0));
    }
}
