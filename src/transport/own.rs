//! What a call to the user's own service sends: the method's `:path`, the `:authority`, the
//! request made from its template, and the metadata, built once per run and cheap per call.
//!
//! The request's bytes come from [`RequestTemplate`] (the same bytes for every call when it
//! has no placeholder). Metadata without a placeholder is a constant header field, which the
//! HPACK encoder puts in the server's dynamic table once and then names by index; one with a
//! placeholder is rendered per call and sent as a per-attempt field (its name indexed, its
//! value not). A `-bin` entry's value is sent base64-encoded without padding, as gRPC
//! libraries send binary metadata (grpc/grpc doc/PROTOCOL-HTTP2.md, "Custom-Metadata").
//!
//! Unlike resilbench's own backend, the service is not told which attempt or warmup a call
//! is (`resilbench-*` headers): it receives what its own clients send, `grpc-timeout` and
//! gRFC A6's `grpc-previous-rpc-attempts` included. Only when the target answered
//! resilbench's Control service (a `resilbench proxy` in front of the service) do the calls
//! carry `resilbench-request-id`, `resilbench-attempt` and `resilbench-warmup`, for the proxy
//! to key its fault draws by; the proxy takes them off before forwarding.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;

use super::http2::Field;
use crate::profile::target::Values;
use crate::schema::{Called, RequestTemplate};
use crate::template::{Keys, Template};

/// The most header fields a call to the user's service sends: gRPC's own and the metadata.
pub const MAX_FIELDS: usize = 4 + crate::profile::target::MAX_METADATA;

/// A header field as sent: name and value.
type Header = (Box<[u8]>, Box<[u8]>);

/// Calls to the user's own service: what each sends.
pub struct OwnService {
    path: Box<[u8]>,
    authority: Box<[u8]>,
    https: bool,
    streaming: bool,
    seed: u64,
    request: RequestTemplate,
    /// Metadata sent as is.
    constant: Vec<Header>,
    /// Metadata rendered per call: name, template, and whether it is binary (`-bin`).
    templated: Vec<(Box<[u8]>, Template, bool)>,
}

impl std::fmt::Debug for OwnService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnService")
            .field("path", &String::from_utf8_lossy(&self.path))
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl OwnService {
    /// Calls of `called` at `authority` (over TLS when `https`), sending `request` and
    /// `metadata` (templated with `seed`'s keys).
    pub fn new(
        called: &Called,
        request: RequestTemplate,
        authority: &str,
        https: bool,
        metadata: &BTreeMap<String, Values>,
        seed: u64,
    ) -> Result<Self, String> {
        let mut constant = Vec::new();
        let mut templated = Vec::new();
        // Each value's placeholders draw apart from the request's (template 0) and each
        // other's: values are numbered from 1 in the order of their names, then as given.
        let mut number = 0u16;
        for (name, values) in metadata {
            let mut templates = Vec::with_capacity(values.0.len());
            for value in &values.0 {
                number = number.checked_add(1).ok_or("too many metadata values")?;
                let template = Template::parse(value, number)
                    .map_err(|e| format!("metadata {name}: {}", e.0))?;
                templates.push((template, value));
            }
            let binary = name.ends_with("-bin");
            // A name's values go out in the order given: all constant, or all per call.
            if templates.iter().all(|(t, _)| t.is_constant()) {
                for (_, value) in templates {
                    constant.push((
                        name.as_bytes().into(),
                        header_value(value.as_bytes(), binary).into(),
                    ));
                }
            } else {
                for (template, _) in templates {
                    templated.push((name.as_bytes().into(), template, binary));
                }
            }
        }
        Ok(Self {
            path: called.path.as_bytes().into(),
            authority: authority.as_bytes().into(),
            https,
            streaming: called.streaming(),
            seed,
            request,
            constant,
            templated,
        })
    }

    /// Whether the method answers with a stream.
    pub fn streaming(&self) -> bool {
        self.streaming
    }

    /// The request template.
    pub fn request(&self) -> &RequestTemplate {
        &self.request
    }

    /// `:path`, `:authority`, and whether the scheme is `https`.
    pub fn pseudo(&self) -> (&[u8], &[u8], bool) {
        (&self.path, &self.authority, self.https)
    }

    /// Call `call`'s framed request.
    #[inline]
    pub fn body(&self, call: u64) -> Result<Bytes, String> {
        self.request.framed(call)
    }

    /// Whether some metadata is rendered per call.
    pub fn templated_metadata(&self) -> bool {
        !self.templated.is_empty()
    }

    /// Renders call `call`'s templated metadata values into `rendered`, one after another;
    /// [`OwnService::metadata`] then reads them from there.
    pub fn render_metadata(&self, call: u64, rendered: &mut Vec<u8>, ends: &mut Vec<usize>) {
        let keys = Keys::new(self.seed, call);
        let mut text = String::new();
        for (_, template, binary) in &self.templated {
            if *binary {
                text.clear();
                template.render(&keys, &mut text);
                rendered.extend_from_slice(&header_value(text.as_bytes(), true));
            } else {
                template.render(&keys, rendered);
            }
            ends.push(rendered.len());
        }
    }

    /// Appends the metadata fields to `fields` from `n` on; the new count. Per-call values
    /// are read from `rendered` (from [`OwnService::render_metadata`]).
    pub fn metadata<'a>(
        &'a self,
        rendered: &'a [u8],
        ends: &[usize],
        fields: &mut [Field<'a>],
        mut n: usize,
    ) -> usize {
        for (name, value) in &self.constant {
            fields[n] = (name, value, true);
            n += 1;
        }
        let mut start = 0;
        for ((name, _, _), &end) in self.templated.iter().zip(ends) {
            fields[n] = (name, &rendered[start..end], false);
            start = end;
            n += 1;
        }
        n
    }
}

