//! `run --export csv`: the summary and the per-second timeline as CSV, for spreadsheets.
//!
//! Two files beside results.json: `summary.csv` (one row per strategy: counts, success,
//! goodput, latency of successful calls and of all calls, attempts, amplification, backend
//! figures) and `timeline.csv` (one row per strategy and second, as results.json's
//! `timeline`). Fields are quoted as RFC 4180 says (a strategy name may hold a comma); a
//! figure the run could not measure is an empty field. Column names are the results.json
//! paths, with `.` kept, so a column is found in docs/results.md.

use std::io::{self, Write};

use crate::results::{Results, StrategyResult};

/// One field, quoted when it holds a comma, a quote or a line break (RFC 4180).
pub fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

type Col = (&'static str, fn(&StrategyResult) -> Option<f64>);

const SUMMARY: [Col; 24] = [
    ("counts.offered", |s| Some(s.counts.offered as f64)),
    ("counts.sent", |s| Some(s.counts.sent as f64)),
    ("counts.succeeded", |s| Some(s.counts.succeeded as f64)),
    ("counts.failed", |s| Some(s.counts.failed as f64)),
    ("counts.dropped", |s| Some(s.counts.dropped as f64)),
    ("success_rate", |s| {
        (s.counts.offered > 0).then(|| s.counts.succeeded as f64 / s.counts.offered as f64)
    }),
    ("goodput.per_second", |s| Some(s.goodput.per_second)),
    ("latency_ms.e2e_ok.p50", |s| {
        s.latency_ms.e2e_ok.map(|l| l.p50)
    }),
    ("latency_ms.e2e_ok.p90", |s| {
        s.latency_ms.e2e_ok.map(|l| l.p90)
    }),
    ("latency_ms.e2e_ok.p99", |s| {
        s.latency_ms.e2e_ok.map(|l| l.p99)
    }),
    ("latency_ms.e2e_ok.p999", |s| {
        s.latency_ms.e2e_ok.map(|l| l.p999)
    }),
    ("latency_ms.e2e_ok.max", |s| {
        s.latency_ms.e2e_ok.map(|l| l.max)
    }),
    ("latency_ms.e2e.p99", |s| s.latency_ms.e2e.map(|l| l.p99)),
    ("latency_ms.e2e.p999", |s| s.latency_ms.e2e.map(|l| l.p999)),
    ("attempts.total", |s| Some(s.attempts.total as f64)),
    ("attempts.retries", |s| Some(s.attempts.retries as f64)),
    ("attempts.hedges", |s| Some(s.attempts.hedges as f64)),
    ("amplification.client", |s| Some(s.amplification.client)),
    ("amplification.backend", |s| s.amplification.backend),
    ("backend.received", |s| {
        s.backend.as_ref().map(|b| b.received as f64)
    }),
    ("backend.executed", |s| {
        s.backend.as_ref().map(|b| b.executed as f64)
    }),
    ("backend.wasted", |s| {
        s.backend.as_ref().map(|b| b.wasted as f64)
    }),
    ("backend.duplicate_side_effects", |s| {
        s.backend.as_ref().map(|b| b.duplicate_side_effects as f64)
    }),
    ("generator.lag_ms.p99", |s| Some(s.generator.lag_ms.p99)),
];

/// `summary.csv`: a header, then one row per strategy.
pub fn write_summary(w: &mut impl Write, results: &Results) -> io::Result<()> {
    let header: Vec<&str> = std::iter::once("strategy")
        .chain(SUMMARY.iter().map(|(n, _)| *n))
        .collect();
    writeln!(w, "{}", header.join(","))?;
    for s in &results.strategies {
        let row: Vec<String> = std::iter::once(field(&s.name))
            .chain(SUMMARY.iter().map(|(_, f)| num(f(s))))
            .collect();
        writeln!(w, "{}", row.join(","))?;
    }
    Ok(())
}

/// `timeline.csv`: a header, then one row per strategy and second.
pub fn write_timeline(w: &mut impl Write, results: &Results) -> io::Result<()> {
    writeln!(
        w,
        "strategy,t,offered,dropped,succeeded,failed,attempts,p50_ms,p99_ms,tokens,breaker"
    )?;
    for s in &results.strategies {
        let name = field(&s.name);
        for r in &s.timeline {
            let breaker = r
                .breaker
                .and_then(|b| serde_json::to_value(b).ok())
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            writeln!(
                w,
                "{name},{},{},{},{},{},{},{},{},{},{breaker}",
                r.t,
                r.offered,
                r.dropped,
                r.succeeded,
                r.failed,
                r.attempts,
                num(r.p50_ms),
                num(r.p99_ms),
                num(r.tokens),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn one_row_per_strategy_and_second() {
        let results: Results =
            serde_json::from_str(include_str!("../tests/fixtures/run-a.json")).unwrap();
        let mut out = Vec::new();
        write_summary(&mut out, &results).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + results.strategies.len());
        assert!(lines[0].starts_with("strategy,counts.offered,"));
        assert_eq!(lines[1].split(',').count(), lines[0].split(',').count());
        assert!(lines[1].starts_with("patient,852,852,845,"), "{}", lines[1]);
        let mut out = Vec::new();
        write_timeline(&mut out, &results).unwrap();
        let rows = String::from_utf8(out).unwrap().lines().count();
        let seconds: usize = results.strategies.iter().map(|s| s.timeline.len()).sum();
        assert_eq!(rows, 1 + seconds);
    }
}
