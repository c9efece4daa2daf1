//! The user's own service as resilbench calls it: its messages' descriptors, the method called,
//! and the request made from a JSON template.
//!
//! Why a module of its own, at the data layer: a profile's `[target]` names a method and a
//! request; whether they make sense is a question of the service's schema, asked when the
//! profile is read (`.proto` files, a protoset) or when the run starts (server reflection,
//! fetched by `transport::reflection`), and answered the same way either way, before any load.
//!
//! - [`proto`]: `.proto` files compiled in process with protox (no `protoc` on the user's
//!   machine), errors as `file:line:col: message`; a protoset (a `FileDescriptorSet`, as
//!   `protoc -o --include_imports` or `buf build` writes it); descriptors fetched by reflection.
//! - [`method`]: `pkg.Service/Method` found in the schema (unary or server streaming), or an
//!   error listing the service's methods and the closest name.
//! - [`request`]: the request's JSON template checked against the input message (a field the
//!   message lacks, a value of the wrong type), then encoded per call: once if it has no
//!   placeholder, else its placeholders' fields (and lists) alone per call ([`fast`]), or the
//!   whole message parsed per call where that cannot be done.
//! - `check`: the request checked for every value its placeholders can take, read whole once
//!   and each other value in the smallest part of it that decides (its structure found once:
//!   `check/tree.rs`; the parts read alone: `check/places.rs`).

mod check;
mod errors;
pub mod fast;
pub mod method;
pub mod proto;
pub mod request;

pub use method::{Called, find_method};
pub use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor};
pub use request::RequestTemplate;

/// A schema that cannot serve: what is wrong, in words that name the file, field or method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

impl SchemaError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

#[cfg(test)]
mod tests;
