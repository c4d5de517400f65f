//! `/v1/tenants/{tenant}/groups`: consumer groups with their lag, and
//! resets to the earliest offset, the latest, or a point in time.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpResponse};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenancy::{GroupName, Store, TenantName, TopicName};

use super::AuditActor;
use crate::error::ApiError;
use crate::kafka::{OffsetTarget, TopicAdmin};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartitionLag {
    partition: i32,
    /// The next offset the group will receive.
    offset: i64,
    high: Option<i64>,
    lag: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    group: String,
    /// The group id Kafka tooling shows.
    kafka_group: String,
    topic: String,
    /// Messages not yet delivered, over all partitions; `null` when Kafka
    /// could not be asked.
    lag: Option<i64>,
    partitions: Vec<PartitionLag>,
}

pub async fn list(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path)?;
    store.tenant(&tenant).await?;
    let mut by_group: BTreeMap<(String, String), Vec<(i32, i64)>> = BTreeMap::new();
    for row in store.cursors(&tenant).await? {
        by_group
            .entry((row.group_name, row.topic))
            .or_default()
            .push((row.partition, row.next_offset));
    }
    let mut highs: HashMap<String, Option<HashMap<i32, i64>>> = HashMap::new();
    let mut views = Vec::new();
    for ((group, topic), cursors) in by_group {
        if !highs.contains_key(&topic) {
            let described = topics
                .describe(&topic)
                .await
                .ok()
                .map(|d| d.partitions.iter().map(|p| (p.partition, p.high)).collect());
            highs.insert(topic.clone(), described);
        }
        let marks = highs.get(&topic).and_then(Option::as_ref);
        let partitions: Vec<PartitionLag> = cursors
            .into_iter()
            .map(|(partition, offset)| {
                let high = marks.and_then(|m| m.get(&partition).copied());
                PartitionLag {
                    partition,
                    offset,
                    high,
                    lag: high.map(|h| (h - offset).max(0)),
                }
            })
            .collect();
        let lag = partitions.iter().map(|p| p.lag).sum::<Option<i64>>();
        views.push(GroupView {
            kafka_group: format!("{tenant}.{group}"),
            group,
            topic,
            lag,
            partitions,
        });
    }
    Ok(HttpResponse::Ok().json(views))
}

/// `{"topic": "acme.orders", "to": "earliest" | "latest" | "<RFC 3339>" | <ms>}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    topic: String,
    /// "earliest", "latest", an RFC 3339 time, or milliseconds since the epoch.
    #[schema(value_type = String, example = "earliest")]
    to: Value,
}

fn target(to: &Value) -> Result<OffsetTarget, ApiError> {
    let invalid = || {
        ApiError::from(tenancy::ValidationError::new(
            "to",
            "must be \"earliest\", \"latest\", an RFC 3339 time or milliseconds since the epoch",
        ))
    };
    match to {
        Value::String(s) if s == "earliest" => Ok(OffsetTarget::Earliest),
        Value::String(s) if s == "latest" => Ok(OffsetTarget::Latest),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| OffsetTarget::Timestamp(t.timestamp_millis()))
            .map_err(|_| invalid()),
        Value::Number(n) => n
            .as_i64()
            .filter(|ms| *ms >= 0)
            .map(OffsetTarget::Timestamp)
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

pub async fn reset(
    store: web::Data<Store>,
    topics: web::Data<TopicAdmin>,
    actor: AuditActor,
    path: web::Path<(String, String)>,
    body: web::Json<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = TenantName::parse(&path.0)?;
    let group = GroupName::parse(&path.1)?;
    let topic = TopicName::parse(&tenant, &body.topic)?;
    let target = target(&body.to)?;
    store.topic(&tenant, &topic).await?;
    let offsets = topics.offsets_for(topic.as_str(), target).await?;
    let lows = topics
        .offsets_for(topic.as_str(), OffsetTarget::Earliest)
        .await?;
    store.ensure_cursors(&tenant, &group, &topic, &lows).await?;
    store
        .reset_cursors(&tenant, &actor.0, &group, &topic, &offsets)
        .await?;
    let partitions: Vec<Value> = offsets
        .iter()
        .map(|(p, o)| serde_json::json!({ "partition": p, "offset": o }))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "group": group,
        "topic": topic,
        "partitions": partitions,
    })))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reset_targets_are_earliest_latest_a_time_or_milliseconds() {
        assert_eq!(target(&json!("earliest")).unwrap(), OffsetTarget::Earliest);
        assert_eq!(target(&json!("latest")).unwrap(), OffsetTarget::Latest);
        assert_eq!(
            target(&json!("2023-11-14T22:13:25Z")).unwrap(),
            OffsetTarget::Timestamp(1_700_000_005_000)
        );
        assert_eq!(
            target(&json!(1_700_000_007_000_i64)).unwrap(),
            OffsetTarget::Timestamp(1_700_000_007_000)
        );
        for bad in [
            json!("yesterday"),
            json!(-1),
            json!(null),
            json!({ "at": 1 }),
        ] {
            assert!(target(&bad).is_err(), "{bad}");
        }
    }
}
