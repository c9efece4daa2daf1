//! gRPC server reflection, the client side: the files that define a service, asked of the
//! server itself (`reflection = true`, ghz's default without `--proto`).
//!
//! The protocol (grpc/grpc doc/server-reflection.md; `grpc.reflection.v1.ServerReflection`,
//! and `v1alpha` before it, wire-identical) is one bidirectional-streaming method. Here each
//! round is one stream: the requests as messages, then the end of the request stream, then
//! the answers until the trailers, as every server answers a half-closed stream
//! (tonic-reflection, grpc-go, grpcio-reflection loop on the requests until they end). The
//! messages are tonic-reflection's types.
//!
//! 1. `file_containing_symbol` for the service on v1; a server that answers UNIMPLEMENTED is
//!    asked on v1alpha (grpcio-reflection serves only v1alpha); UNIMPLEMENTED again means
//!    the server serves no reflection.
//! 2. The imports the answers name and did not hold are asked by `file_by_filename`, round
//!    after round (tonic sends one file per symbol; grpc-go and grpcio send the imports too),
//!    except well-known types the client has built in.
//! 3. A service the server does not know is answered with the services it lists.
//!
//! Every round waits at most the run's connect timeout; at most [`MAX_FILES`] files.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost_types::FileDescriptorProto;
use tonic::Code;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

use super::http2::{self, Event, Handle};
use crate::clock::Clock;
use crate::protocol::header::{self, ResponseFields};
use crate::protocol::message;

/// Most files taken from a server.
pub const MAX_FILES: usize = 1000;

const V1: &[u8] = b"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
const V1ALPHA: &[u8] = b"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// Where and how to ask: a connection, the `:authority` and scheme, the metadata every call
/// sends (a server may want its credentials for reflection too), and how long a round waits.
pub struct Asker<'a> {
    /// A connection to the server.
    pub handle: &'a Handle,
    /// `:authority`.
    pub authority: &'a [u8],
    /// `:scheme https`.
    pub https: bool,
    /// Metadata sent with each request.
    pub metadata: &'a [(Vec<u8>, Vec<u8>)],
    /// The run's clock, for the timeout.
    pub clock: &'a Clock,
    /// How long a round may take.
    pub timeout: Duration,
}

/// A gRPC status a round ended with, other than OK.
struct Status {
    code: Code,
    message: String,
}

