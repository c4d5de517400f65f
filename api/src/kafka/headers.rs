//! A consumed message's headers, read as raw bytes straight from
//! librdkafka.
//!
//! rust-rdkafka's `Headers::iter`/`get` turn every header key into a `&str`
//! with `.to_str().unwrap()`, so one header key that is not UTF-8, which any
//! native producer may write, panics inside a reader. Keys and values are
//! bytes in Kafka; here they stay bytes, and the response encodes what is
//! not text (see `consume::response`).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};

use rdkafka::bindings as rd;
use rdkafka::message::BorrowedMessage;

/// Every header of `message`, in Kafka's order, as (key, value) bytes. A
/// header without a value (null) reads as an empty value.
pub fn read_headers(message: &BorrowedMessage<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is a valid librdkafka message for as long as
    // `message` is borrowed, which covers this whole function. The headers
    // it hands back are owned by the message (never freed here), and every
    // pointer read from them below is copied into owned memory before the
    // function returns.
    unsafe {
        let err = rd::rd_kafka_message_headers(message.ptr(), &mut headers);
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
            return Vec::new();
        }
        let count = rd::rd_kafka_header_cnt(headers);
        let mut out = Vec::with_capacity(count);
        for idx in 0..count {
            let mut name: *const c_char = std::ptr::null();
            let mut value: *const c_void = std::ptr::null();
            let mut size = 0usize;
            let err = rd::rd_kafka_header_get_all(headers, idx, &mut name, &mut value, &mut size);
            if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
                continue;
            }
            let key = CStr::from_ptr(name).to_bytes().to_vec();
            let value = if value.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(value.cast::<u8>(), size).to_vec()
            };
            out.push((key, value));
        }
        out
    }
}
