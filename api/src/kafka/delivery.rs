//! What became of one message handed to Kafka, sorted by what its client
//! can do about it: nothing to fix (stored), fix the message (rejected),
//! retry (certainly not stored), or check before retrying (unknown).
//!
//! The sorting uses two facts librdkafka reports with every failed
//! delivery: the error code, and the message's persistence status (did
//! the message reach a broker that may have appended it?). A message is
//! called `unknown` whenever either says it may be stored, because telling
//! a client "retry" about a stored message makes it write a duplicate.

use rdkafka::error::RDKafkaErrorCode;

/// Where Kafka stored an acknowledged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// librdkafka's persistence status of a message (`rd_kafka_message_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Never sent, or the broker answered that it did not append it.
    NotPersisted,
    /// Sent, with no answer: a broker may have appended it.
    PossiblyPersisted,
    /// A broker appended it (it may still have failed, e.g. too few replicas).
    Persisted,
}

/// Why Kafka refused a message for good: the message itself is at fault,
/// so sending it again can only fail again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Over the producer's `message.max.bytes` or the broker's or topic's
    /// `max.message.bytes`, once framed with its record overhead.
    TooLarge,
    /// The broker found the record corrupt or invalid.
    InvalidRecord,
    /// The broker refused the record's timestamp (e.g. outside the topic's
    /// `message.timestamp.*.max.ms` window).
    InvalidTimestamp,
}

impl Rejection {
    fn explain(self) -> &'static str {
        match self {
            Rejection::TooLarge => {
                "Kafka refused the message as too large: with its record framing it is over the producer's or the broker's limit"
            }
            Rejection::InvalidRecord => "Kafka refused the message as an invalid record",
            Rejection::InvalidTimestamp => "Kafka refused the message's timestamp",
        }
    }
}

/// Why a message was not acknowledged, in the kinds a client must treat
/// differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// Certainly not written, through no fault of the message: safe to retry.
    NotPersisted(String),
    /// Perhaps written: a retry may duplicate it.
    Unknown(String),
    /// Not written, and never will be as it is: do not retry it unchanged.
    Rejected(Rejection, String),
}

/// Errors that mean the broker refused the message itself.
fn rejection(code: RDKafkaErrorCode) -> Option<Rejection> {
    match code {
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge => {
            Some(Rejection::TooLarge)
        }
        RDKafkaErrorCode::InvalidMessage
        | RDKafkaErrorCode::InvalidMessageSize
        | RDKafkaErrorCode::InvalidRecord
        | RDKafkaErrorCode::UnsupportedForMessageFormat => Some(Rejection::InvalidRecord),
        RDKafkaErrorCode::InvalidTimestamp => Some(Rejection::InvalidTimestamp),
        _ => None,
    }
}

/// Errors after which the message may be stored whatever the status says:
/// purged while in flight, appended without enough replicas, or an
/// idempotent producer that lost track of its sequence (fatal errors).
fn may_be_stored(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::PurgeInflight
            | RDKafkaErrorCode::NotEnoughReplicasAfterAppend
            | RDKafkaErrorCode::Fatal
            | RDKafkaErrorCode::GaplessGuarantee
            | RDKafkaErrorCode::OutOfOrderSequenceNumber
            | RDKafkaErrorCode::DuplicateSequenceNumber
    )
}

/// Timeouts: a message may have reached the broker, unless librdkafka
/// knows it never left (it then reports `NotPersisted`).
fn timed_out(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::OperationTimedOut
    )
}

