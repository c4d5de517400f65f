//! Consumed messages as JSON. Keys, values, header values and header keys
//! that are not UTF-8 come back as base64 and are marked, so nothing is
//! ever mangled.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use actix_web::HttpResponse;
use tenancy::TopicName;

use super::query::Rendering;
use super::{Delivery, FILTERED_HEADER, RECEIPT_HEADER, RESET_HEADER, SKIPPED_HEADER};
use crate::encoding::Encoding;
use crate::kafka::ConsumedMessage;

/// The answer to a GET: the messages as a JSON array, in the order they
/// were read, with the skip and reset headers.
pub fn render(topic: &TopicName, delivery: Delivery, rendering: Rendering) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header(("Cache-Control", "no-store"));
    if delivery.skipped > 0 {
        response.insert_header((SKIPPED_HEADER, delivery.skipped.to_string()));
    } else if delivery.reset {
        response.insert_header((SKIPPED_HEADER, "0"));
    }
    if delivery.reset {
        response.insert_header((RESET_HEADER, "truncated"));
    }
    if delivery.filtered.messages > 0 {
        response.insert_header((FILTERED_HEADER, delivery.filtered.messages.to_string()));
    }
    if let Some(receipt) = delivery.receipt {
        response.insert_header((RECEIPT_HEADER, receipt.to_string()));
    }
    response.json(render_messages(topic, delivery, rendering))
}

/// A delivery's messages as they go out, each with its `Deliveries` count
/// in manual mode. Streams write them one event (or frame) at a time.
pub fn render_messages(
    topic: &TopicName,
    delivery: Delivery,
    rendering: Rendering,
) -> Vec<OutMessage> {
    let manual = delivery.receipt.is_some();
    let deliveries = delivery.deliveries;
    delivery
        .messages
        .into_iter()
        .map(|m| {
            let count = manual
                .then(|| deliveries.iter().find(|(p, _)| *p == m.partition))
                .flatten()
                .map(|(_, n)| *n);
            let mut out = OutMessage::new(topic.as_str(), m, rendering);
            out.deliveries = count;
            out
        })
        .collect()
}

/// Text as it goes out, and whether it had to be base64.
fn encode(bytes: &[u8], encoding: Encoding) -> (String, bool) {
    match (encoding, std::str::from_utf8(bytes)) {
        (Encoding::None, Ok(text)) => (text.to_owned(), false),
        _ => (BASE64.encode(bytes), true),
    }
}

/// A value as it goes out: a string (OVH's form), or with `value=json`
/// the JSON it holds, written as it was produced but without whitespace
/// (exact numbers and key order, and no newline to break an SSE line).
#[derive(Debug)]
pub enum OutValue {
    Text(String),
    Json(Box<RawValue>),
}

impl Serialize for OutValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            OutValue::Text(text) => serializer.serialize_str(text),
            OutValue::Json(raw) => raw.serialize(serializer),
        }
    }
}

/// `text` as compact JSON if it is JSON: whitespace outside strings
/// dropped.
fn json_value(text: &str) -> Option<Box<RawValue>> {
    let raw: Box<RawValue> = serde_json::from_str(text).ok()?;
    let mut compact = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in raw.get().chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c.is_ascii_whitespace() {
            continue;
        } else if c == '"' {
            in_string = true;
        }
        compact.push(c);
    }
    RawValue::from_string(compact).ok()
}

/// Headers in their Kafka order, as a JSON object.
#[derive(Debug)]
pub struct HeaderMap(Vec<(String, String)>);

