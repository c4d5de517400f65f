//! Group filters on the consume path: each (tenant, group, topic)'s
//! parsed filter, cached on the node and dropped when a `group.filter`
//! notice says it changed; and the skipping of what does not match.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use tenancy::{GroupName, Store, TenantName, TopicName};

use crate::error::ApiError;
use crate::groups::filter::Filter;
use crate::kafka::ReadOutcome;

/// How long a cached filter is trusted without a notice: a backstop for
/// a notice lost while the listening connection was being replaced
/// (which drops the cache anyway).
const TRUSTED_FOR: Duration = Duration::from_secs(60);

/// The filters this node has looked up, `None` for "no filter".
#[derive(Debug)]
pub struct GroupFilters {
    store: Store,
    cache: Cache<(String, String, String), Option<Arc<Filter>>>,
    /// Bumped by [`GroupFilters::forget`]: a lookup that began before a
    /// change does not cache what it read.
    generation: AtomicU64,
}

/// What a filter skipped in one read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    pub messages: u64,
    pub bytes: u64,
}

impl Skipped {
    pub fn add(&mut self, other: Skipped) {
        self.messages += other.messages;
        self.bytes += other.bytes;
    }
}

impl GroupFilters {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(TRUSTED_FOR)
                .build(),
            generation: AtomicU64::new(0),
        }
    }

    /// The filter of `group` on `topic`, from the cache or, once a minute
    /// at most, from Postgres.
    pub async fn of(
        &self,
        tenant: &TenantName,
        group: &GroupName,
        topic: &TopicName,
    ) -> Result<Option<Arc<Filter>>, ApiError> {
        let key = (tenant.to_string(), group.to_string(), topic.to_string());
        if let Some(filter) = self.cache.get(&key).await {
            return Ok(filter);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let text = self.store.group_filter(tenant, group, topic).await?;
        let filter = text.and_then(|text| parsed(&text)).map(Arc::new);
        if self.generation.load(Ordering::Acquire) == generation {
            self.cache.insert(key, filter.clone()).await;
        }
        Ok(filter)
    }

    /// Forgets every cached filter: one changed somewhere in the cluster.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
    }
}

/// A stored filter, parsed. Every stored filter was parsed before it was
/// stored, so this fails only if the grammar lost a form a filter uses; the
/// group then gets every message (and an error in the log), rather than
/// none.
fn parsed(text: &str) -> Option<Filter> {
    match Filter::parse(text) {
        Ok(filter) => Some(filter),
        Err(err) => {
            tracing::error!(error = %err, "a stored group filter no longer parses; ignoring it");
            None
        }
    }
}

/// Messages a read takes from a partition at least, when the group has a
/// filter: a filter that matches one message in many must not cost a
/// lease and a commit per message read.
pub const SCAN_AT_LEAST: usize = 256;

/// Keeps the first `keep_at_most` messages of `outcome` that `filter`
/// matches and drops the others before them. The cursor moves past every
/// message dropped and stops before the first one not looked at (a read
/// with a filter takes more than it may deliver); a manual-mode range
/// still starts where the read did.
pub fn skip_unmatched(filter: &Filter, outcome: &mut ReadOutcome, keep_at_most: usize) -> Skipped {
    if outcome.first_read.is_none() {
        outcome.first_read = outcome.messages.first().map(|m| m.offset);
    }
    let mut skipped = Skipped::default();
    let mut kept = Vec::with_capacity(keep_at_most.min(outcome.messages.len()));
    let mut cut = None;
    for message in outcome.messages.drain(..) {
        if kept.len() == keep_at_most {
            cut = Some(message.offset);
            break;
        }
        if filter.matches(&message) {
            kept.push(message);
        } else {
            skipped.messages += 1;
            skipped.bytes += message.size() as u64;
        }
    }
    if let Some(first_unseen) = cut {
        outcome.next_cursor = first_unseen;
    }
    outcome.messages = kept;
    skipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::ConsumedMessage;

    fn read(values: &[&str], next_cursor: i64) -> ReadOutcome {
        let messages = values
            .iter()
            .enumerate()
            .map(|(offset, value)| ConsumedMessage {
                partition: 0,
                offset: offset as i64,
                key: None,
                value: Some(value.as_bytes().to_vec()),
                headers: Vec::new(),
                timestamp: None,
            })
            .collect();
        ReadOutcome {
            messages,
            next_cursor,
            ..ReadOutcome::default()
        }
    }

    #[test]
    fn what_does_not_match_is_dropped_counted_and_passed_by_the_cursor() {
        let filter = Filter::parse(r#"value.t == "a""#).unwrap();
        let mut outcome = read(&[r#"{"t":"b"}"#, r#"{"t":"a"}"#, "not json"], 3);
        let skipped = skip_unmatched(&filter, &mut outcome, 10);
        assert_eq!(skipped.messages, 2);
        assert_eq!(skipped.bytes, (9 + 8) as u64);
        assert_eq!(outcome.messages.len(), 1);
        assert_eq!(outcome.messages[0].offset, 1);
        assert_eq!(outcome.next_cursor, 3);
        assert_eq!(outcome.first_read, Some(0));
    }

    #[test]
    fn a_read_past_the_limit_stops_the_cursor_before_the_first_message_not_looked_at() {
        let filter = Filter::parse(r#"value.t == "a""#).unwrap();
        let a = r#"{"t":"a"}"#;
        let b = r#"{"t":"b"}"#;
        let mut outcome = read(&[b, a, b, a, b, a], 6);
        let skipped = skip_unmatched(&filter, &mut outcome, 2);
        let offsets: Vec<i64> = outcome.messages.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [1, 3]);
        // Offset 4 was not looked at: it is read again next time.
        assert_eq!(outcome.next_cursor, 4);
        assert_eq!(skipped.messages, 2);
    }
}
