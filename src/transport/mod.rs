//! How an attempt reaches the backend: the bottom of every strategy stack.
//!
//! - [`grpc::GrpcTransport`]: a real tonic client over HTTP/2 and TCP (`--clock real`, the
//!   embedded backend on loopback or a `--target`).
//! - [`direct::DirectTransport`]: the backend's handler called as a service, in process
//!   (`--clock virtual`). On a paused clock nothing is gained by running HTTP/2 framing through
//!   an in-memory pipe: the backend's behaviour is the same code either way, and the direct call
//!   keeps the simulation an order of magnitude faster and free of hyper's own timers.
//!
//! Both are `Service<Call, Response = Reply, Error = Failure>` and are boxed once, where the
//! stack is built.

pub mod direct;
pub mod grpc;

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future, the future type of the transports and layers.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
