//! How an attempt reaches the backend: the bottom of every strategy stack.
//!
//! - [`grpc::GrpcTransport`]: real gRPC calls on HTTP/2 streams over TCP (`--clock real`, the
//!   embedded backend on loopback or a `--target`), over the [`connection::Connections`] it
//!   is given.
//! - [`direct::DirectTransport`]: the backend's handler called as a service, in process
//!   (`--clock virtual`). HTTP/2 through an in-memory pipe was measured and rejected
//!   (`benches/virtual_time.rs`, docs/PERFORMANCE.md): while tonic's server served the backend
//!   it enforced `grpc-timeout` with tokio's own timer, which a simulated clock does not drive,
//!   so deadlines fired early; h2 expires reset streams in wall time. Now the results agree
//!   exactly, but the direct call is about 3.6× faster.
//!   The backend's behaviour is the same code either way.
//!
//! Over HTTP/2, a stream the server did not process is sent again at once within its attempt,
//! as the strategy's client library does (`transparent.rs`, gRFC A6's transparent retries).
//!
//! Both are `Service<Call, Response = Reply, Error = Failure>` and are boxed once, where the
//! stack is built.

pub mod balance;
pub mod connection;
pub mod direct;
pub mod grpc;
pub mod http2;
pub mod own;
pub mod reflection;
pub mod tls;
mod transparent;

pub use crate::call::BoxFuture;
