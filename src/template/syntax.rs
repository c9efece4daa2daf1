//! What a placeholder says: its name and arguments read from between the braces, ghz's
//! names accepted, the ones that depend on the wall clock or on ghz's workers refused with
//! what to use instead, an unknown name answered with the closest.
//!
//! Why apart from the template: this is the part a user's mistakes meet, so each error names
//! the placeholder as written and what was expected.

use super::{MAX_CHOICES, MAX_STRING, TemplateError, Value};

/// Placeholders ghz offers that depend on the wall clock or on its workers, with what to
/// use instead.
const REFUSED: [(&str, &str); 8] = [
    (".Timestamp", "the wall clock"),
    (".TimestampUnix", "the wall clock"),
    (".TimestampUnixMilli", "the wall clock"),
    (".TimestampUnixNano", "the wall clock"),
    (
        ".WorkerID",
        "ghz's workers (resilbench sends on a schedule, not from workers)",
    ),
    (
        ".FullyQualifiedName",
        "nothing a call changes (write the name)",
    ),
    (".MethodName", "nothing a call changes (write the name)"),
    (".ServiceName", "nothing a call changes (write the name)"),
];

/// Every placeholder name, for "did you mean".
const NAMES: [&str; 11] = [
    "call",
    "request_id",
    "uuid",
    "newUUID",
    "int",
    "randomInt",
    "choice",
    "string",
    "randomString",
    ".RequestNumber",
    ".UUID",
];

impl Value {
    /// The placeholder `written`, whose inside is `inner`.
    pub(super) fn parse(inner: &str, written: &str) -> Result<Self, TemplateError> {
        let err = |m: String| TemplateError(format!("`{written}`: {m}"));
        let words = words(inner).map_err(err)?;
        let Some((name, args)) = words.split_first() else {
            return Err(err(format!(
                "an empty placeholder; expected one of {}",
                NAMES.join(", ")
            )));
        };
        let no_args = |v: Value| {
            if args.is_empty() {
                Ok(v)
            } else {
                Err(err(format!("`{name}` takes no arguments")))
            }
        };
        let int = |i: usize| -> Result<i64, TemplateError> {
            args[i]
                .parse()
                .map_err(|_| err(format!("`{}` is not an integer", args[i])))
        };
        match name.as_str() {
            "call" | ".RequestNumber" => no_args(Value::Call),
            "request_id" => no_args(Value::RequestId),
            "uuid" | ".UUID" => no_args(Value::Uuid),
            "newUUID" => no_args(Value::FreshUuid),
            "int" | "randomInt" => {
                if args.len() != 2 {
                    return Err(err(format!("`{name}` takes two integers, from and to")));
                }
                let (lo, hi) = (int(0)?, int(1)?);
                // ghz's randomInt leaves its upper bound out.
                let hi = if name == "randomInt" {
                    if hi <= lo {
                        return Err(err(format!(
                            "`randomInt {lo} {hi}` has no value: the upper bound is left out, as in ghz"
                        )));
                    }
                    hi - 1
                } else {
                    hi
                };
                if lo > hi {
                    return Err(err(format!("from {lo} to {hi} is empty")));
                }
                Ok(Value::Int { lo, hi })
            }
            "choice" => {
                if args.is_empty() || args.len() > MAX_CHOICES {
                    return Err(err(format!("`choice` takes 1 to {MAX_CHOICES} values")));
                }
                Ok(Value::Choice(
                    args.iter().map(|a| a.as_str().into()).collect(),
                ))
            }
            "string" | "randomString" => {
                let n = match args {
                    [n] => n
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (1..=MAX_STRING).contains(n)),
                    _ => None,
                };
                let n = n.ok_or_else(|| {
                    err(format!("`{name}` takes a length from 1 to {MAX_STRING}"))
                })?;
                Ok(Value::Text(n as u16))
            }
            other => {
                if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == other) {
                    return Err(err(format!(
                        "ghz's `{other}` depends on {why}; resilbench's values are keyed by the \
                         seed and the call (use `{{{{call}}}}`, `{{{{request_id}}}}` or `{{{{uuid}}}}`)"
                    )));
                }
                let near = NAMES
                    .iter()
                    .map(|n| (strsim::damerau_levenshtein(other, n), n))
                    .filter(|(d, n)| *d <= (n.len() / 3).max(1))
                    .min_by_key(|(d, _)| *d)
                    .map_or(String::new(), |(_, n)| format!(" (did you mean `{n}`?)"));
                Err(err(format!(
                    "unknown placeholder `{other}`{near}; expected one of {}",
                    NAMES.join(", ")
                )))
            }
        }
    }
}

/// The words of a placeholder: bare words split at spaces, and "quoted" strings (JSON escapes
/// inside; `\"...\"` too, as written inside a JSON string).
fn words(inner: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let escaped = rest.starts_with("\\\"");
        if rest.starts_with('"') || escaped {
            let (open, close) = if escaped {
                ("\\\"", "\\\"")
            } else {
                ("\"", "\"")
            };
            let body = &rest[open.len()..];
            let end = closing(body, close)
                .ok_or_else(|| format!("a string opened with {open} is not closed"))?;
            let quoted = format!("\"{}\"", &body[..end]);
            let value: String = serde_json::from_str(&quoted)
                .map_err(|e| format!("{open}{}{close} is not a string: {e}", &body[..end]))?;
            out.push(value);
            rest = body[end + close.len()..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    Ok(out)
}

/// Where `close` ends a string body that may hold backslash escapes.
fn closing(body: &str, close: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if body[i..].starts_with(close) {
            return Some(i);
        }
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    None
}