impl Serialize for HeaderMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// One message of a consume response, named as OVH's API names them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutMessage {
    #[serde(rename = "Topic")]
    topic: String,
    #[serde(rename = "Partition")]
    partition: i32,
    #[serde(rename = "Offset")]
    offset: i64,
    #[serde(rename = "Timestamp")]
    timestamp: Option<i64>,
    #[serde(rename = "Key")]
    key: Option<String>,
    #[serde(rename = "KeyEncoding", skip_serializing_if = "Option::is_none")]
    key_encoding: Option<&'static str>,
    /// A string; with `value=json`, any JSON when the value parses as JSON.
    #[serde(rename = "Value")]
    #[schema(value_type = Option<Value>)]
    value: Option<OutValue>,
    #[serde(rename = "ValueEncoding", skip_serializing_if = "Option::is_none")]
    value_encoding: Option<&'static str>,
    #[serde(rename = "Headers")]
    #[schema(value_type = std::collections::HashMap<String, String>)]
    headers: HeaderMap,
    #[serde(rename = "HeadersEncoding", skip_serializing_if = "Option::is_none")]
    headers_encoding: Option<&'static str>,
    /// Set only when a header key is not UTF-8 (a native producer wrote
    /// it): then the keys are base64 too, and so are the values.
    #[serde(rename = "HeaderKeysEncoding", skip_serializing_if = "Option::is_none")]
    header_keys_encoding: Option<&'static str>,
    /// Manual mode only: how many times this message has been delivered to
    /// the group, this time included (1 on the first delivery).
    #[serde(rename = "Deliveries", skip_serializing_if = "Option::is_none")]
    deliveries: Option<i32>,
    /// Manual mode over SSE only: the receipt to ack this message with (a
    /// GET carries it in `Sluice-Receipt`, a WebSocket frame once per
    /// frame).
    #[serde(rename = "Receipt", skip_serializing_if = "Option::is_none")]
    receipt: Option<String>,
}

fn marker(base64: bool) -> Option<&'static str> {
    base64.then_some("base64")
}

/// The value and its marker: JSON unmarked, text unmarked unless JSON was
/// asked for (then `string`), base64 marked `base64`.
fn value_out(bytes: &[u8], rendering: Rendering) -> (OutValue, Option<&'static str>) {
    let (text, base64) = encode(bytes, rendering.encoding);
    if base64 {
        return (OutValue::Text(text), Some("base64"));
    }
    if !rendering.json_values {
        return (OutValue::Text(text), None);
    }
    match json_value(&text) {
        Some(json) => (OutValue::Json(json), None),
        None => (OutValue::Text(text), Some("string")),
    }
}

impl OutMessage {
    pub fn new(topic: &str, m: ConsumedMessage, rendering: Rendering) -> Self {
        let encoding = rendering.encoding;
        let key = m.key.as_deref().map(|k| encode(k, encoding));
        let value = m.value.as_deref().map(|v| value_out(v, rendering));
        // Header values share one marker: all text, or all base64. Header
        // keys stay text unless one is not UTF-8; then they are all base64,
        // and so are the values (a key that had to be encoded says the
        // headers are binary).
        let keys_base64 = m
            .headers
            .iter()
            .any(|(k, _)| std::str::from_utf8(k).is_err());
        let headers_base64 = encoding == Encoding::Base64
            || keys_base64
            || m.headers
                .iter()
                .any(|(_, v)| std::str::from_utf8(v).is_err());
        let value_encoding = if headers_base64 {
            Encoding::Base64
        } else {
            Encoding::None
        };
        let key_encoding = if keys_base64 {
            Encoding::Base64
        } else {
            Encoding::None
        };
        let headers = m
            .headers
            .iter()
            .map(|(k, v)| (encode(k, key_encoding).0, encode(v, value_encoding).0))
            .collect();
        OutMessage {
            topic: topic.to_owned(),
            partition: m.partition,
            offset: m.offset,
            timestamp: m.timestamp,
            key_encoding: key.as_ref().and_then(|(_, b64)| marker(*b64)),
            key: key.map(|(text, _)| text),
            value_encoding: value.as_ref().and_then(|(_, marker)| *marker),
            value: value.map(|(value, _)| value),
            headers: HeaderMap(headers),
            headers_encoding: marker(headers_base64 && !m.headers.is_empty()),
            header_keys_encoding: marker(keys_base64),
            deliveries: None,
            receipt: None,
        }
    }

    /// Where the message sits: `<partition>-<offset>`, an SSE event's id.
    pub fn position(&self) -> String {
        format!("{}-{}", self.partition, self.offset)
    }

    /// Carries its receipt in the message itself (manual mode over SSE).
    pub fn with_receipt(mut self, receipt: String) -> Self {
        self.receipt = Some(receipt);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_go_out_compact_with_their_numbers_and_key_order_intact() {
        let raw = json_value("{ \"b\": 1.10,\n \"a\" : [ 1, \"x y\\\" z\" ] }").unwrap();
        assert_eq!(raw.get(), "{\"b\":1.10,\"a\":[1,\"x y\\\" z\"]}");
        assert!(json_value("not json").is_none());
        assert!(json_value("").is_none());
        assert_eq!(json_value(" 42 ").unwrap().get(), "42");
    }
}
