//! The verdict sentence: which strategy to ship, why, and at what cost, against the
//! profile's first strategy (see the module doc of [`super`] for the rule that picks it).
//! Every number in it is the results' own.

use crate::compare::noise;
use crate::document::ResultsDoc;
use crate::results::StrategyResult;

/// A cheaper strategy wins the verdict if its tail is within this factor of the best tail.
pub const TAIL_SLACK: f64 = 2.0;

/// Successful calls a strategy needs for its p99.9 to be the tail the verdict reads.
const P999_CALLS: u64 = 1000;

/// What the verdict must add when the run cannot be fully believed: a generator that fell
/// behind shaped the figures; an interrupted run measured only part of the plan.
pub(super) fn caveat(doc: &ResultsDoc) -> &'static str {
    let failed = crate::results::trust::failures(&doc.results);
    if failed
        .iter()
        .any(|t| t.rule != crate::results::trust::Rule::Partial)
    {
        " (But the generator fell behind its schedule: these figures are not to be trusted; \
         see the warnings.)"
    } else if !failed.is_empty() {
        " (Of an interrupted run: only what was measured before the stop.)"
    } else {
        ""
    }
}

/// The tail the verdict reads: p99.9 of successful calls when every strategy has enough of
/// them, else p99.
fn tail_figure(strategies: &[StrategyResult]) -> (&'static str, &'static str) {
    let enough = strategies
        .iter()
        .all(|s| s.latency_ms.e2e_ok.is_some_and(|l| l.count >= P999_CALLS));
    if enough {
        ("latency_ms.e2e_ok.p999", "p99.9")
    } else {
        ("latency_ms.e2e_ok.p99", "p99")
    }
}

fn tail(s: &StrategyResult, figure: &str) -> Option<f64> {
    let l = s.latency_ms.e2e_ok?;
    Some(if figure.ends_with("p999") {
        l.p999
    } else {
        l.p99
    })
}

fn cost(s: &StrategyResult) -> f64 {
    s.amplification.backend.unwrap_or(s.amplification.client)
}

/// What [`cost`] measures for these strategies, in words: what the backend received when it
/// reported it for both, else what the client sent (a target without the Control service
/// does not report what it received, and nothing is made up for it).
fn load_name(a: &StrategyResult, b: &StrategyResult) -> &'static str {
    if a.amplification.backend.is_some() && b.amplification.backend.is_some() {
        "backend load"
    } else {
        "load sent"
    }
}

fn duplicates(s: &StrategyResult) -> u64 {
    s.backend.as_ref().map_or(0, |b| b.duplicate_side_effects)
}

/// The strategy the verdict names: see the module doc.
pub(super) fn choose(doc: &ResultsDoc, contenders: &[bool]) -> Option<usize> {
    let strategies = &doc.results.strategies;
    if strategies.len() < 2 {
        return None;
    }
    let mut pool: Vec<usize> = (0..strategies.len()).filter(|i| contenders[*i]).collect();
    let fewest = pool.iter().map(|i| duplicates(&strategies[*i])).min()?;
    pool.retain(|i| duplicates(&strategies[*i]) == fewest);
    let (figure, _) = tail_figure(strategies);
    let best_tail = pool
        .iter()
        .filter_map(|i| tail(&strategies[*i], figure))
        .fold(f64::INFINITY, f64::min);
    pool.into_iter()
        .filter(|i| tail(&strategies[*i], figure).is_none_or(|t| t <= TAIL_SLACK * best_tail))
        .min_by(|a, b| {
            let (sa, sb) = (&strategies[*a], &strategies[*b]);
            cost(sa)
                .partial_cmp(&cost(sb))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(
                    tail(sa, figure)
                        .unwrap_or(f64::INFINITY)
                        .partial_cmp(&tail(sb, figure).unwrap_or(f64::INFINITY))
                        .unwrap_or(std::cmp::Ordering::Equal),
                )
        })
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.1}")
    } else {
        crate::table::short(v)
    }
}

/// "for 5.9% more backend load", "with 40% less backend load", "at the same backend load"
/// (`what` names the load), and the word that compares it with another ("than" or "as").
fn load_words(chosen: f64, reference: f64, what: &str) -> (String, &'static str) {
    if reference <= 0.0 {
        return (String::new(), "than");
    }
    let d = chosen / reference - 1.0;
    if d.abs() < 0.005 {
        (format!("at the same {what}"), "as")
    } else if d > 0.0 {
        (
            format!("for {}% more {what}", one_decimal(d * 100.0)),
            "than",
        )
    } else {
        (
            format!("with {}% less {what}", one_decimal(-d * 100.0)),
            "than",
        )
    }
}

