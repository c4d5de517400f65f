//! The lag gauge for every group with cursors, not only for groups that
//! were just read: every `consume.lag_interval`, the node that holds the
//! lag lock reads every cursor (one query) and each topic's high
//! watermarks, and sets `sluice_consumer_lag{tenant,group,topic}`. The lag
//! of a consumer that stopped therefore keeps rising, which
//! `SluiceConsumerLagGrowing` needs.
//!
//! One node measures at a time (a Postgres session advisory lock held on a
//! connection of its own), so the database sees one query per interval
//! and Kafka one watermark fetch per topic, whatever the number of nodes.
//! A series on another node (set by its GETs) may be older; the alert
//! takes the `max` over nodes, and a stale one goes idle and is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tenancy::store::{GroupCursors, LagLeadership};
use tenancy::Store;

use super::view::{highs, lag};
use crate::kafka::TopicAdmin;

/// Most (tenant, group, topic) series measured per interval: a bound on
/// the query, on the Kafka fetches and on the gauge's cardinality. Groups
/// are already bounded per tenant by `max_groups`.
const MAX_SERIES: i64 = 20_000;

/// Starts measuring every `interval`; 0 turns it off.
pub fn spawn_lag_gauge(store: Store, topics: Arc<TopicAdmin>, interval: Duration) {
    if interval.is_zero() {
        tracing::info!("consume.lag_interval is 0: lag is measured only by GETs");
        return;
    }
    tokio::spawn(async move {
        let mut leadership = LagLeadership::default();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match store.lag_cursors(&mut leadership, MAX_SERIES).await {
                Ok(Some(groups)) => measure(&topics, groups).await,
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the cursors to measure lag; retrying at the next interval");
                }
            }
        }
    });
}

/// Sets the gauge of each group whose topic Kafka described.
async fn measure(topics: &TopicAdmin, groups: Vec<GroupCursors>) {
    if i64::try_from(groups.len()).unwrap_or(i64::MAX) >= MAX_SERIES {
        tracing::warn!(
            max = MAX_SERIES,
            "more (tenant, group, topic) than the lag gauge measures; the rest keep their last value"
        );
    }
    let mut marks: HashMap<String, Option<HashMap<i32, i64>>> = HashMap::new();
    for group in groups {
        if !marks.contains_key(&group.topic) {
            let described = highs(topics, &group.topic).await;
            if described.is_none() {
                tracing::debug!(topic = %group.topic, "no watermarks for the lag gauge");
            }
            marks.insert(group.topic.clone(), described);
        }
        let Some(Some(highs)) = marks.get(&group.topic) else {
            continue;
        };
        let behind: i64 = group
            .partitions
            .iter()
            .zip(&group.offsets)
            .filter_map(|(p, next)| highs.get(p).map(|high| lag(*high, *next)))
            .sum();
        metrics::gauge!(
            "sluice_consumer_lag",
            "tenant" => group.tenant,
            "group" => group.group_name,
            "topic" => group.topic,
        )
        .set(behind as f64);
    }
}
