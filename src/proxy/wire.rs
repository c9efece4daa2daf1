//! What the proxy reads from a client's request and writes back: the attempt as the backend
//! sees it ([`incoming`]), the header fields forwarded upstream, and gRPC answers given by the
//! proxy itself (Trailers-Only responses, trailers after messages).
//!
//! Forwarded: every field but HTTP/2's connection-specific ones (RFC 9113 8.2.2), `host`,
//! `grpc-timeout` (sent again as the time left, [`forwarded_fields`]) and resilbench's own
//! `resilbench-*` headers, which are for the proxy: the upstream receives what the client's
//! library sends, `grpc-previous-rpc-attempts` included.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use prost::Message;
use tokio::time::Instant;
use tonic::Code;

use crate::backend::Incoming;
use crate::backend::server::MAX_REQUEST_ID;
use crate::keyed::request_key;
use crate::pb;
use crate::profile::Method;
use crate::profile::script::PushbackValues;
use crate::protocol::{header, path, timeout};
use crate::transport::http2::Field;

/// The attempt as the backend's decision sees it. `connection` is (connection number,
/// stream number on it), the key of a request that names no id.
pub(super) fn incoming(
    headers: &HeaderMap,
    uri_path: &str,
    body: &[u8],
    connection: (u64, u64),
    deadline: Option<Instant>,
) -> Incoming {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let id: Cow<'_, str> = match text(header::REQUEST_ID) {
        Some(id) => Cow::Borrowed(id),
        None => Cow::Owned(
            backend_request_id(uri_path, body)
                .unwrap_or_else(|| format!("connection {} stream {}", connection.0, connection.1)),
        ),
    };
    let number = id.parse::<u64>().ok().filter(|n| n.to_string() == id);
    Incoming {
        method: Method::Unary,
        request_key: request_key(id.as_bytes()),
        id_number: number,
        id_text: (number.is_none() && id.len() <= MAX_REQUEST_ID).then(|| Arc::from(&*id)),
        previous_attempts: headers
            .get(header::PREVIOUS_ATTEMPTS)
            .map(|v| v.to_str().ok().and_then(|v| v.parse().ok()).unwrap_or(0)),
        ordinal: text(header::ATTEMPT).and_then(|v| v.parse().ok()),
        warmup: headers.contains_key(header::WARMUP),
        deadline,
        script: None,
        idempotency_key: None,
    }
}

/// Whether the call's draws are keyed by its first message: a call to resilbench's own
/// `Backend` service that names no request id in its headers (its `request_id` field does).
/// Every other call is decided on its headers alone.
pub(super) fn keyed_by_message(headers: &HeaderMap, uri_path: &str) -> bool {
    !headers.contains_key(header::REQUEST_ID)
        && uri_path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(path::BACKEND_SERVICE))
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The `request_id` of a call to resilbench's own `Backend` service (its first field in
/// `CallRequest` and `MutateRequest` alike), read from the one uncompressed message.
fn backend_request_id(uri_path: &str, body: &[u8]) -> Option<String> {
    let rest = uri_path
        .strip_prefix('/')?
        .strip_prefix(path::BACKEND_SERVICE)?;
    if !rest.starts_with('/') || body.len() < 5 || body[0] != 0 {
        return None;
    }
    let id = pb::CallRequest::decode(&body[5..]).ok()?.request_id;
    (!id.is_empty()).then_some(id)
}

/// The call's `grpc-timeout`, if it sent one that parses.
pub(super) fn sent_timeout(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::TIMEOUT)
        .and_then(|v| v.to_str().ok())
        .and_then(timeout::parse)
}

/// Whether a request field is kept from the upstream's view (Envoy's fault headers too
/// when the proxy reads them).
fn dropped(name: &str, envoy: bool) -> bool {
    (envoy && super::faults::ENVOY_HEADERS.contains(&name)) || dropped_always(name)
}

/// The fields never forwarded.
fn dropped_always(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | header::TIMEOUT
    ) || name.starts_with("resilbench-")
}

/// The request's fields forwarded upstream, borrowed from `headers` (connection-specific and
/// resilbench's own left behind), then `grpc-timeout` as `left` (the time left), if the call
/// has a deadline: as the HTTP/2 client encodes them (`content-type` and `te` as constants).
pub(super) fn forwarded_fields<'a>(
    headers: &'a HeaderMap,
    left: Option<&'a timeout::Encoded>,
    envoy: bool,
) -> Vec<Field<'a>> {
    let mut fields: Vec<Field<'a>> = Vec::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        let name = name.as_str();
        if dropped(name, envoy) {
            continue;
        }
        let constant = name == header::CONTENT_TYPE || name == header::TE;
        fields.push((name.as_bytes(), value.as_bytes(), constant));
    }
    if let Some(left) = left {
        fields.push((header::TIMEOUT.as_bytes(), left.as_bytes(), false));
    }
    fields
}

