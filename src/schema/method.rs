//! The method a profile calls, found in the schema: `pkg.Service/Method` (or ghz's and
//! grpcurl's `pkg.Service.Method`), unary or server streaming.
//!
//! A call of resilbench sends one request message and reads what comes back, so client- and
//! bidirectional-streaming methods are refused, by name. A name that is not there is answered
//! with the service's methods (or the schema's services) and the closest name.

use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor};

use super::SchemaError;

/// The method a run calls, as found in the schema.
#[derive(Clone)]
pub struct Called {
    /// Its descriptor (input and output types).
    pub method: MethodDescriptor,
    /// Its HTTP/2 `:path`: `/pkg.Service/Method`.
    pub path: String,
}

// A descriptor's `Debug` shows its types' fields, and does not end for a recursive one.
impl std::fmt::Debug for Called {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Called")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Called {
    /// Whether the server answers with a stream of messages.
    pub fn streaming(&self) -> bool {
        self.method.is_server_streaming()
    }

    /// The request's message type.
    pub fn input(&self) -> MessageDescriptor {
        self.method.input()
    }

    /// `pkg.Service/Method`.
    pub fn name(&self) -> String {
        format!(
            "{}/{}",
            self.method.parent_service().full_name(),
            self.method.name()
        )
    }
}

/// `pkg.Service/Method` (or `pkg.Service.Method`) split at its last `/` (or `.`): the
/// service's full name and the method's name.
pub fn split(name: &str) -> Option<(&str, &str)> {
    let name = name.trim().trim_start_matches('/');
    let (service, method) = name.rsplit_once('/').or_else(|| name.rsplit_once('.'))?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !part.starts_with(|c: char| c.is_ascii_digit())
            })
    };
    (ok(service) && ok(method) && !method.contains('.')).then_some((service, method))
}

/// Finds `name` in `pool`.
pub fn find_method(pool: &DescriptorPool, name: &str) -> Result<Called, SchemaError> {
    let (service_name, method_name) = split(name).ok_or_else(|| {
        SchemaError::new(format!(
            "`{name}` is not a method name; expected `package.Service/Method`"
        ))
    })?;
    let Some(service) = pool.get_service_by_name(service_name) else {
        let services: Vec<String> = pool.services().map(|s| s.full_name().to_string()).collect();
        if services.is_empty() {
            return Err(SchemaError::new(format!(
                "no service `{service_name}`: the schema defines no service"
            )));
        }
        let near = closest(service_name, services.iter().map(String::as_str));
        return Err(SchemaError::new(format!(
            "no service `{service_name}` in the schema{}; its services: {}",
            near.map_or(String::new(), |n| format!(" (did you mean `{n}`?)")),
            services.join(", ")
        )));
    };
    let Some(method) = service.methods().find(|m| m.name() == method_name) else {
        let methods: Vec<String> = service
            .methods()
            .map(|m| format!("{} ({})", m.name(), kind(&m)))
            .collect();
        let names: Vec<String> = service.methods().map(|m| m.name().to_string()).collect();
        let near = closest(method_name, names.iter().map(String::as_str));
        return Err(SchemaError::new(format!(
            "`{}` has no method `{method_name}`{}; its methods: {}",
            service.full_name(),
            near.map_or(String::new(), |n| format!(" (did you mean `{n}`?)")),
            if methods.is_empty() {
                "none".to_string()
            } else {
                methods.join(", ")
            }
        )));
    };
    if method.is_client_streaming() {
        return Err(SchemaError::new(format!(
            "`{}/{}` is {}; resilbench calls unary and server-streaming methods (each call \
             sends one request message)",
            service.full_name(),
            method.name(),
            kind(&method)
        )));
    }
    Ok(Called {
        path: format!("/{}/{}", service.full_name(), method.name()),
        method,
    })
}

/// A method's kind in words.
pub fn kind(m: &MethodDescriptor) -> &'static str {
    match (m.is_client_streaming(), m.is_server_streaming()) {
        (false, false) => "unary",
        (false, true) => "server streaming",
        (true, false) => "client streaming",
        (true, true) => "bidirectional streaming",
    }
}

/// The candidate nearest `word` by edit distance, if near enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (word.chars().count().max(c.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.proto");
        std::fs::write(
            &path,
            "syntax = \"proto3\"; package acme.echo.v1; message R { string id = 1; }\n\
             service Echo { rpc Say(R) returns (R); rpc Count(R) returns (stream R);\n\
             rpc Upload(stream R) returns (R); rpc Chat(stream R) returns (stream R); }",
        )
        .unwrap();
        super::super::proto::compile(&[path], &[]).unwrap()
    }

    #[test]
    fn names_split_as_ghz_and_grpcurl_write_them() {
        assert_eq!(split("a.b.S/M"), Some(("a.b.S", "M")));
        assert_eq!(split("/a.b.S/M"), Some(("a.b.S", "M")));
        assert_eq!(split("a.b.S.M"), Some(("a.b.S", "M")));
        assert_eq!(split("S/M"), Some(("S", "M")));
        for bad in ["", "a.b.S/", "/M", "a b/M", "a..b/M", "M", "a/b/c.d"] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }

    #[test]
    fn unary_and_server_streaming_methods_are_found() {
        let pool = pool();
        let say = find_method(&pool, "acme.echo.v1.Echo/Say").unwrap();
        assert_eq!(say.path, "/acme.echo.v1.Echo/Say");
        assert!(!say.streaming());
        assert_eq!(say.input().full_name(), "acme.echo.v1.R");
        assert!(
            find_method(&pool, "acme.echo.v1.Echo.Count")
                .unwrap()
                .streaming()
        );
    }

    /// An unknown method lists the service's methods and the closest name; an unknown
    /// service lists the services; streaming requests are refused by kind.
    #[test]
    fn wrong_names_and_streaming_requests_say_why() {
        let pool = pool();
        let e = find_method(&pool, "acme.echo.v1.Echo/Sey").unwrap_err().0;
        assert_eq!(
            e,
            "`acme.echo.v1.Echo` has no method `Sey` (did you mean `Say`?); its methods: Say \
             (unary), Count (server streaming), Upload (client streaming), Chat (bidirectional \
             streaming)"
        );
        let e = find_method(&pool, "acme.echo.v1.Ecco/Say").unwrap_err().0;
        assert!(e.contains("did you mean `acme.echo.v1.Echo`?"), "{e}");
        for m in ["Upload", "Chat"] {
            let e = find_method(&pool, &format!("acme.echo.v1.Echo/{m}"))
                .unwrap_err()
                .0;
            assert!(
                e.contains("streaming; resilbench calls unary and server-streaming"),
                "{e}"
            );
        }
        assert!(
            find_method(&pool, "nonsense")
                .unwrap_err()
                .0
                .contains("package.Service/Method")
        );
    }
}