/// Sorts one failed delivery. `persistence` is librdkafka's status of the
/// message, `None` when there is none (the message was refused before it
/// was queued). `detail` is librdkafka's own description, kept for the
/// client and the log.
pub(super) fn classify(
    code: RDKafkaErrorCode,
    persistence: Option<Persistence>,
    detail: &str,
) -> DeliveryFailure {
    let stored_maybe = match persistence {
        Some(Persistence::PossiblyPersisted | Persistence::Persisted) => true,
        Some(Persistence::NotPersisted) => may_be_stored(code),
        None => may_be_stored(code) || timed_out(code),
    };
    if stored_maybe {
        return DeliveryFailure::Unknown(format!(
            "Kafka did not acknowledge the message, and it may have been written: {detail}"
        ));
    }
    if let Some(rejection) = rejection(code) {
        return DeliveryFailure::Rejected(rejection, format!("{}: {detail}", rejection.explain()));
    }
    match code {
        RDKafkaErrorCode::QueueFull => {
            DeliveryFailure::NotPersisted("the producer queue is full".to_owned())
        }
        _ => DeliveryFailure::NotPersisted(format!("Kafka did not write the message: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(failure: &DeliveryFailure) -> &'static str {
        match failure {
            DeliveryFailure::NotPersisted(_) => "not_persisted",
            DeliveryFailure::Unknown(_) => "unknown",
            DeliveryFailure::Rejected(Rejection::TooLarge, _) => "too_large",
            DeliveryFailure::Rejected(Rejection::InvalidRecord, _) => "invalid_record",
            DeliveryFailure::Rejected(Rejection::InvalidTimestamp, _) => "invalid_timestamp",
        }
    }

    fn sorted(code: RDKafkaErrorCode, persistence: Option<Persistence>) -> &'static str {
        kind(&classify(code, persistence, "detail"))
    }

    #[test]
    fn a_message_too_large_for_librdkafka_or_the_broker_is_a_rejection() {
        // Refused by librdkafka before it was queued: no status.
        assert_eq!(
            sorted(RDKafkaErrorCode::MessageSizeTooLarge, None),
            "too_large"
        );
        // Refused by the broker.
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::MessageBatchTooLarge,
        ] {
            assert_eq!(sorted(code, Some(Persistence::NotPersisted)), "too_large");
        }
    }

    #[test]
    fn invalid_records_and_timestamps_are_rejections() {
        let not = Some(Persistence::NotPersisted);
        assert_eq!(
            sorted(RDKafkaErrorCode::InvalidMessage, not),
            "invalid_record"
        );
        assert_eq!(
            sorted(RDKafkaErrorCode::InvalidRecord, not),
            "invalid_record"
        );
        assert_eq!(
            sorted(RDKafkaErrorCode::InvalidMessageSize, not),
            "invalid_record"
        );
        assert_eq!(
            sorted(RDKafkaErrorCode::InvalidTimestamp, not),
            "invalid_timestamp"
        );
    }

    #[test]
    fn whatever_the_code_a_message_that_may_be_persisted_is_unknown() {
        for status in [Persistence::PossiblyPersisted, Persistence::Persisted] {
            for code in [
                RDKafkaErrorCode::MessageTimedOut,
                RDKafkaErrorCode::BrokerTransportFailure,
                RDKafkaErrorCode::MessageSizeTooLarge,
            ] {
                assert_eq!(sorted(code, Some(status)), "unknown", "{code:?} {status:?}");
            }
        }
    }

    #[test]
    fn errors_after_which_the_message_may_be_stored_are_unknown_even_if_not_persisted() {
        for code in [
            RDKafkaErrorCode::PurgeInflight,
            RDKafkaErrorCode::NotEnoughReplicasAfterAppend,
            RDKafkaErrorCode::Fatal,
            RDKafkaErrorCode::GaplessGuarantee,
            RDKafkaErrorCode::OutOfOrderSequenceNumber,
        ] {
            assert_eq!(sorted(code, Some(Persistence::NotPersisted)), "unknown");
            assert_eq!(sorted(code, None), "unknown");
        }
    }

    #[test]
    fn a_timeout_is_unknown_unless_librdkafka_knows_the_message_never_left() {
        assert_eq!(
            sorted(
                RDKafkaErrorCode::MessageTimedOut,
                Some(Persistence::PossiblyPersisted)
            ),
            "unknown"
        );
        assert_eq!(sorted(RDKafkaErrorCode::MessageTimedOut, None), "unknown");
        assert_eq!(
            sorted(
                RDKafkaErrorCode::MessageTimedOut,
                Some(Persistence::NotPersisted)
            ),
            "not_persisted"
        );
    }

    #[test]
    fn transient_refusals_are_not_persisted_and_so_retryable() {
        for code in [
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::PurgeQueue,
            RDKafkaErrorCode::UnknownPartition,
            RDKafkaErrorCode::KafkaStorageError,
        ] {
            assert_eq!(
                sorted(code, Some(Persistence::NotPersisted)),
                "not_persisted",
                "{code:?}"
            );
        }
        assert_eq!(
            classify(RDKafkaErrorCode::QueueFull, None, "x"),
            DeliveryFailure::NotPersisted("the producer queue is full".into())
        );
    }
}