/// A response's fields from the upstream's header block (pseudo-headers and
/// connection-specific fields left out); its `:status`.
pub(super) fn response_fields(block: &crate::transport::http2::HeaderBlock) -> (u16, HeaderMap) {
    let mut status = 200;
    let mut map = HeaderMap::new();
    for (name, value) in block {
        if name == b":status" {
            status = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(200);
            continue;
        }
        if name.first() == Some(&b':') {
            continue;
        }
        let (Ok(n), Ok(v)) = (
            known_name(name).map_or_else(|| HeaderName::from_bytes(name), Ok),
            known_value(value).map_or_else(|| HeaderValue::from_bytes(value), Ok),
        ) else {
            continue;
        };
        if !dropped_always(n.as_str()) || n.as_str() == header::TIMEOUT {
            map.append(n, v);
        }
    }
    (status, map)
}

/// A field name gRPC sends on every call, as a constant (`HeaderName::from_bytes` copies a
/// name the `http` crate does not know into an allocation of its own).
fn known_name(name: &[u8]) -> Option<HeaderName> {
    let known = match name {
        b"content-type" => "content-type",
        b"grpc-status" => "grpc-status",
        b"grpc-message" => "grpc-message",
        b"grpc-encoding" => "grpc-encoding",
        b"grpc-accept-encoding" => "grpc-accept-encoding",
        b"grpc-retry-pushback-ms" => "grpc-retry-pushback-ms",
        b"grpc-status-details-bin" => "grpc-status-details-bin",
        _ => return None,
    };
    Some(HeaderName::from_static(known))
}

/// A field value sent on every call (`application/grpc`, a status code), as a constant
/// (`HeaderValue::from_bytes` copies).
fn known_value(value: &[u8]) -> Option<HeaderValue> {
    const CODES: [&str; 17] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    ];
    if value == b"application/grpc" {
        return Some(HeaderValue::from_static("application/grpc"));
    }
    let code = CODES.iter().find(|c| c.as_bytes() == value)?;
    Some(HeaderValue::from_static(code))
}

/// `grpc-status`, `grpc-message` and, if any, `grpc-retry-pushback-ms` (one field per value,
/// in order, as `serve` sends them).
pub(super) fn status_fields(
    code: Code,
    message: &str,
    pushback: Option<&PushbackValues>,
) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(header::STATUS, HeaderValue::from(code as i32));
    // A message is ASCII worded here; anything else is left out rather than sent malformed.
    if let Ok(v) = HeaderValue::from_str(message) {
        map.insert(header::MESSAGE, v);
    }
    for value in pushback.into_iter().flat_map(PushbackValues::iter) {
        if let Ok(v) = HeaderValue::from_str(value) {
            map.append(header::PUSHBACK, v);
        }
    }
    map
}

/// A Trailers-Only gRPC response with `code`.
pub(super) fn status_response(
    code: Code,
    message: &str,
    pushback: Option<&PushbackValues>,
) -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::empty());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(header::GRPC_CONTENT_TYPE),
    );
    headers.extend(status_fields(code, message, pushback));
    response
}

/// A response with HTTP `status` and no gRPC status (an HTTP abort: the client maps the
/// HTTP status to a gRPC one).
pub(super) fn http_status_response(status: u16) -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::empty());
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::SERVICE_UNAVAILABLE);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(header::GRPC_CONTENT_TYPE),
    );
    response
}

/// A response with `status` and `headers` whose body is `body`.
pub(super) fn response_with(
    status: u16,
    headers: HeaderMap,
    body: tonic::body::Body,
) -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(body);
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    *response.headers_mut() = headers;
    response
}

/// The gRPC status of an answer the proxy made itself (its `grpc-status` field; UNKNOWN
/// without one).
pub(super) fn code_of(response: &http::Response<tonic::body::Body>) -> Code {
    response
        .headers()
        .get(header::STATUS)
        .map_or(Code::Unknown, |c| Code::from_bytes(c.as_bytes()))
}

/// An empty body (a Trailers-Only response relayed from the upstream).
pub(super) fn no_body() -> tonic::body::Body {
    tonic::body::Body::empty()
}

