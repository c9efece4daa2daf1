//! Tables that name their own kind (`kind = "retry"`), read so that an error inside keeps its
//! place.
//!
//! serde's internally tagged enums (`#[serde(tag = "kind")]`) buffer the whole table before
//! choosing the variant, and an error inside the variant then loses its path: the user reads
//! `strategies[1].layers[0]: unknown variant`, pointed at the layer's first line, instead of
//! `strategies[1].layers[0].backoff.jitter`, pointed at the key. [`read`] instead takes the
//! table as a value, picks the variant by its tag, and deserializes the variant's own type with
//! its path tracked. The inner path travels inside the error message ([`nested`]); the parser
//! ([`super::error`]) appends it to the outer path and finds the key's line.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Error};

/// Marks the start and end of an inner path at the head of an error message.
const MARK: char = '\u{1}';

/// An error message for the field at `path` inside the value being read. Nested twice (a
/// budget inside a layer), the paths join.
pub fn nested(path: &str, message: &str) -> String {
    match split(message) {
        Some((inner, message)) => format!("{MARK}{path}.{inner}{MARK}{message}"),
        None => format!("{MARK}{path}{MARK}{message}"),
    }
}

/// The inner path and the message of a [`nested`] error message.
pub fn split(message: &str) -> Option<(&str, &str)> {
    message.strip_prefix(MARK)?.split_once(MARK)
}

/// Reads a table tagged by `tag` and hands its kind and the rest of the table to `variant`,
/// which deserializes the variant with [`fields`].
pub fn read<'de, D, T>(
    d: D,
    tag: &'static str,
    variant: impl FnOnce(&str, toml::Value) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let mut table = toml::Table::deserialize(d)?;
    let kind = match table.remove(tag) {
        Some(toml::Value::String(kind)) => kind,
        Some(other) => {
            return Err(D::Error::custom(nested(
                tag,
                &format!("must be a string, got {}", other.type_str()),
            )));
        }
        None => return Err(D::Error::missing_field(tag)),
    };
    variant(&kind, toml::Value::Table(table)).map_err(D::Error::custom)
}

/// Deserializes a variant's fields, keeping the path of an error inside them.
pub fn fields<T: DeserializeOwned>(value: toml::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().message().trim().to_string();
        if path.is_empty() || path == "." {
            message
        } else {
            nested(&path, &message)
        }
    })
}

/// The error for a kind that is not one of `kinds`.
pub fn unknown(tag: &str, kind: &str, kinds: &[&str]) -> String {
    let list = kinds
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    nested(
        tag,
        &format!("unknown {tag} `{kind}`, expected one of {list}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// results.json keeps the profile as JSON; its layers read back through these helpers.
    #[test]
    fn layers_round_trip_through_json() {
        use crate::profile::LayerPlan;
        let text = r#"
            [[layers]]
            kind = "retry"
            budget = { kind = "envoy", budget_percent = 25 }
            [[layers]]
            kind = "grpc_retry"
            max_attempts = 4
            initial_backoff = "100ms"
            max_backoff = "1s"
            backoff_multiplier = 1.5
            retryable_status_codes = ["UNAVAILABLE"]
            throttle = { max_tokens = 10, token_ratio = 0.1 }
            [[layers]]
            kind = "timeout"
            timeout = "25ms"
        "#;
        #[derive(Deserialize)]
        struct Layers {
            layers: Vec<LayerPlan>,
        }
        let layers = toml::from_str::<Layers>(text).unwrap().layers;
        let json = serde_json::to_value(&layers).unwrap();
        let back: Vec<LayerPlan> = serde_json::from_value(json).unwrap();
        assert_eq!(back, layers);
    }

    #[test]
    fn nested_paths_join() {
        let inner = nested("ttl", "too long");
        let outer = nested("budget", &inner);
        assert_eq!(split(&outer), Some(("budget.ttl", "too long")));
        assert_eq!(split("plain"), None);
    }
}
