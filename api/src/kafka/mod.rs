//! The Kafka layer. Everything that touches rdkafka lives here; handlers
//! see only these types and [`KafkaError`].

mod client_config;
mod consumed;
mod delivery;
mod error;
mod groups;
mod headers;
mod message_status;
mod metadata;
mod mirror;
mod producer;
mod readers;
mod recent;
mod settings;
mod topics;
mod watermarks;

pub use consumed::ConsumedMessage;
pub use delivery::{Delivered, DeliveryFailure, Rejection};
pub use error::KafkaError;
pub use groups::KafkaGroups;
pub use metadata::Metadata;
pub use mirror::Mirror;
pub use producer::{OutgoingMessage, Producer};
pub use readers::{ReadOutcome, ReadRequest, Readers};
pub use recent::RecentMessages;
pub use settings::{
    KafkaSaslSettings, KafkaSettings, KafkaSslSettings, PropertyValue, SaslMechanism,
    SecurityProtocol, DEFAULT_PRODUCER_MESSAGE_MAX_BYTES, KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    PRODUCER_MESSAGE_MAX_BYTES, RECORD_BATCH_OVERHEAD, RECORD_OVERHEAD,
};
pub use topics::{OffsetTarget, PartitionInfo, TopicAdmin, TopicDescription, ALLOWED_TOPIC_CONFIG};
pub use watermarks::{TopicMarks, Watermarks};
