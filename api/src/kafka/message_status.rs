//! librdkafka's persistence status of a delivered or failed message.
//!
//! rust-rdkafka 0.39 does not expose `rd_kafka_message_status`, and without
//! it a failed delivery cannot be told apart as "certainly not written"
//! or "perhaps written". This module is the one call that reads it, through
//! rdkafka-sys, on the message librdkafka hands to the delivery callback.
#![allow(unsafe_code)]

use rdkafka::bindings as rd;
use rdkafka::message::BorrowedMessage;

use super::delivery::Persistence;

/// The persistence status of a message in a delivery report.
pub(super) fn persistence(message: &BorrowedMessage<'_>) -> Persistence {
    // SAFETY: `message.ptr()` is the `rd_kafka_message_t` of a delivery
    // report, valid while `message` is borrowed (it lives as long as the
    // report's event, which rust-rdkafka keeps alive during the callback).
    // `rd_kafka_message_status` only reads a field of it.
    let status = unsafe { rd::rd_kafka_message_status(message.ptr()) };
    match status {
        rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED => Persistence::NotPersisted,
        rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED => {
            Persistence::PossiblyPersisted
        }
        rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_PERSISTED => Persistence::Persisted,
    }
}
