//! `[target]`: the user's own gRPC service, what the calls go to instead of resilbench's
//! backend. What the profile says and the plan keep the same shape (docs/profiles.md).
//!
//! ```toml
//! [target]
//! address = "https://payments.internal:8443"   # host:port (h2c), http://host:port, https://host[:port]
//! proto = ["protos/payments.proto"]             # or protoset = "...", or reflection = true
//! import_paths = ["protos"]
//! method = "mycompany.payments.v1.Payments/Authorize"
//! request = '{"order_id": "order-{{call}}", "amount_cents": {{int 100 5000}}}'
//! [target.metadata]
//! authorization = "Bearer {{choice tokenA tokenB}}"
//! [target.tls]
//! ca = "ca.pem"
//! ```
//!
//! Checked when the profile is read: the address's form, one schema source, the method's and
//! the metadata's names, the templates' placeholders, the TLS files; then, where the schema is
//! on disk (`proto`, `protoset`), that the method exists and the request fits its message
//! (`check_target.rs`). A schema fetched by reflection is checked when the run starts. The
//! checks without the schema are in `settle_target.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[target]`: the service the calls go to, and what they send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetPlan {
    /// `host:port` (plaintext HTTP/2), `http://host:port`, or `https://host[:port]` (TLS).
    pub address: String,
    /// The `:authority` sent, in place of the address's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// `.proto` files holding the service (paths relative to the profile).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub proto: Vec<String>,
    /// Where the `.proto` files' imports are found (besides each file's own directory and
    /// the well-known types).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub import_paths: Vec<String>,
    /// A compiled `FileDescriptorSet` (`protoc --include_imports -o`), in place of `proto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protoset: Option<String>,
    /// Ask the server for its schema (gRPC server reflection, v1 then v1alpha).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reflection: bool,
    /// `package.Service/Method`, unary or server streaming.
    pub method: String,
    /// The request as proto3 JSON, with `{{...}}` placeholders drawn per call; `{}` when
    /// neither this nor `request_file` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// A file holding the request (read when the profile is; the plan keeps its text as
    /// `request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_file: Option<String>,
    /// The request was read from `request_file` (for errors to name that key).
    #[serde(skip)]
    pub request_from_file: bool,
    /// Headers (gRPC metadata) sent with every call, templated as the request is; a name
    /// may have several values (a list), each sent as a header field of its own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Values>,
    /// TLS settings (an `https://` address uses TLS with the system's roots without them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsPlan>,
    /// The address is a `resilbench proxy` in front of the service: it is reset at each
    /// strategy's start and its figures read, as `serve`'s (docs/proxy.md). Off, the service
    /// is sent nothing but the calls.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub control: bool,
}

/// `[target.tls]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPlan {
    /// PEM file of the certificates to trust, in place of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// PEM file of the client's certificate chain (mTLS), with `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// PEM file of the client's private key (mTLS), with `cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The name the server's certificate is checked against (and sent as SNI), in place of
    /// the address's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Do not verify the server's certificate at all (a warning says so on every run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// The values of one metadata name, in the order given: gRPC metadata allows several per
/// name (grpc/grpc doc/PROTOCOL-HTTP2.md; grpc-go's `metadata.MD` is a map of lists, tonic's
/// `MetadataMap::append`), each sent as a header field of its own. Written as a string when
/// there is one, a list of strings otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Values(pub Vec<String>);

impl Values {
    /// One value.
    pub fn one(value: impl Into<String>) -> Self {
        Self(vec![value.into()])
    }
}

impl Serialize for Values {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        match OneOrMany::deserialize(d) {
            Ok(OneOrMany::One(s)) => Ok(Self(vec![s])),
            Ok(OneOrMany::Many(v)) if !v.is_empty() => Ok(Self(v)),
            _ => Err(serde::de::Error::custom(
                "expected a string, or a non-empty list of strings (one header each)",
            )),
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(s)) => Ok(vec![s]),
        Ok(OneOrMany::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(
            "expected a path or a list of paths",
        )),
    }
}

/// A target's address, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// `https://`: TLS.
    pub tls: bool,
    /// The host as written (an IPv6 address without its brackets).
    pub host: String,
    /// The port (80 and 443 by default for `http://` and `https://`).
    pub port: u16,
    /// The `:authority` a client sends: host and port as written (the default port left out
    /// where the address leaves it out).
    pub authority: String,
}

