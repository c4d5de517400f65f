//! A message as read from Kafka, shared by the readers and the cache of
//! recent messages in front of them.

/// A message read from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedMessage {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// (key, value) bytes in Kafka's order: a native producer may write
    /// keys that are not UTF-8.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ConsumedMessage {
    /// Bytes of payload, for the response byte cap.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}
