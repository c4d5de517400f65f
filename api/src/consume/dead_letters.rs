//! Dead letters: a manual-mode range delivered more often than its group's
//! `max_deliveries` is produced to the group's dead-letter topic, with
//! headers naming where it came from, and then committed, so that one
//! message a consumer can never handle does not block its partition for
//! ever. The produce is charged to the tenant like any other.

use std::sync::Arc;

use tenancy::store::{DeadLetters, LeasedPartition};
use tenancy::TopicName;

use crate::auth::Principal;
use crate::kafka::{ConsumedMessage, OutgoingMessage, Producer, ReadOutcome};
use crate::ratelimit::TenantLimits;

/// Header naming the topic a dead letter was read from.
pub const SOURCE_TOPIC: &str = "sluice-source-topic";
/// Header naming its partition there.
pub const SOURCE_PARTITION: &str = "sluice-source-partition";
/// Header naming its offset there.
pub const SOURCE_OFFSET: &str = "sluice-source-offset";
/// Header counting how many times it had been delivered.
pub const DELIVERIES: &str = "sluice-deliveries";

/// Produces what `outcome` read from `leased` to the dead-letter topic.
/// True once every message is stored (the range may then be committed);
/// false if any was not, and the range stays where it is.
pub async fn send(
    producer: &Arc<Producer>,
    principal: &Principal,
    quotas: &TenantLimits,
    topic: &TopicName,
    leased: &LeasedPartition,
    outcome: &ReadOutcome,
    policy: &DeadLetters,
) -> bool {
    let tenant = &principal.tenant;
    if outcome.messages.is_empty() {
        return true;
    }
    let letters: Vec<OutgoingMessage> = outcome
        .messages
        .iter()
        .map(|m| letter(topic, m, leased.deliveries))
        .collect();
    let bytes: usize = outcome.messages.iter().map(ConsumedMessage::size).sum();
    quotas.charge_after(tenant, principal.quota, bytes as u64);
    let outcomes = producer
        .send_batch(policy.dead_letter_topic.as_str(), &letters)
        .await;
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    if failed > 0 {
        tracing::warn!(%tenant, %topic, partition = leased.partition, dead_letter_topic = %policy.dead_letter_topic, failed,
            "cannot produce to the dead-letter topic; the range stays and is tried again");
        return false;
    }
    tracing::info!(%tenant, %topic, partition = leased.partition, dead_letter_topic = %policy.dead_letter_topic,
        messages = letters.len(), deliveries = leased.deliveries, "sent a range to the dead-letter topic");
    metrics::counter!("sluice_dead_letters_total", "tenant" => tenant.to_string())
        .increment(letters.len() as u64);
    true
}

/// One dead letter: the message as it was, plus where it came from.
fn letter(topic: &TopicName, message: &ConsumedMessage, deliveries: i32) -> OutgoingMessage {
    let mut headers: Vec<(String, Vec<u8>)> = message
        .headers
        .iter()
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
        .collect();
    headers.extend([
        (SOURCE_TOPIC.to_owned(), topic.as_str().as_bytes().to_vec()),
        (
            SOURCE_PARTITION.to_owned(),
            message.partition.to_string().into_bytes(),
        ),
        (
            SOURCE_OFFSET.to_owned(),
            message.offset.to_string().into_bytes(),
        ),
        (DELIVERIES.to_owned(), deliveries.to_string().into_bytes()),
    ]);
    OutgoingMessage {
        key: message.key.clone(),
        value: message.value.clone(),
        headers,
        partition: None,
        timestamp: message.timestamp,
    }
}