impl Address {
    /// Parses `host:port`, `http://host[:port]` or `https://host[:port]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected host:port, http://host:port or https://host[:port]";
        let (scheme, rest) = match text.split_once("://") {
            None => (None, text),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Some(false), rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Some(true), rest),
            Some((s, _)) => return Err(format!("unknown scheme `{s}://`; {expected}")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if let Some(at) = rest.find(['/', '?', '#']) {
            return Err(format!(
                "`{text}` has a path (`{}`); a gRPC address is a host and port (the method is \
                 the path of each call); {expected}",
                &rest[at..]
            ));
        }
        if rest.is_empty() {
            return Err(format!("no host in `{text}`; {expected}"));
        }
        let authority: http::uri::Authority = rest
            .parse()
            .map_err(|e| format!("`{text}` is not an address ({e}); {expected}"))?;
        if rest.contains('@') {
            return Err(format!("`{text}` holds a user name; {expected}"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let written_port = rest[authority.host().len()..].strip_prefix(':');
        if let Some(p) = written_port
            && !matches!(p.parse::<u16>(), Ok(1..))
        {
            return Err(format!(
                "`{p}` is not a port (1 to 65535) in `{text}`; {expected}"
            ));
        }
        let port = match (authority.port_u16(), scheme) {
            (Some(p), _) => p,
            (None, Some(true)) => 443,
            (None, Some(false)) => 80,
            (None, None) => return Err(format!("no port in `{text}`; {expected}")),
        };
        Ok(Self {
            tls: scheme == Some(true),
            host: host.to_string(),
            port,
            authority: rest.to_string(),
        })
    }

    /// `host:port` to connect to (an IPv6 host in brackets).
    pub fn socket(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl TargetPlan {
    /// Its address, parsed (it was checked when the profile was read).
    pub fn parsed_address(&self) -> Result<Address, String> {
        Address::parse(&self.address)
    }

    /// The `:authority` sent.
    pub fn sent_authority(&self) -> Result<String, String> {
        match &self.authority {
            Some(a) => Ok(a.clone()),
            None => Ok(self.parsed_address()?.authority),
        }
    }

    /// The request's JSON template.
    pub fn request_text(&self) -> &str {
        self.request.as_deref().unwrap_or("{}")
    }

    /// The method every call calls, as a service config's `methodConfig.name` names it:
    /// `(service, method)`, the service with its package (`mycompany.payments.v1.Payments`)
    /// and the method alone (`Authorize`); `method` written as `pkg.Service/Method` or
    /// `pkg.Service.Method`. `None` only for a name the schema check refuses.
    pub fn called_method(&self) -> Option<(&str, &str)> {
        crate::schema::method::split(&self.method)
    }
}

/// Most metadata entries.
pub const MAX_METADATA: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    /// The called method in both spellings a user writes (ghz takes both), as service
    /// configs name it.
    #[test]
    fn the_called_method_as_service_configs_name_it() {
        let target = |method: &str| TargetPlan {
            address: "localhost:1".into(),
            authority: None,
            proto: vec![],
            import_paths: vec![],
            protoset: None,
            reflection: true,
            method: method.into(),
            request: None,
            request_file: None,
            request_from_file: false,
            metadata: BTreeMap::new(),
            tls: None,
            control: false,
        };
        for written in [
            "mycompany.payments.v1.Payments/Authorize",
            "mycompany.payments.v1.Payments.Authorize",
            "/mycompany.payments.v1.Payments/Authorize",
        ] {
            assert_eq!(
                target(written).called_method(),
                Some(("mycompany.payments.v1.Payments", "Authorize")),
                "{written}"
            );
        }
        assert_eq!(target("Authorize").called_method(), None);
    }

    #[test]
    fn addresses_in_each_form() {
        let a = Address::parse("localhost:50051").unwrap();
        assert_eq!(
            (a.tls, a.host.as_str(), a.port),
            (false, "localhost", 50051)
        );
        assert_eq!(
            (a.socket(), a.authority.as_str()),
            ("localhost:50051".into(), "localhost:50051")
        );
        let a = Address::parse("http://svc:8080/").unwrap();
        assert_eq!(
            (a.tls, a.port, a.authority.as_str()),
            (false, 8080, "svc:8080")
        );
        let a = Address::parse("https://api.example.com").unwrap();
        assert_eq!(
            (a.tls, a.port, a.authority.as_str()),
            (true, 443, "api.example.com")
        );
        let a = Address::parse("https://[::1]:8443").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.socket()),
            ("::1", 8443, "[::1]:8443".into())
        );
    }

    /// A path, an unknown scheme, no port (without a scheme), a user name: refused, saying
    /// which forms are expected.
    #[test]
    fn bad_addresses_say_what_is_expected() {
        for (text, says) in [
            ("https://api.example.com/v1", "has a path (`/v1`)"),
            ("grpc://svc:50051", "unknown scheme `grpc://`"),
            ("dns:///svc:50051", "unknown scheme `dns://`"),
            ("svc", "no port"),
            ("https://user@svc", "user name"),
            ("https://", "no host"),
            ("svc:99999", "`99999` is not a port"),
            ("svc:0", "`0` is not a port"),
        ] {
            let e = Address::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
            assert!(
                e.contains("expected host:port, http://host:port or https://host[:port]"),
                "{e}"
            );
        }
    }
}
