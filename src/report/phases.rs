//! The profile's phases (outages, brownouts, stalls, error bursts, load spikes), read from the
//! results' `profile.phases` for shading the charts.
//!
//! Each entry has a `kind`, a `start` and a `duration` (see `crate::profile::phases`), and may
//! name the `replica` it affects. The report reads them from the JSON rather than the typed
//! plan so that a results file from a newer build (with a phase kind this build does not know)
//! still gets its bands: an entry without a readable start and duration is simply not shaded.

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

/// The phases of the profile as shaded bands (seconds since a strategy's start).
pub fn bands(profile: &Value) -> Vec<Band> {
    let Some(list) = profile.get("phases").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|entry| {
            let from = seconds(entry.get("start")?)?;
            let to = from + seconds(entry.get("duration")?)?;
            let kind = entry.get("kind").and_then(Value::as_str).unwrap_or("phase");
            let label = match entry.get("replica").and_then(Value::as_str) {
                Some(replica) => format!("{kind} ({replica})"),
                None => kind.to_string(),
            };
            (to > from).then_some(Band { from, to, label })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phases_become_bands() {
        let profile = json!({"phases": [
            {"kind": "outage", "start": "5s", "duration": "2s"},
            {"kind": "brownout", "start": "10s", "duration": "2500ms", "replica": "slow"},
            {"kind": "from_the_future", "when": "later"},
        ]});
        let b = bands(&profile);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].from, b[0].to, b[0].label.as_str()),
            (5.0, 7.0, "outage")
        );
        assert_eq!(
            (b[1].from, b[1].to, b[1].label.as_str()),
            (10.0, 12.5, "brownout (slow)")
        );
        assert!(bands(&json!({"phases": []})).is_empty());
    }
}
