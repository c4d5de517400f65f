//! Moving a group: what a seek body may say, and the one way a group is
//! moved, for the tenant's seek and the operator's reset alike.

use serde::Deserialize;
use tenancy::{Actor, GroupName, TenantName, TopicName, ValidationError};
use utoipa::ToSchema;

use super::Groups;
use crate::error::ApiError;
use crate::kafka::OffsetTarget;

/// `{"to":"earliest"}`, `{"to":"latest"}`,
/// `{"to":"timestamp","timestamp":MS}`, or
/// `{"offsets":[{"Partition":0,"Offset":42}]}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeekBody {
    /// `earliest`, `latest` or `timestamp`; not with `offsets`.
    #[schema(example = "earliest")]
    to: Option<String>,
    /// With `"to":"timestamp"`: milliseconds since the epoch; the group
    /// moves to the first message at or after it (the end where none is).
    timestamp: Option<i64>,
    /// Explicit positions, not with `to`: partitions left out stay put.
    offsets: Option<Vec<SeekOffset>>,
}

/// One partition's new next offset, between its low and high watermarks.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeekOffset {
    #[serde(rename = "Partition")]
    partition: i32,
    #[serde(rename = "Offset")]
    offset: i64,
}

/// Where a group is to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seek {
    To(OffsetTarget),
    /// (partition, next offset), checked against the topic when applied.
    Offsets(Vec<(i32, i64)>),
}

fn invalid(reason: impl Into<String>) -> ApiError {
    ValidationError::new("seek", reason).into()
}

impl SeekBody {
    /// The seek the body asks for, or 400 `invalid_seek` saying what is
    /// wrong with its shape.
    pub fn seek(&self) -> Result<Seek, ApiError> {
        match (self.to.as_deref(), &self.offsets) {
            (Some(_), Some(_)) => Err(invalid("give either \"to\" or \"offsets\", not both")),
            (None, None) => Err(invalid("give \"to\" or \"offsets\"")),
            (None, Some(offsets)) => self.offsets(offsets),
            (Some(to), None) => self.target(to).map(Seek::To),
        }
    }

    fn target(&self, to: &str) -> Result<OffsetTarget, ApiError> {
        match (to, self.timestamp) {
            ("earliest", None) => Ok(OffsetTarget::Earliest),
            ("latest", None) => Ok(OffsetTarget::Latest),
            ("timestamp", Some(ms)) if ms >= 0 => Ok(OffsetTarget::Timestamp(ms)),
            ("timestamp", _) => Err(invalid(
                "\"to\":\"timestamp\" needs \"timestamp\": milliseconds since the epoch, 0 or more",
            )),
            ("earliest" | "latest", Some(_)) => {
                Err(invalid("\"timestamp\" goes only with \"to\":\"timestamp\""))
            }
            _ => Err(invalid(
                "\"to\" must be \"earliest\", \"latest\" or \"timestamp\"",
            )),
        }
    }

    fn offsets(&self, offsets: &[SeekOffset]) -> Result<Seek, ApiError> {
        if self.timestamp.is_some() {
            return Err(invalid("\"timestamp\" goes only with \"to\":\"timestamp\""));
        }
        if offsets.is_empty() {
            return Err(invalid("\"offsets\" names no partition"));
        }
        let mut seen = std::collections::HashSet::new();
        for o in offsets {
            if !seen.insert(o.partition) {
                return Err(invalid(format!("partition {} is named twice", o.partition)));
            }
        }
        Ok(Seek::Offsets(
            offsets.iter().map(|o| (o.partition, o.offset)).collect(),
        ))
    }
}

impl Groups {
    /// Moves a group's cursors on a topic, creating the group (within
    /// `max_groups`) and its cursors if need be. Leases in flight are
    /// waited for and receipts ended (`Store::reset_cursors`); the move is
    /// audited as `group.reset` with `actor`.
    pub async fn seek(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        group: &GroupName,
        topic: &TopicName,
        seek: Seek,
    ) -> Result<Vec<(i32, i64)>, ApiError> {
        self.store.topic(tenant, topic).await?;
        let described = self.topics.describe(topic.as_str()).await?;
        let lows: Vec<(i32, i64)> = described
            .partitions
            .iter()
            .map(|p| (p.partition, p.low))
            .collect();
        let offsets = match seek {
            Seek::To(OffsetTarget::Earliest) => lows.clone(),
            Seek::To(target) => self.topics.offsets_for(topic.as_str(), target).await?,
            Seek::Offsets(offsets) => {
                for &(partition, offset) in &offsets {
                    let Some(p) = described
                        .partitions
                        .iter()
                        .find(|p| p.partition == partition)
                    else {
                        return Err(ValidationError::new(
                            "partition",
                            format!("topic '{topic}' has no partition {partition}"),
                        )
                        .into());
                    };
                    if !(p.low..=p.high).contains(&offset) {
                        return Err(invalid(format!(
                            "offset {offset} of partition {partition} is outside {}..={}, the offsets it holds",
                            p.low, p.high
                        )));
                    }
                }
                offsets
            }
        };
        // A seek may create the group: it counts against max_groups too.
        self.store.admit_group(tenant, group).await?;
        self.store
            .ensure_cursors(tenant, group, topic, &lows)
            .await?;
        self.store
            .reset_cursors(tenant, actor, group, topic, &offsets)
            .await?;
        Ok(offsets)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn seek(body: serde_json::Value) -> Result<Seek, ApiError> {
        serde_json::from_value::<SeekBody>(body).unwrap().seek()
    }

    #[test]
    fn a_seek_goes_to_an_end_a_time_or_explicit_offsets() {
        assert_eq!(
            seek(json!({"to": "earliest"})).unwrap(),
            Seek::To(OffsetTarget::Earliest)
        );
        assert_eq!(
            seek(json!({"to": "latest"})).unwrap(),
            Seek::To(OffsetTarget::Latest)
        );
        assert_eq!(
            seek(json!({"to": "timestamp", "timestamp": 1_700_000_000_000_i64})).unwrap(),
            Seek::To(OffsetTarget::Timestamp(1_700_000_000_000))
        );
        assert_eq!(
            seek(json!({"offsets": [{"Partition": 1, "Offset": 42}]})).unwrap(),
            Seek::Offsets(vec![(1, 42)])
        );
    }

    #[test]
    fn a_seek_body_of_the_wrong_shape_is_invalid_seek() {
        for bad in [
            json!({}),
            json!({"to": "yesterday"}),
            json!({"to": "timestamp"}),
            json!({"to": "timestamp", "timestamp": -1}),
            json!({"to": "earliest", "timestamp": 5}),
            json!({"to": "earliest", "offsets": [{"Partition": 0, "Offset": 1}]}),
            json!({"offsets": []}),
            json!({"offsets": [{"Partition": 0, "Offset": 1}, {"Partition": 0, "Offset": 2}]}),
        ] {
            let err = seek(bad.clone()).unwrap_err();
            assert_eq!(err.code().as_str(), "invalid_seek", "{bad}");
        }
    }
}