impl Asker<'_> {
    /// The files defining `service` and their imports (those the server has), as the server
    /// sent them.
    pub async fn files(&self, service: &str) -> Result<Vec<FileDescriptorProto>, String> {
        let ask = |q| vec![q];
        let first = MessageRequest::FileContainingSymbol(service.to_string());
        let (path, answers) = match self.round(V1, ask(first.clone())).await? {
            Err(s) if s.code == Code::Unimplemented => {
                match self.round(V1ALPHA, ask(first)).await? {
                    Err(s) if s.code == Code::Unimplemented => {
                        return Err("the server does not serve gRPC reflection (neither \
                                    grpc.reflection.v1 nor v1alpha); give the schema as \
                                    target.proto or target.protoset (--proto, --protoset)"
                            .into());
                    }
                    other => (V1ALPHA, other),
                }
            }
            other => (V1, other),
        };
        let mut files: HashMap<String, FileDescriptorProto> = HashMap::new();
        match answers {
            Ok(answers) => self.take(answers, &mut files, service, path).await?,
            Err(s) if s.code == Code::NotFound => return Err(self.not_found(path, service).await),
            Err(s) => return Err(failed(&s)),
        }
        if files.is_empty() {
            return Err(self.not_found(path, service).await);
        }
        loop {
            let wanted: BTreeSet<String> = files
                .values()
                .flat_map(|f| f.dependency.iter().cloned())
                .filter(|d| !files.contains_key(d))
                .filter(|d| {
                    prost_reflect::DescriptorPool::global()
                        .get_file_by_name(d)
                        .is_none()
                })
                .collect();
            if wanted.is_empty() {
                return Ok(files.into_values().collect());
            }
            let asks = wanted
                .iter()
                .map(|d| MessageRequest::FileByFilename(d.clone()))
                .collect();
            let answers = self.round(path, asks).await?.map_err(|s| failed(&s))?;
            let before = files.len();
            self.take(answers, &mut files, service, path).await?;
            if files.len() == before {
                let missing: Vec<String> = wanted.into_iter().collect();
                return Err(format!(
                    "the server's reflection does not have {}, which {service} imports",
                    missing.join(", ")
                ));
            }
        }
    }

    /// Adds the files of `answers` to `files`.
    async fn take(
        &self,
        answers: Vec<ServerReflectionResponse>,
        files: &mut HashMap<String, FileDescriptorProto>,
        service: &str,
        path: &[u8],
    ) -> Result<(), String> {
        for answer in answers {
            match answer.message_response {
                Some(MessageResponse::FileDescriptorResponse(r)) => {
                    for bytes in r.file_descriptor_proto {
                        let file = FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| {
                            format!("the server's reflection sent a file that does not decode: {e}")
                        })?;
                        files.entry(file.name().to_string()).or_insert(file);
                        if files.len() > MAX_FILES {
                            return Err(format!(
                                "the server's reflection sent more than {MAX_FILES} files"
                            ));
                        }
                    }
                }
                Some(MessageResponse::ErrorResponse(e))
                    if e.error_code == Code::NotFound as i32 && files.is_empty() =>
                {
                    return Err(self.not_found(path, service).await);
                }
                // An import the server does not have: said after the round, by name.
                Some(MessageResponse::ErrorResponse(e))
                    if e.error_code == Code::NotFound as i32 => {}
                Some(MessageResponse::ErrorResponse(e)) => {
                    return Err(format!(
                        "the server's reflection answered with an error ({}: {})",
                        crate::protocol::status::code_name(Code::from_i32(e.error_code)),
                        e.error_message
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// "Not found", with the services the server lists.
    async fn not_found(&self, path: &[u8], service: &str) -> String {
        let listed = self
            .round(path, vec![MessageRequest::ListServices(String::new())])
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let names: Vec<String> = listed
            .into_iter()
            .filter_map(|a| match a.message_response {
                Some(MessageResponse::ListServicesResponse(l)) => Some(l.service),
                _ => None,
            })
            .flatten()
            .map(|s| s.name)
            .filter(|n| !n.starts_with("grpc.reflection."))
            .collect();
        let near = crate::schema::method::closest(service, names.iter().map(String::as_str));
        format!(
            "the server's reflection does not know the service `{service}`{}; it lists: {}",
            near.map_or(String::new(), |n| format!(" (did you mean `{n}`?)")),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )
    }

    /// One stream: the requests, then the answers until the status.
    async fn round(
        &self,
        path: &[u8],
        asks: Vec<MessageRequest>,
    ) -> Result<Result<Vec<ServerReflectionResponse>, Status>, String> {
        let mut body = BytesMut::new();
        for ask in asks {
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(ask),
            };
            body.put_slice(&message::encode(&request));
        }
        let exchange = self.exchange(path, body.freeze());
        match self.clock.timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "the server's reflection did not answer within {}",
                crate::profile::duration::format(self.timeout)
            )),
        }
    }

    async fn exchange(
        &self,
        path: &[u8],
        body: Bytes,
    ) -> Result<Result<Vec<ServerReflectionResponse>, Status>, String> {
        let mut fields: Vec<http2::Field<'_>> = vec![
            (
                header::CONTENT_TYPE.as_bytes(),
                header::GRPC_CONTENT_TYPE.as_bytes(),
                true,
            ),
            (header::TE.as_bytes(), header::TRAILERS.as_bytes(), true),
        ];
        fields.extend(self.metadata.iter().map(|(n, v)| (&n[..], &v[..], true)));
        let request = http2::Request {
            path,
            authority: self.authority,
            https: self.https,
            fields: &fields,
            body,
            end: true,
        };
        let lost = |why: String| format!("reflection: {why}");
        let mut stream = self
            .handle
            .open(request)
            .await
            .map_err(|e| lost(e.to_string()))?;
        let head = match stream.next().await {
            Event::Head(head) => head,
            other => return Err(lost(format!("no response ({other:?})"))),
        };
        let fields = ResponseFields::of(&head);
        if fields.grpc_status.is_some() {
            return Ok(Err(status(&head, fields.grpc_status)));
        }
        if fields.status != Some(200) {
            return Err(lost(format!("HTTP status {:?}", fields.status)));
        }
        let mut buffer = BytesMut::new();
        let mut answers = Vec::new();
        loop {
            match stream.next().await {
                Event::Data(chunk) => buffer.extend_from_slice(&chunk),
                Event::Trailers(trailers) => {
                    let code = ResponseFields::of(&trailers).grpc_status;
                    return Ok(match code {
                        Some(Code::Ok) => Ok(answers),
                        _ => Err(status(&trailers, code)),
                    });
                }
                other => {
                    return Err(lost(format!(
                        "the stream ended without a status ({other:?})"
                    )));
                }
            }
            while let Some(m) = message::next(&mut buffer)
                .map_err(|c| lost(format!("a message that cannot be read ({c:?})")))?
            {
                answers.push(
                    ServerReflectionResponse::decode(m)
                        .map_err(|e| lost(format!("an answer that does not decode: {e}")))?,
                );
            }
        }
    }
}

/// The status in a block, with its (percent-decoded) message.
fn status(block: &http2::HeaderBlock, code: Option<Code>) -> Status {
    let message = block
        .get(header::MESSAGE.as_bytes())
        .map(percent_decoded)
        .unwrap_or_default();
    Status {
        code: code.unwrap_or(Code::Unknown),
        message,
    }
}

/// `grpc-message` is percent-encoded (PROTOCOL-HTTP2.md, "Responses").
fn percent_decoded(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%'
            && let Some(b) = value
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(value[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn failed(s: &Status) -> String {
    let mut text = format!(
        "the server's reflection failed with {}",
        crate::protocol::status::code_name(s.code)
    );
    if !s.message.is_empty() {
        text.push_str(": ");
        text.push_str(&s.message);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(
            percent_decoded(b"symbol%20'x'%20not%20found"),
            "symbol 'x' not found"
        );
        assert_eq!(percent_decoded(b"100%"), "100%");
    }
}
