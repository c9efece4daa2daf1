//! The figures that sum up a strategy, and which way is better for each.
//!
//! The report's verdict table and `compare` show the same figures in the same order, read by
//! name from results.json ([`crate::figure`]). Backend figures beyond the four every v1 file has
//! (duplicate side effects, wasted work, added by later builds) join the list when a run has
//! them ([`extra_backend_figures`]), so the table grows with the results file, not with this
//! code. Strategies with a circuit breaker add the calls it refused, streaming calls the
//! streams that failed after their commit: the figures their stories turn on.

use serde_json::Value;

/// Which value of a figure is best.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Higher is better (success, goodput).
    Higher,
    /// Lower is better (latency, amplification, duplicates).
    Lower,
    /// Neither: shown, never marked best.
    Neither,
}

/// One headline figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Headline {
    /// Figure name (a results.json path or a derived name).
    pub figure: String,
    /// Column header.
    pub label: String,
    /// Which way is better.
    pub better: Better,
    /// Shown as a percentage (a fraction in the file).
    pub percent: bool,
}

/// The backend figures every v1 file has; others under `backend` are extras.
const BACKEND_BASE: [&str; 4] = ["received", "executed", "rejected", "queue_high_water"];

fn headline(figure: &str, label: &str, better: Better, percent: bool) -> Headline {
    Headline {
        figure: figure.into(),
        label: label.into(),
        better,
        percent,
    }
}

/// The headline figures of a run whose strategies' JSON objects are `strategies`.
pub fn headlines<'a>(strategies: impl IntoIterator<Item = &'a Value>) -> Vec<Headline> {
    let strategies: Vec<&Value> = strategies.into_iter().collect();
    let mut out = vec![
        headline("success_rate", "success", Better::Higher, true),
        headline("goodput.per_second", "goodput/s", Better::Higher, false),
        headline("latency_ms.e2e_ok.p50", "p50 ms", Better::Lower, false),
        headline("latency_ms.e2e_ok.p99", "p99 ms", Better::Lower, false),
        headline("latency_ms.e2e_ok.p999", "p99.9 ms", Better::Lower, false),
        headline(
            "amplification.client",
            "attempts/call",
            Better::Lower,
            false,
        ),
        headline("amplification.backend", "backend amp", Better::Lower, false),
    ];
    let has = |key: &str| {
        strategies
            .iter()
            .any(|s| s.get(key).is_some_and(Value::is_object))
    };
    if has("breaker") {
        out.push(headline(
            "breaker.short_circuited",
            "refused by breaker",
            Better::Neither,
            false,
        ));
    }
    if has("stream") {
        out.push(headline(
            "stream.failed_after_commit",
            "failed after commit",
            Better::Lower,
            false,
        ));
    }
    for figure in extra_backend_figures(strategies) {
        let key = figure.trim_start_matches("backend.");
        let better = if key.contains("duplicate") || key.contains("wasted") {
            Better::Lower
        } else {
            Better::Neither
        };
        out.push(headline(
            &figure,
            &key.replace(['_', '.'], " "),
            better,
            false,
        ));
    }
    out
}

/// Numeric figures under `backend` (one level of nesting) beyond the v1 base, in first-seen
/// order: `backend.duplicate_side_effects`, ...
pub fn extra_backend_figures<'a>(strategies: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add = |name: String| {
        if seen.insert(name.clone()) {
            out.push(name);
        }
    };
    for s in strategies {
        let Some(backend) = s.get("backend").and_then(Value::as_object) else {
            continue;
        };
        for (k, v) in backend {
            if BACKEND_BASE.contains(&k.as_str()) {
                continue;
            }
            match v {
                Value::Number(_) => add(format!("backend.{k}")),
                Value::Object(inner) => {
                    for (k2, v2) in inner {
                        if v2.is_number() {
                            add(format!("backend.{k}.{k2}"));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// A figure as a table cell's text.
pub fn cell_text(h: &Headline, v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if h.percent => format!("{:.2}%", v * 100.0),
        Some(v) if h.figure.starts_with("latency_ms") => {
            if v >= 100.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.2}")
            }
        }
        Some(v) if h.figure.starts_with("amplification") => format!("{v:.3}"),
        Some(v) if h.figure.starts_with("goodput") => format!("{v:.1}"),
        Some(v) => crate::table::short(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backend_figures_added_later_join_the_headlines() {
        let a = json!({"backend": {"received": 10, "duplicate_side_effects": 2}});
        let b = json!({"backend": null});
        let c = json!({"backend": {"wasted": {"attempts": 3, "ms": 12.5}, "phase": "x"}});
        let h = headlines([&a, &b, &c]);
        let extra: Vec<_> = h[7..]
            .iter()
            .map(|h| (h.figure.as_str(), h.better))
            .collect();
        assert_eq!(
            extra,
            [
                ("backend.duplicate_side_effects", Better::Lower),
                ("backend.wasted.attempts", Better::Lower),
                ("backend.wasted.ms", Better::Lower),
            ]
        );
        assert_eq!(headlines([&b]).len(), 7);
    }
}
