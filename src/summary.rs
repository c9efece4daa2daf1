//! The summary table printed after a run: one row per strategy.
//!
//! Latency columns are those of *successful* calls, from their intended start: failures are
//! counted in the success column, and a strategy that fails fast must not look fast. (Every
//! call's latency, failures included, is in results.json as `latency_ms.e2e`.)
//!
//! Printers take `&mut impl Write`, so what the user sees is testable.

use std::io::{self, Write};

use crate::results::{Results, StrategyResult};

/// How to get one cell of a strategy's row.
type Cell = fn(&StrategyResult) -> String;

/// Column headers, and how to get each cell of a strategy.
const COLUMNS: [(&str, Cell); 8] = [
    ("strategy", |s| {
        crate::table::printable(&s.name).into_owned()
    }),
    ("success", |s| {
        let c = &s.counts;
        if c.offered == 0 {
            "-".into()
        } else {
            format!("{:.2}%", 100.0 * c.succeeded as f64 / c.offered as f64)
        }
    }),
    ("p50 ms", |s| ms(s.latency_ms.e2e_ok.map(|l| l.p50))),
    ("p99 ms", |s| ms(s.latency_ms.e2e_ok.map(|l| l.p99))),
    ("p99.9 ms", |s| ms(s.latency_ms.e2e_ok.map(|l| l.p999))),
    ("attempts/call", |s| {
        format!("{:.3}", s.amplification.client)
    }),
    ("backend amp", |s| {
        s.amplification
            .backend
            .map_or("-".into(), |b| format!("{b:.3}"))
    }),
    ("goodput/s", |s| format!("{:.1}", s.goodput.per_second)),
];

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| {
        if v >= 100.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        }
    })
}

/// Writes the heading, the table and any warnings.
pub fn write_summary(w: &mut impl Write, results: &Results) -> io::Result<()> {
    let e = &results.environment;
    let partial = if results.partial {
        " (INTERRUPTED: partial results)"
    } else {
        ""
    };
    match results.plan() {
        Some(p) => {
            let steps = match p.load.steps.len() {
                0 => String::new(),
                1 => " then 1 rate step".to_string(),
                n => format!(" then {n} rate steps"),
            };
            let arrival = match p.load.arrival {
                crate::profile::Arrival::Constant => "constant",
                crate::profile::Arrival::Poisson => "Poisson",
            };
            writeln!(
                w,
                "{}: {} at {} calls/s{steps} ({arrival} arrivals), {} clock, {} backend{partial}",
                crate::table::printable(&p.name),
                crate::profile::duration::format(p.load.duration),
                p.load.rate,
                e.clock,
                crate::table::printable(&e.target),
            )?;
        }
        None => writeln!(
            w,
            "{} clock, {} backend{partial}",
            crate::table::printable(&e.clock),
            crate::table::printable(&e.target)
        )?,
    }
    let rows: Vec<Vec<String>> = results
        .strategies
        .iter()
        .map(|s| COLUMNS.iter().map(|(_, cell)| cell(s)).collect())
        .collect();
    let widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(w)?;
    writeln!(
        w,
        "{}",
        line(COLUMNS.iter().map(|(h, _)| h.to_string()).collect())
    )?;
    for row in rows {
        writeln!(w, "{}", line(row))?;
    }
    writeln!(
        w,
        "(latency of successful calls, from their intended start)"
    )?;
    if !results.warnings.is_empty() {
        writeln!(w)?;
        for warning in &results.warnings {
            writeln!(w, "warning: {warning}")?;
        }
    }
    Ok(())
}
