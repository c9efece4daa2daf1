//! A method config's `name` entries, and why none matches the method called.

use serde_json::Value;

use super::{Result, field};
/// One entry of a method config's `name` list, checked as gRPC clients check it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Name {
    /// `{}` (or `{"service": ""}`): the default for every method.
    Default,
    /// `{"service": "pkg.Service"}`: every method of the service.
    Service(String),
    /// `{"service": "pkg.Service", "method": "Method"}`: that method.
    Method(String, String),
}

impl Name {
    /// Reads one `name` entry. A missing key, `null` and `""` are the same (the service
    /// config proto's comment on `Name`); an empty service with a method is refused, as
    /// grpc-go (`errEmptyServiceNonEmptyMethod`), grpc-java (`missing service name for
    /// method`) and C-core (`method name populated without service name`) refuse it.
    pub(super) fn read(name: &Value) -> Result<Self> {
        if !name.is_object() {
            return Err(format!(
                "expected an object like {{\"service\": \"pkg.Service\", \"method\": \"Method\"}}, \
                 got {name}"
            ));
        }
        let text = |key: &str| match field(name, key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("expected a string for `{key}`, got {other}")),
        };
        Ok(match (text("service")?, text("method")?) {
            (s, m) if s.is_empty() && m.is_empty() => Name::Default,
            (s, m) if s.is_empty() => {
                return Err(format!(
                    "`method` is \"{m}\" without a `service`: a name with a method needs its \
                     service (gRPC clients refuse the config)"
                ));
            }
            (s, m) if m.is_empty() => Name::Service(s),
            (s, m) => Name::Method(s, m),
        })
    }

    /// How specifically it matches `service`/`method`: 2 the method, 1 the service, 0 the
    /// default; `None` if it does not (names are case-sensitive, as `:path` is).
    pub(super) fn specificity(&self, service: &str, method: &str) -> Option<u8> {
        match self {
            Name::Default => Some(0),
            Name::Service(s) => (s == service).then_some(1),
            Name::Method(s, m) => (s == service && m == method).then_some(2),
        }
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Default => f.write_str("{} (every method)"),
            Name::Service(s) => write!(f, "{s} (every method)"),
            Name::Method(s, m) => write!(f, "{s}/{m}"),
        }
    }
}

/// Why no name of a config matches the method called, in words, with what might have been
/// meant: the same service in another case, a leading slash, a full path written as the
/// service, the service's short name.
pub(super) fn no_match(names: &[Name], service: &str, method: &str) -> String {
    let called = format!("{service}/{method}");
    let how = format!(
        "name it as {{\"service\": \"{service}\"}} (every method of the service) or \
         {{\"service\": \"{service}\", \"method\": \"{method}\"}}, or add {{}} (the default for \
         every method)"
    );
    if names.is_empty() {
        return format!(
            "the config names no method (no methodConfig with a `name`), so it sets nothing for \
             the method this profile calls, `{called}`: a gRPC client would run it without \
             timeout or retry policy; {how}"
        );
    }
    let short = service.rsplit('.').next().unwrap_or(service);
    let hint = names.iter().find_map(|n| {
        let (s, m) = match n {
            Name::Default => return None,
            Name::Service(s) => (s.as_str(), None),
            Name::Method(s, m) => (s.as_str(), Some(m.as_str())),
        };
        let bare = s.trim_matches('/');
        if s == service {
            // The service is right: the method differs.
            m.filter(|m| m.eq_ignore_ascii_case(method)).map(|m| {
                format!("`{s}/{m}` differs from `{called}` in case: names are case-sensitive")
            })
        } else if bare == service || bare == called {
            Some(format!(
                "`{s}` is written with a slash: a service is `package.Service`"
            ))
        } else if s.eq_ignore_ascii_case(service) {
            Some(format!(
                "`{s}` differs from `{service}` in case: names are case-sensitive"
            ))
        } else if s == short || s.ends_with(&format!(".{short}")) {
            Some(format!(
                "`{s}` is not `{service}`: a service is named with its full package"
            ))
        } else {
            None
        }
    });
    let listed: Vec<String> = names.iter().map(ToString::to_string).collect();
    format!(
        "no methodConfig names the method this profile calls, `{called}`; the config names {}. \
         A gRPC client would call `{called}` without timeout or retry policy; {how}{}",
        listed.join(", "),
        hint.map(|h| format!(" ({h})")).unwrap_or_default()
    )
}