fn one_decimal(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// How much lower `to` is than `from`: "31x" or "by 35%".
fn cut_words(from: f64, to: f64) -> String {
    let r = from / to;
    if r >= 2.0 {
        format!("{r:.0}x")
    } else {
        format!("by {:.0}%", (1.0 - to / from) * 100.0)
    }
}

/// The verdict sentence for `choice`, against the profile's first strategy.
pub(super) fn sentence(doc: &ResultsDoc, contenders: &[bool], choice: usize) -> Option<String> {
    let strategies = &doc.results.strategies;
    let (figure, label) = tail_figure(strategies);
    let (c, r) = (&strategies[choice], &strategies[0]);
    let rate = |s: &StrategyResult| s.counts.succeeded as f64 / s.counts.offered.max(1) as f64;
    if choice == 0 {
        return Some(reference_wins(strategies, contenders, figure, label));
    }
    let mut gains: Vec<String> = Vec::new();
    let (sc, sr) = (rate(c), rate(r));
    if sc > sr && noise::proportions_differ(sr, r.counts.offered, sc, c.counts.offered) {
        gains.push(format!("raises success from {} to {}", pct(sr), pct(sc)));
    }
    if let (Some(tc), Some(tr)) = (tail(c, figure), tail(r, figure)) {
        let real = noise::beyond_noise(figure, r, c, tr, tc).unwrap_or(true);
        if tc < tr / 1.1 && real {
            gains.push(format!(
                "cuts {label} {} ({} → {} ms)",
                cut_words(tr, tc),
                ms(tr),
                ms(tc)
            ));
        }
    }
    let worst_dups = strategies
        .iter()
        .filter(|s| duplicates(s) > 0)
        .max_by_key(|s| duplicates(s));
    let dups = match worst_dups {
        Some(w) if duplicates(c) == 0 => format!(
            " with no duplicate side effects ({} had {})",
            w.name,
            duplicates(w)
        ),
        _ => String::new(),
    };
    let (load, than) = load_words(cost(c), cost(r), load_name(c, r));
    if gains.is_empty() {
        return Some(format!(
            "{} matches {}'s success and {label}{dups} {load}.",
            c.name, r.name
        ));
    }
    Some(format!(
        "{} {}{dups} {load} {than} {}.",
        c.name,
        gains.join(" and "),
        r.name
    ))
}

/// The verdict when the first strategy is the answer: what the others would trade.
fn reference_wins(
    strategies: &[StrategyResult],
    contenders: &[bool],
    figure: &str,
    label: &str,
) -> String {
    let r = &strategies[0];
    let rate = |s: &StrategyResult| s.counts.succeeded as f64 / s.counts.offered.max(1) as f64;
    let others: Vec<usize> = (1..strategies.len()).collect();
    let all_out = others.iter().all(|i| !contenders[*i]);
    let what = if strategies.iter().all(|s| s.amplification.backend.is_some()) {
        "backend load"
    } else {
        "load sent"
    };
    let head = if all_out {
        format!("{} keeps the most calls ({})", r.name, pct(rate(r)))
    } else {
        format!(
            "{} has the best success ({}) and {label} ({} ms) for its {what}",
            r.name,
            pct(rate(r)),
            tail(r, figure).map_or("–".into(), ms)
        )
    };
    // Of the strategies that cost the backend less, the one that keeps the most calls.
    let cheapest = others
        .iter()
        .copied()
        .filter(|i| cost(&strategies[*i]) < cost(r) * 0.995)
        .max_by(|a, b| {
            let (sa, sb) = (&strategies[*a], &strategies[*b]);
            rate(sa)
                .partial_cmp(&rate(sb))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(
                    cost(sb)
                        .partial_cmp(&cost(sa))
                        .unwrap_or(std::cmp::Ordering::Equal),
                )
        });
    let trade = match cheapest {
        Some(i) => {
            let o = &strategies[i];
            // What it pays: calls, if it is out of the running; else its tail.
            let price = if contenders[i] {
                format!(
                    "its {label} is {} ms",
                    tail(o, figure).map_or("–".into(), ms)
                )
            } else {
                format!("succeeds on {}", pct(rate(o)))
            };
            format!(
                "; {} sends {}% less load to the backend but {price}",
                o.name,
                one_decimal((1.0 - cost(o) / cost(r)) * 100.0),
            )
        }
        None => String::new(),
    };
    format!("{head}{trade}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_cuts_and_load() {
        assert_eq!(cut_words(200.1, 6.42), "31x");
        assert_eq!(cut_words(100.0, 65.0), "by 35%");
        let b = "backend load";
        assert_eq!(load_words(1.059, 1.0, b).0, "for 5.9% more backend load");
        assert_eq!(load_words(0.6, 1.0, b).0, "with 40% less backend load");
        assert_eq!(
            load_words(1.001, 1.0, b),
            ("at the same backend load".to_string(), "as")
        );
        assert_eq!(load_words(1.2, 1.0, "load sent").1, "than");
    }
}
