//! The verdict: one sentence, then the strategies side by side, the best value of each column
//! marked among the strategies in the running ([`crate::answer`]).
//!
//! This is what a reader comes for, so it comes first. The figures are the headline figures
//! ([`crate::headline`]), read by name from results.json; a column a run has no value for
//! shows `–`. "Best" is the highest success and goodput, the lowest latency, amplification,
//! duplicates and wasted work; ties are all marked, and a column where every strategy is
//! equal marks none.

use super::html::{esc, name_cell};
use super::palette;
use crate::answer::{Answer, answer};
use crate::document::ResultsDoc;

/// The verdict: the sentence, then the table.
pub fn table(doc: &ResultsDoc) -> String {
    let a = answer(doc);
    let mut out = String::new();
    if let Some(sentence) = &a.sentence {
        out.push_str(&format!(
            "<p class=\"answer\" id=\"answer\">{}</p>\n",
            esc(sentence)
        ));
    }
    out.push_str("<div class=\"wide\">\n");
    out.push_str(&grid(doc, &a));
    out.push_str("</div>\n");
    let out_of_running: Vec<&str> = doc
        .results
        .strategies
        .iter()
        .zip(&a.contenders)
        .filter(|(_, ok)| !**ok)
        .map(|(s, _)| s.name.as_str())
        .collect();
    let running = if out_of_running.is_empty() {
        String::new()
    } else {
        format!(
            " Not in the running (success below the best's, beyond sampling noise, and below \
             the gate's limit if any): {}; they get no ★ but in success.",
            esc(&out_of_running.join(", "))
        )
    };
    out.push_str(&format!(
        "<p class=\"note\">★ best in its column among the strategies in the running (success: \
         among all).{running} Latency columns are of <em>successful</em> calls, from their \
         intended start (a strategy that fails fast must not look fast: failures count in \
         <em>success</em>). Goodput: calls that succeeded within their deadline, per second. \
         Attempts/call: attempts the client sent ÷ calls sent; backend amp: attempts the \
         backend received ÷ calls sent. Other columns appear where strategies differ: load in \
         phases is attempts ÷ calls offered during the profile's phases; recovered after: \
         seconds from the last phase's end until every second's success is back to 90% of \
         its level before the first.{}</p>\n",
        crate::results::trust::backend_unknown(&doc.results.strategies)
            .map(|u| format!(" {}", esc(&u)))
            .unwrap_or_default()
    ));
    out
}

fn grid(doc: &ResultsDoc, a: &Answer) -> String {
    let mut out =
        String::from("<table class=\"verdict\">\n<thead><tr><th class=\"name\">strategy</th>");
    for c in &a.columns {
        out.push_str(&format!("<th>{}</th>", esc(&c.label)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (i, s) in doc.results.strategies.iter().enumerate() {
        let class = if a.choice == Some(i) {
            " class=\"choice\""
        } else if !a.contenders.get(i).copied().unwrap_or(true) {
            " class=\"out\""
        } else {
            ""
        };
        out.push_str(&format!("<tr{class}>"));
        out.push_str(&name_cell(&s.name, &palette::css(i)));
        for c in &a.columns {
            let text = esc(c.cells.get(i).map_or("–", String::as_str));
            if c.stars.get(i).copied().unwrap_or(false) {
                out.push_str(&format!(
                    "<td class=\"best\" title=\"best\">{text}&nbsp;★</td>"
                ));
            } else {
                out.push_str(&format!("<td>{text}</td>"));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// Counts behind the verdict: what happened to the calls, and what the backend saw.
pub fn details(doc: &ResultsDoc) -> String {
    let mut out = String::from(
        "<table>\n<thead><tr><th class=\"name\">strategy</th><th>offered</th><th>succeeded</th>\
         <th>failed</th><th>dropped</th><th>attempts</th><th>retries</th><th>hedges</th>\
         <th>backend received</th><th>executed</th><th>rejected</th><th>queue max</th>",
    );
    let streams = doc.results.strategies.iter().any(|s| s.stream.is_some());
    if streams {
        out.push_str("<th>failed after commit</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (i, s) in doc.results.strategies.iter().enumerate() {
        let c = &s.counts;
        let b = s.backend.as_ref();
        let opt = |v: Option<u64>| v.map_or("–".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "<tr>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
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
        if streams {
            out.push_str(&format!(
                "<td>{}</td>",
                opt(s.stream.map(|f| f.failed_after_commit))
            ));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    if let Some(unknown) = crate::results::trust::backend_unknown(&doc.results.strategies) {
        out.push_str(&format!("<p class=\"note\">{}</p>\n", esc(&unknown)));
    }
    if streams {
        out.push_str(
            "<p class=\"note\">failed after commit: streams that failed after their first \
             message; gRPC's commit rule (gRFC A6) forbids retrying or hedging them, so no \
             strategy can save them.</p>\n",
        );
    }
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
