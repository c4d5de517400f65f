//! Errors of the Kafka layer, already sorted into what a client can do.

/// What went wrong talking to Kafka.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KafkaError {
    /// Kafka could not be reached or refused for reasons that may pass.
    #[error("Kafka is unavailable: {0}")]
    Unavailable(String),
    /// The topic does not exist in Kafka.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// The topic exists in Kafka already.
    #[error("topic '{0}' already exists in Kafka")]
    TopicExists(String),
    /// Kafka refused a topic setting or size.
    #[error("Kafka refused the request: {0}")]
    Refused(String),
    /// A read failed inside sluice (a panic, caught): that request fails,
    /// the reader stays usable. The text goes to the log only.
    #[error("reading from Kafka failed: {0}")]
    ReadFailed(String),
    /// The client could not be built from the configuration.
    #[error("cannot configure the Kafka client: {0}")]
    Config(String),
}
