//! The backend's phases (outages, brownouts, spikes), read from the profile for shading.
//!
//! Phases belong to the backend's part of the profile, which another part of the tool
//! defines; the report reads them leniently from the profile JSON so that it shades them the
//! day they appear and draws no shading, rather than failing, when they are absent or shaped
//! differently. An entry of `profile.backend.phases` is shaded when it gives a start (`at`,
//! `start` or `from`) and an end (`until`, `end` or `to`) or a length (`duration` or `for`),
//! each a duration (`"5s"`) or a number of seconds; its label is its `kind`, `name` or `what`.

use serde_json::Value;

use super::charts::Band;
use crate::profile::duration;

fn seconds(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => duration::parse(s).ok().map(|d| d.as_secs_f64()),
        _ => None,
    }
}

fn first<'a>(entry: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| entry.get(*k))
}

/// The phases of the profile as shaded bands (seconds since a strategy's start).
pub fn bands(profile: &Value) -> Vec<Band> {
    let Some(list) = profile
        .get("backend")
        .and_then(|b| b.get("phases"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|entry| {
            let from = seconds(first(entry, &["at", "start", "from"])?)?;
            let to = match first(entry, &["until", "end", "to"]).and_then(seconds) {
                Some(to) => to,
                None => from + seconds(first(entry, &["duration", "for"])?)?,
            };
            let label = first(entry, &["kind", "name", "what"])
                .and_then(Value::as_str)
                .unwrap_or("phase")
                .to_string();
            (to > from).then_some(Band { from, to, label })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phases_are_read_leniently() {
        let profile = json!({"backend": {"phases": [
            {"kind": "outage", "at": "5s", "duration": "2s"},
            {"name": "brownout", "from": 10, "until": "12.5s"},
            {"kind": "nonsense"},
        ]}});
        let b = bands(&profile);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].from, b[0].to, b[0].label.as_str()),
            (5.0, 7.0, "outage")
        );
        assert_eq!((b[1].from, b[1].to), (10.0, 12.5));
        assert!(bands(&json!({"backend": {}})).is_empty());
    }
}
