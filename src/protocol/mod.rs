//! gRPC over HTTP/2 as both sides of resilbench speak it: header names, `grpc-timeout`, the
//! 5-byte message framing and its size limit, service paths, status codes and the statuses a
//! client derives from what it saw instead of one (grpc/grpc `doc/PROTOCOL-HTTP2.md`,
//! `doc/http-grpc-status-mapping.md`, `doc/statuscodes.md`).
//!
//! Why one module: the client (`transport`) and the server (`backend`) must agree on every
//! byte of this, and before it had a home each side kept its own half (the timeout's encoder
//! in the client, its parser in the server, header names in the server imported by the
//! client). This module knows nothing of either side: it is vocabulary, at the bottom of the
//! module graph (docs/architecture.md, "Layers").

pub mod header;
pub mod message;
pub mod path;
pub mod pushback;
pub mod status;
pub mod timeout;

pub use pushback::{Pushback, PushbackValue};
pub use status::StatusCode;