/// Bytes as a frame of data.
pub(super) fn data(bytes: Bytes) -> http_body::Frame<Bytes> {
    http_body::Frame::data(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    HeaderName::from_static(n),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    /// The request id keys the draws: resilbench's header first, then a Backend request's
    /// field, then the connection's counter; the attempt headers are read as the backend
    /// reads them.
    #[test]
    fn draws_are_keyed_by_request_id_header_field_or_connection_counter() {
        let h = headers(&[
            (header::REQUEST_ID, "42"),
            (header::ATTEMPT, "2"),
            (header::PREVIOUS_ATTEMPTS, "1"),
        ]);
        let a = incoming(&h, "/x.Y/Z", b"", (0, 0), None);
        assert_eq!(a.request_key, request_key(b"42"));
        assert_eq!(
            (a.id_number, a.ordinal, a.previous_attempts),
            (Some(42), Some(2), Some(1))
        );
        let body = crate::protocol::message::encode(&pb::CallRequest {
            request_id: "7".into(),
            ..Default::default()
        });
        let b = incoming(
            &HeaderMap::new(),
            "/resilbench.v1.Backend/Call",
            &body,
            (0, 0),
            None,
        );
        assert_eq!(
            (b.request_key, b.previous_attempts),
            (request_key(b"7"), None)
        );
        let c = incoming(&HeaderMap::new(), "/x.Y/Z", b"", (3, 9), None);
        assert_eq!(c.request_key, request_key(b"connection 3 stream 9"));
        assert_ne!(
            c.request_key,
            incoming(&HeaderMap::new(), "/x.Y/Z", b"", (3, 10), None).request_key
        );
    }

    /// resilbench's headers, the connection's own and the old timeout stay behind; the time
    /// left is sent; metadata and gRPC's fields go on.
    /// The status of the proxy's own answers is read back from them (what `--log-attempts`
    /// and the counts say of a call refused before it was forwarded).
    #[test]
    fn an_answers_code_is_read_back() {
        for code in [Code::Cancelled, Code::ResourceExhausted, Code::Unavailable] {
            assert_eq!(code_of(&status_response(code, "x", None)), code);
        }
        assert_eq!(code_of(&http_status_response(503)), Code::Unknown);
    }

    /// The constants stand for exactly what parsing would give, and only for that.
    #[test]
    fn known_names_and_values_are_what_parsing_gives() {
        for name in [
            "content-type",
            "grpc-status",
            "grpc-message",
            "grpc-encoding",
            "grpc-accept-encoding",
            "grpc-retry-pushback-ms",
            "grpc-status-details-bin",
        ] {
            let parsed = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(known_name(name.as_bytes()), Some(parsed));
        }
        assert_eq!(known_name(b"x-grpc-status"), None);
        assert_eq!(
            known_name(b"Grpc-Status"),
            None,
            "not a lower-case name: parsed, refused"
        );
        for code in 0..=16 {
            let text = code.to_string();
            let parsed = HeaderValue::from_bytes(text.as_bytes()).unwrap();
            assert_eq!(known_value(text.as_bytes()), Some(parsed));
        }
        for other in ["17", "00", "-1", "", " 0", "application/grpc+proto"] {
            assert_eq!(known_value(other.as_bytes()), None, "{other:?}");
        }
        assert_eq!(
            known_value(b"application/grpc"),
            Some(HeaderValue::from_static("application/grpc"))
        );
    }

    #[test]
    fn forwarded_fields_leave_resilbench_and_connection_fields_behind() {
        let h = headers(&[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("authorization", "Bearer x"),
            (header::TIMEOUT, "5S"),
            (header::REQUEST_ID, "1"),
            (header::ATTEMPT, "0"),
            (header::PREVIOUS_ATTEMPTS, "1"),
            ("connection", "close"),
        ]);
        let left = timeout::write(Duration::from_millis(1500));
        let f = forwarded_fields(&h, Some(&left), false);
        // The two constant fields are encoded as such (indexed once per connection).
        for (n, _, constant) in &f {
            assert_eq!(*constant, n == b"content-type" || n == b"te", "{n:?}");
        }
        let names: Vec<String> = f
            .iter()
            .map(|(n, v, _)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(n),
                    String::from_utf8_lossy(v)
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "content-type=application/grpc",
                "te=trailers",
                "authorization=Bearer x",
                "grpc-previous-rpc-attempts=1",
                &format!(
                    "grpc-timeout={}",
                    timeout::encode(Duration::from_millis(1500))
                ),
            ]
        );
    }
}
