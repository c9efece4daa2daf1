//! A sweep on the terminal: the recommendation, then the p99 frontier as a table, then where
//! the files are.

use std::io::{self, Write};

use super::doc::{SweepDoc, shown};
use super::verdict::cost;

/// Most frontier rows printed (the page and sweep.json have them all).
const MAX_ROWS: usize = 20;

/// Writes the summary of `doc`.
pub fn write_summary(w: &mut impl Write, doc: &SweepDoc) -> io::Result<()> {
    let shard = doc.shard.map_or(String::new(), |s| format!(", shard {s}"));
    writeln!(
        w,
        "{}: {} of {} points finished ({} clock{shard})\n",
        doc.name,
        doc.points.len(),
        doc.points_total,
        doc.clock
    )?;
    for line in &doc.verdict.words {
        writeln!(w, "{line}")?;
    }
    let Some(tail) = doc.frontier.first() else {
        return Ok(());
    };
    if tail.points.is_empty() {
        return Ok(());
    }
    writeln!(
        w,
        "\ntrade-off frontier (p99 of all calls against {}), cheapest first:",
        doc.cost
    )?;
    let mut headers: Vec<&str> = vec!["point"];
    headers.extend(
        doc.grid
            .iter()
            .map(|k| k.key.rsplit('.').next().unwrap_or(&k.key)),
    );
    let named = doc.strategies.len() > 1;
    if named {
        headers.push("strategy");
    }
    headers.extend(["success", "p99 ms", "p99.9 ms", "cost"]);
    let mut rows = Vec::new();
    for pick in tail.points.iter().take(MAX_ROWS) {
        let Some((p, c)) = doc
            .candidates()
            .find(|(p, c)| p.index == pick.point && c.strategy == pick.strategy)
        else {
            continue;
        };
        let mut row = vec![p.index.to_string()];
        row.extend(
            doc.grid
                .iter()
                .map(|k| p.settings.get(&k.key).map_or(String::new(), shown)),
        );
        if named {
            row.push(c.strategy.clone());
        }
        let num = |v: Option<f64>| v.map_or("–".into(), crate::table::short);
        row.push(
            c.get("success_rate")
                .map_or("–".into(), |v| format!("{:.2}%", v * 100.0)),
        );
        row.push(num(c.get("latency_ms.e2e.p99")));
        row.push(num(c.get("latency_ms.e2e.p999")));
        row.push(cost(c).map_or("–".into(), |v| format!("{v:.3}")));
        rows.push(row);
    }
    crate::table::write(w, &headers, &rows, 1)?;
    if tail.points.len() > MAX_ROWS {
        writeln!(w, "(and {} more on the page)", tail.points.len() - MAX_ROWS)?;
    }
    Ok(())
}