/// A metadata value as sent: as written, or base64 without padding for binary metadata.
fn header_value(value: &[u8], binary: bool) -> Vec<u8> {
    if binary {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(value)
            .into_bytes()
    } else {
        value.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metadata without a placeholder is a constant field (indexed once by the HPACK
    /// encoder), a templated one is rendered per call; `-bin` values are base64 without
    /// padding.
    #[test]
    fn metadata_is_constant_or_rendered_per_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.proto");
        std::fs::write(
            &path,
            "syntax = \"proto3\"; package s; message M { string id = 1; }\n\
             service S { rpc Get(M) returns (M); }",
        )
        .unwrap();
        let pool = crate::schema::proto::compile(&[path], &[]).unwrap();
        let called = crate::schema::find_method(&pool, "s.S/Get").unwrap();
        let request = RequestTemplate::new(&called.input(), "{}", 1, 10).unwrap();
        let metadata: BTreeMap<String, Values> = [
            ("authorization", &["Bearer x"][..]),
            ("trace-bin", &["ab"]),
            ("x-call", &["c-{{call}}"]),
            ("x-tag", &["a", "b-{{call}}"]),
        ]
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Values(v.iter().map(|s| s.to_string()).collect()),
            )
        })
        .collect();
        let own = OwnService::new(&called, request, "h:1", true, &metadata, 1).unwrap();
        assert_eq!(own.pseudo(), (&b"/s.S/Get"[..], &b"h:1"[..], true));
        let (mut rendered, mut ends) = (Vec::new(), Vec::new());
        own.render_metadata(42, &mut rendered, &mut ends);
        let mut fields: [Field<'_>; MAX_FIELDS] = [(b"", b"", false); MAX_FIELDS];
        let n = own.metadata(&rendered, &ends, &mut fields, 0);
        let shown: Vec<(&str, &str, bool)> = fields[..n]
            .iter()
            .map(|(n, v, c)| {
                (
                    std::str::from_utf8(n).unwrap(),
                    std::str::from_utf8(v).unwrap(),
                    *c,
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("authorization", "Bearer x", true),
                ("trace-bin", "YWI", true),
                ("x-call", "c-42", false),
                // Several values: each a field, in the order given.
                ("x-tag", "a", false),
                ("x-tag", "b-42", false),
            ]
        );
        // The message without placeholders is the same bytes for every call.
        assert_eq!(own.body(1).unwrap(), own.body(2).unwrap());
        assert_eq!(&own.body(1).unwrap()[..], &[0, 0, 0, 0, 0]);
    }
}
