//! The verdict: the strategies side by side, the best value of each column marked.
//!
//! This is what a reader comes for, so it comes first. The figures are the headline figures
//! ([`crate::headline`]), read by name from results.json; a column a run has no value for
//! shows `–`. "Best" is the highest success and goodput, the lowest latency, amplification,
//! duplicates and wasted work; ties are all marked, and a column where every strategy is
//! equal marks none.

use serde_json::Value;

use super::html::{esc, name_cell};
use super::palette;
use crate::document::ResultsDoc;
use crate::figure;
use crate::headline::{Better, cell_text, headlines};

/// Which values of a column are best (none when fewer than two differ).
pub fn best(better: Better, values: &[Option<f64>]) -> Vec<bool> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let pick = match better {
        Better::Higher => present.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Better::Lower => present.iter().copied().fold(f64::INFINITY, f64::min),
        Better::Neither => return vec![false; values.len()],
    };
    let all_same = present.windows(2).all(|w| w[0] == w[1]);
    if present.len() < 2 || all_same {
        return vec![false; values.len()];
    }
    values.iter().map(|v| *v == Some(pick)).collect()
}

/// The verdict table.
pub fn table(doc: &ResultsDoc) -> String {
    let strategies: Vec<&Value> = doc
        .results
        .strategies
        .iter()
        .filter_map(|s| doc.strategy_json(&s.name))
        .collect();
    let heads = headlines(strategies.iter().copied());
    let values: Vec<Vec<Option<f64>>> = heads
        .iter()
        .map(|h| {
            strategies
                .iter()
                .map(|s| figure::resolve(s, &h.figure).ok().and_then(|r| r.value()))
                .collect()
        })
        .collect();
    let marks: Vec<Vec<bool>> = heads
        .iter()
        .zip(&values)
        .map(|(h, v)| best(h.better, v))
        .collect();
    let mut out =
        String::from("<table class=\"verdict\">\n<thead><tr><th class=\"name\">strategy</th>");
    for h in &heads {
        out.push_str(&format!("<th>{}</th>", esc(&h.label)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (i, s) in doc.results.strategies.iter().enumerate() {
        out.push_str("<tr>");
        out.push_str(&name_cell(&s.name, &palette::css(i)));
        for (c, h) in heads.iter().enumerate() {
            let v = values[c].get(i).copied().flatten();
            let text = esc(&cell_text(h, v));
            if marks[c].get(i).copied().unwrap_or(false) {
                out.push_str(&format!("<td class=\"best\" title=\"best\">{text} ★</td>"));
            } else {
                out.push_str(&format!("<td>{text}</td>"));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out.push_str(
        "<p class=\"note\">★ best in its column. Latency columns are of <em>successful</em> \
         calls, from their intended start (a strategy that fails fast must not look fast: \
         failures count in <em>success</em>). Goodput: calls that succeeded within their \
         deadline, per second. Attempts/call: attempts the client sent ÷ calls sent; backend \
         amp: attempts the backend received ÷ calls sent.</p>\n",
    );
    out
}

/// Counts behind the verdict: what happened to the calls, and what the backend saw.
pub fn details(doc: &ResultsDoc) -> String {
    let mut out = String::from(
        "<table>\n<thead><tr><th class=\"name\">strategy</th><th>offered</th><th>succeeded</th>\
         <th>failed</th><th>dropped</th><th>attempts</th><th>retries</th><th>hedges</th>\
         <th>backend received</th><th>executed</th><th>rejected</th><th>queue max</th>\
         </tr></thead>\n<tbody>\n",
    );
    for (i, s) in doc.results.strategies.iter().enumerate() {
        let c = &s.counts;
        let b = s.backend.as_ref();
        let opt = |v: Option<u64>| v.map_or("–".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "<tr>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            name_cell(&s.name, &palette::css(i)),
            c.offered,
            c.succeeded,
            c.failed,
            c.dropped,
            s.attempts.total,
            s.attempts.retries,
            s.attempts.hedges,
            opt(b.map(|b| b.received)),
            opt(b.map(|b| b.executed)),
            opt(b.map(|b| b.rejected)),
            opt(b.map(|b| b.queue_high_water)),
        ));
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// What the retry layers decided: retries sent, server pushback honoured, attempts a client-side
/// throttle refused, and failed attempts not retried, by reason (one column per reason any
/// strategy met). `None` when no strategy retried or refused anything.
pub fn retries(doc: &ResultsDoc) -> Option<String> {
    let strategies = &doc.results.strategies;
    let mut reasons: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in strategies {
        for k in s.attempts.retry_denied.keys() {
            if seen.insert(k.as_str()) {
                reasons.push(k);
            }
        }
    }
    let any = strategies.iter().any(|s| {
        let a = &s.attempts;
        a.retries + a.pushback_waits + a.rejected_locally > 0
    });
    if reasons.is_empty() && !any {
        return None;
    }
    let mut out = String::from(
        "<table>\n<thead><tr><th class=\"name\">strategy</th><th>retries</th>\
         <th>pushback waits</th><th>rejected locally</th>",
    );
    for r in &reasons {
        out.push_str(&format!(
            "<th>not retried: {}</th>",
            esc(&r.replace('_', " "))
        ));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (i, s) in strategies.iter().enumerate() {
        let a = &s.attempts;
        out.push_str(&format!(
            "<tr>{}<td>{}</td><td>{}</td><td>{}</td>",
            name_cell(&s.name, &palette::css(i)),
            a.retries,
            a.pushback_waits,
            a.rejected_locally
        ));
        for r in &reasons {
            let n = a.retry_denied.get(*r).copied().unwrap_or(0);
            out.push_str(&format!("<td>{n}</td>"));
        }
        out.push_str("</tr>\n");
    }
    out.push_str(
        "</tbody>\n</table>\n<p class=\"note\">not retried: failed attempts a retry layer \
         let stand, by reason: the status is not retried, the attempt limit, the retry \
         throttle or budget, the call's deadline, the server's pushback, a committed stream.</p>\n",
    );
    Some(out)
}

/// What the hedging, breaker and fan-out layers did, one column group per kind of layer any
/// strategy has. `None` when no strategy hedged, had a breaker or fanned out.
pub fn layers(doc: &ResultsDoc) -> Option<String> {
    let strategies = &doc.results.strategies;
    let hedged = strategies.iter().any(|s| s.attempts.hedges > 0);
    let breaker = strategies.iter().any(|s| s.breaker.is_some());
    let fan_out = strategies.iter().any(|s| s.fan_out.is_some());
    if !(hedged || breaker || fan_out) {
        return None;
    }
    let mut out = String::from("<table>\n<thead><tr><th class=\"name\">strategy</th>");
    if hedged {
        out.push_str("<th>hedges</th><th>won by a hedge</th><th>attempts cancelled</th>");
    }
    if breaker {
        out.push_str("<th>short-circuited</th><th>fallbacks</th><th>times opened</th>");
    }
    if fan_out {
        out.push_str("<th>sub-calls</th><th>sub-call p99 ms</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let dashes = |n: usize| "<td>–</td>".repeat(n);
    for (i, s) in strategies.iter().enumerate() {
        out.push_str(&format!("<tr>{}", name_cell(&s.name, &palette::css(i))));
        let a = &s.attempts;
        if hedged {
            out.push_str(&format!(
                "<td>{}</td><td>{}</td><td>{}</td>",
                a.hedges, a.hedges_won, a.hedges_cancelled
            ));
        }
        if breaker {
            out.push_str(&s.breaker.as_ref().map_or_else(
                || dashes(3),
                |b| {
                    format!(
                        "<td>{}</td><td>{}</td><td>{}</td>",
                        b.short_circuited, b.fallback, b.opened
                    )
                },
            ));
        }
        if fan_out {
            out.push_str(&s.fan_out.as_ref().map_or_else(
                || dashes(2),
                |f| {
                    format!(
                        "<td>{}</td><td>{}</td>",
                        f.sub_calls,
                        f.latency_ms.map_or_else(
                            || "–".to_string(),
                            |l| crate::report::charts::short(l.p99)
                        )
                    )
                },
            ));
        }
        out.push_str("</tr>\n");
    }
    out.push_str(
        "</tbody>\n</table>\n<p class=\"note\">attempts cancelled: attempts dropped because \
         another attempt of their call decided it first (hedge races, commits). \
         short-circuited: calls (or attempts, below a retry layer) an open breaker refused. \
         Sub-calls: a fan-out's backend calls; a call waits for the slowest it needs.</p>\n",
    );
    Some(out)
}

/// Calls by final status: one column per status any strategy saw, OK first.
pub fn statuses(doc: &ResultsDoc) -> String {
    let strategies = &doc.results.strategies;
    // Linear in the keys (a set says what is seen); results files bound them
    // (`results::bounds`).
    let mut codes: Vec<&str> = vec!["OK"];
    let mut seen: std::collections::HashSet<&str> = codes.iter().copied().collect();
    for s in strategies {
        for k in s.status.keys() {
            if seen.insert(k.as_str()) {
                codes.push(k);
            }
        }
    }
    let mut out = String::from("<table>\n<thead><tr><th class=\"name\">strategy</th>");
    for code in &codes {
        out.push_str(&format!("<th>{}</th>", esc(code)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (i, s) in strategies.iter().enumerate() {
        out.push_str(&format!("<tr>{}", name_cell(&s.name, &palette::css(i))));
        for code in &codes {
            let n = s.status.get(*code).copied().unwrap_or(0);
            out.push_str(&format!("<td>{n}</td>"));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_marks_ties_and_skips_uniform_columns() {
        let v = [Some(1.0), Some(2.0), Some(1.0), None];
        assert_eq!(best(Better::Lower, &v), [true, false, true, false]);
        assert_eq!(best(Better::Higher, &v), [false, true, false, false]);
        assert_eq!(best(Better::Lower, &[Some(3.0), Some(3.0)]), [false, false]);
        assert_eq!(best(Better::Lower, &[Some(3.0)]), [false]);
        assert_eq!(best(Better::Neither, &v), [false; 4]);
    }
}
