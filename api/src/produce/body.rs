//! Reading a produce body: as sent, or decompressed as a stream when it
//! comes with `Content-Encoding: gzip`, `zstd` or `br`.
//!
//! `produce.max_body_bytes` counts the bytes the handler would hold, that
//! is the decompressed ones. actix's own request decoder
//! (`dev::Decompress`) inflates each received chunk whole before handing
//! it on, so a chunk of a few KiB of zstd or brotli could still grow to
//! gigabytes before anyone could count it; `async-compression` decodes
//! into a buffer we size, so the read stops as soon as the inflated size
//! passes the limit and a bomb costs at most one read buffer past it.

use std::io;

use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderMap, CONTENT_ENCODING};
use actix_web::web::{self, BytesMut};
use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
use async_compression::zstd::DParameter;
use futures::{StreamExt as _, TryStreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio_util::io::StreamReader;

use crate::body_deadline::{timeout_of, BodyTimeout};
use crate::error::{ApiError, Code};

/// The largest zstd window a request may use (2^23 = 8 MiB).
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// The request codings the produce route decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Zstd,
    Brotli,
}

/// The coding `Content-Encoding` names; a coding we cannot decode (or a
/// chain of several) is refused with 415 `unsupported_content_encoding`
/// rather than stored as if it were plain.
fn coding(headers: &HeaderMap) -> Result<Coding, ApiError> {
    let Some(value) = headers.get(CONTENT_ENCODING) else {
        return Ok(Coding::Identity);
    };
    let value = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match value.as_str() {
        "" | "identity" => Ok(Coding::Identity),
        "gzip" | "x-gzip" => Ok(Coding::Gzip),
        "zstd" => Ok(Coding::Zstd),
        "br" => Ok(Coding::Brotli),
        _ => Err(ApiError::Input {
            code: Code::UnsupportedContentEncoding,
            message: format!(
                "Content-Encoding {value:?} is not supported; send gzip, zstd, br or none"
            ),
        }),
    }
}

/// Reads the body, decompressing it if it says so, stopping as soon as
/// the (decompressed) size passes the limit (a chunked body declares no
/// length, a compressed one declares only its compressed length), or at
/// the body deadline (`http.body_read_timeout`, enforced on the payload by
/// [`crate::body_deadline`]).
pub async fn read(
    headers: &HeaderMap,
    payload: web::Payload,
    limit: usize,
) -> Result<BytesMut, ApiError> {
    let coding = coding(headers)?;
    if coding == Coding::Identity {
        return read_plain(payload, limit).await;
    }
    // The payload error becomes an io::Error for the decoder; a deadline
    // stays recognisable through it (its inner error is the BodyTimeout).
    let reader = StreamReader::new(payload.map_err(|e| match e {
        PayloadError::Io(io) => io,
        other => io::Error::other(other.to_string()),
    }));
    match coding {
        Coding::Gzip => {
            // `gzip a b` and concatenated files are several members.
            let mut decoder = GzipDecoder::new(reader);
            decoder.multiple_members(true);
            read_limited(decoder, limit).await
        }
        Coding::Zstd => {
            // zstd's default lets a frame ask for a 128 MiB window; 8 MiB
            // covers every level short of `--long`, and caps what one
            // request can make the server allocate.
            let params = [DParameter::window_log_max(ZSTD_WINDOW_LOG_MAX)];
            read_limited(ZstdDecoder::with_params(reader, &params), limit).await
        }
        Coding::Brotli => read_limited(BrotliDecoder::new(reader), limit).await,
        Coding::Identity => unreachable!("handled above"),
    }
}

async fn read_plain(mut payload: web::Payload, limit: usize) -> Result<BytesMut, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match timeout_of(&e) {
            Some(timeout) => ApiError::BodyTimeout {
                timeout_ms: timeout.as_millis(),
            },
            None => unreadable(&e),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Inflates into a buffer that never holds more than the limit plus one
/// read, and fails as soon as it holds more than the limit.
async fn read_limited<R: AsyncRead + Unpin>(
    mut decoder: R,
    limit: usize,
) -> Result<BytesMut, ApiError> {
    const READ: usize = 16 * 1024;
    let mut body = BytesMut::new();
    loop {
        body.reserve(READ);
        let read = (&mut decoder)
            .take(READ as u64)
            .read_buf(&mut body)
            .await
            .map_err(|e| {
                match e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<BodyTimeout>())
                {
                    Some(t) => ApiError::BodyTimeout {
                        timeout_ms: t.0.as_millis(),
                    },
                    None => unreadable(&e),
                }
            })?;
        if body.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        if read == 0 {
            return Ok(body);
        }
    }
}

fn unreadable(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::Input {
        code: Code::UnreadableBody,
        message: format!("the request body could not be read: {e}"),
    }
}
