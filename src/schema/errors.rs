//! A request JSON that does not fit its message, in words: the field's path, its type and the
//! message type it belongs to, and for a field the message lacks, its fields and the closest.
//!
//! prost-reflect's JSON errors say what is wrong (`unrecognized field name 'mesage'`,
//! `invalid digit found in string`) but not where; serde_path_to_error tracks the path, and
//! the descriptors say what the path's field is.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_path_to_error::{Path, Segment};

use super::method::closest;

/// What went wrong parsing a request JSON as `input`, at `path`.
pub fn describe(input: &MessageDescriptor, e: &serde_json::Error, path: &Path) -> String {
    use serde_json::error::Category;
    if matches!(
        e.classify(),
        Category::Syntax | Category::Eof | Category::Io
    ) {
        return format!("not valid JSON: {e}");
    }
    let message = e.to_string();
    let message = message
        .rfind(" at line ")
        .map_or(message.as_str(), |at| &message[..at]);
    let keys: Vec<&Segment> = path.iter().collect();
    if let Some(name) = quoted(message, "unrecognized field name '") {
        let (parent, shown) = match walk(input, &keys).map(|p| p.kind) {
            Some(Kind::Message(m)) => (m, dotted(&keys)),
            _ => (input.clone(), String::new()),
        };
        let names: Vec<String> = parent.fields().map(|f| f.name().to_string()).collect();
        let near = closest(name, names.iter().map(String::as_str));
        let at = if shown.is_empty() {
            format!("`{name}`")
        } else {
            format!("`{shown}.{name}`")
        };
        return format!(
            "field {at} is not in {}{}; its fields: {}",
            parent.full_name(),
            near.map_or(String::new(), |n| format!(" (did you mean `{n}`?)")),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    let field = walk(input, &keys).and_then(|p| p.field);
    let what = match &field {
        Some(f) => format!(
            "field `{}` ({} in {})",
            dotted(&keys),
            kind_name(&f.kind()),
            f.parent_message().full_name()
        ),
        _ if keys.is_empty() => format!("the request ({})", input.full_name()),
        _ => format!("field `{}`", dotted(&keys)),
    };
    let mut text = format!("{what}: {message}");
    if message.starts_with("unrecognized enum value")
        && let Some(f) = &field
        && let Kind::Enum(e) = f.kind()
    {
        let values: Vec<String> = e.values().map(|v| v.name().to_string()).collect();
        text.push_str(&format!("; its values: {}", values.join(", ")));
    }
    text
}

/// The text between `prefix` and the next `'`.
fn quoted<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.find('\'').map(|end| &rest[..end])
}

/// A path as written: `inner.depth`, `tags[2]`.
fn dotted(keys: &[&Segment]) -> String {
    let mut out = String::new();
    for seg in keys {
        match seg {
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Enum { variant } => out.push_str(variant),
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

/// What a path leads to: the last field on it (none for the request itself) and the type of
/// the value there (a list's element, a map's value).
struct Place {
    field: Option<FieldDescriptor>,
    kind: Kind,
}

/// Follows `keys` from `input`: fields by proto or JSON name, list elements, map values.
fn walk(input: &MessageDescriptor, keys: &[&Segment]) -> Option<Place> {
    let mut place = Place {
        field: None,
        kind: Kind::Message(input.clone()),
    };
    let mut i = 0;
    while i < keys.len() {
        let Kind::Message(message) = &place.kind else {
            return None;
        };
        let Segment::Map { key } = keys[i] else {
            return None;
        };
        let field = message
            .get_field_by_name(key)
            .or_else(|| message.get_field_by_json_name(key))?;
        i += 1;
        let mut kind = field.kind();
        if field.is_map() {
            // The next segment is the map's key; the value's type follows.
            let entry = kind.as_message()?.clone();
            if i < keys.len() {
                i += 1;
                kind = entry.map_entry_value_field().kind();
            }
        } else if field.is_list() && matches!(keys.get(i), Some(Segment::Seq { .. })) {
            i += 1;
        }
        place = Place {
            field: Some(field),
            kind,
        };
    }
    Some(place)
}

/// A field type as a `.proto` file writes it.
pub fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => format!("enum {}", e.full_name()),
    }
}
