//! The verdict sentence: which strategy to ship, why, and at what cost, against the
//! profile's first strategy (see the module doc of [`super`] for the rule that picks it).
//!
//! Every number in it is the results' own, and it states none the run did not measure: when
//! nothing succeeded it says so and recommends nothing; when backend figures are missing for
//! some strategy (a target that could not report them, a lost or restarted backend), cost is
//! counted in the attempts the client sent, and the sentence says which figures are missing;
//! duplicate side effects unknown for a strategy are not taken for none.

use std::cmp::Ordering;

use super::phrases::{cut_words, ms, one_decimal, pct, possessive};
use crate::document::ResultsDoc;
use crate::noise::Pair;
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

/// What a strategy's cost is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// Attempts the backend received per call: every strategy has them.
    Backend,
    /// Attempts the client sent per call: some strategy's backend figures are missing.
    Client,
}

impl Load {
    fn of(strategies: &[StrategyResult]) -> Load {
        let whole =
            |s: &StrategyResult| s.backend_gap.is_none() && s.amplification.backend.is_some();
        if strategies.iter().all(whole) {
            Load::Backend
        } else {
            Load::Client
        }
    }

    fn cost(self, s: &StrategyResult) -> f64 {
        match self {
            Load::Backend => s.amplification.backend.unwrap_or(s.amplification.client),
            Load::Client => s.amplification.client,
        }
    }

    /// "for 5.9% more backend load than R", "with 40% fewer attempts per call", "at the same
    /// backend load as R" (`than`: R, or nothing when the sentence named it already).
    fn words(self, chosen: f64, reference: f64, than: Option<&str>) -> Option<String> {
        if reference <= 0.0 || !reference.is_finite() || !chosen.is_finite() {
            return None;
        }
        let d = chosen / reference - 1.0;
        let (what, less) = match self {
            Load::Backend => ("backend load", "less"),
            Load::Client => ("attempts per call", "fewer"),
        };
        let (than, r#as) = match than {
            Some(r) => (format!(" than {r}"), format!(" as {r}")),
            None => (String::new(), String::new()),
        };
        Some(if d.abs() < 0.005 {
            format!("at the same {what}{as}", r#as = r#as)
        } else if d > 0.0 {
            format!("for {}% more {what}{than}", one_decimal(d * 100.0))
        } else {
            format!("with {}% {less} {what}{than}", one_decimal(-d * 100.0))
        })
    }
}

/// Calls that succeeded ÷ calls offered; `None` for a strategy offered no call.
fn rate(s: &StrategyResult) -> Option<f64> {
    (s.counts.offered > 0).then(|| s.counts.succeeded as f64 / s.counts.offered as f64)
}

/// Duplicate side effects, when the backend's figures are whole (unknown is not none).
fn duplicates(s: &StrategyResult) -> Option<u64> {
    s.backend
        .as_ref()
        .filter(|_| s.backend_gap.is_none())
        .map(|b| b.duplicate_side_effects)
}

/// The tail the verdict reads: p99.9 of successful calls when every strategy that succeeded
/// has enough of them, else p99.
fn tail_figure(strategies: &[StrategyResult]) -> (&'static str, &'static str) {
    let enough = strategies
        .iter()
        .filter_map(|s| s.latency_ms.e2e_ok)
        .all(|l| l.count >= P999_CALLS);
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

/// Cheaper first, then the shorter tail (a missing tail last).
fn by_cost_then_tail<'a>(
    strategies: &'a [StrategyResult],
    load: Load,
    figure: &'a str,
) -> impl Fn(&usize, &usize) -> Ordering + 'a {
    move |a, b| {
        let (sa, sb) = (&strategies[*a], &strategies[*b]);
        let t = |s| tail(s, figure).unwrap_or(f64::INFINITY);
        load.cost(sa)
            .total_cmp(&load.cost(sb))
            .then(t(sa).total_cmp(&t(sb)))
    }
}

/// The verdict of a run: the strategy it names, and the sentence. Nothing with fewer than two
/// strategies; no strategy named when none succeeded.
pub(super) fn verdict(doc: &ResultsDoc, contenders: &[bool]) -> (Option<usize>, Option<String>) {
    let strategies = &doc.results.strategies;
    if strategies.len() < 2 {
        return (None, None);
    }
    if strategies.iter().all(|s| s.counts.succeeded == 0) {
        let offered: u64 = strategies.iter().map(|s| s.counts.offered).sum();
        let text = if offered == 0 {
            "No strategy was offered a call: there is nothing to judge.".to_string()
        } else {
            format!(
                "No strategy succeeded: all {} strategies failed every call, so none is \
                 recommended.",
                strategies.len()
            )
        };
        return (None, Some(text));
    }
    let load = Load::of(strategies);
    let (figure, label) = tail_figure(strategies);
    let Some(choice) = choose(strategies, contenders, load, figure) else {
        return (None, None);
    };
    let Some(reference) = strategies.iter().position(|s| s.counts.offered > 0) else {
        return (None, None);
    };
    let mut text = if choice == reference {
        reference_wins(strategies, contenders, reference, load, (figure, label))
    } else {
        sentence(strategies, choice, reference, load, (figure, label))
    };
    if load == Load::Client {
        let missing: Vec<&str> = strategies
            .iter()
            .filter(|s| s.backend_gap.is_some() || s.amplification.backend.is_none())
            .map(|s| s.name.as_str())
            .collect();
        text.push_str(&format!(
            " (Cost counted in attempts sent: no backend figures for {}.)",
            missing.join(", ")
        ));
    }
    (Some(choice), Some(text))
}

/// The strategy the verdict names: see the module doc of [`super`].
fn choose(
    strategies: &[StrategyResult],
    contenders: &[bool],
    load: Load,
    figure: &str,
) -> Option<usize> {
    let mut pool: Vec<usize> = (0..strategies.len())
        .filter(|i| contenders[*i] && strategies[*i].counts.succeeded > 0)
        .collect();
    // Where any strategy ran side effects twice, only those known to have run the fewest can be
    // named: a strategy whose backend figures are missing may have run them too.
    if strategies
        .iter()
        .any(|s| duplicates(s).is_some_and(|d| d > 0))
    {
        let fewest = pool
            .iter()
            .filter_map(|i| duplicates(&strategies[*i]))
            .min()?;
        pool.retain(|i| duplicates(&strategies[*i]) == Some(fewest));
    }
    let best_tail = pool
        .iter()
        .filter_map(|i| tail(&strategies[*i], figure))
        .fold(f64::INFINITY, f64::min);
    pool.into_iter()
        .filter(|i| tail(&strategies[*i], figure).is_none_or(|t| t <= TAIL_SLACK * best_tail))
        .min_by(by_cost_then_tail(strategies, load, figure))
}

/// The verdict sentence for `choice`, against `reference` (the profile's first strategy).
fn sentence(
    strategies: &[StrategyResult],
    choice: usize,
    reference: usize,
    load: Load,
    (figure, label): (&str, &str),
) -> String {
    let (c, r) = (&strategies[choice], &strategies[reference]);
    let pair = Pair::same_run(r, c);
    let mut gains: Vec<String> = Vec::new();
    let mut trades: Vec<String> = Vec::new();
    if let (Some(sc), Some(sr)) = (rate(c), rate(r))
        && pair.differs("success_rate", sr, sc, 1) == Some(true)
    {
        if sc > sr {
            gains.push(format!("raises success from {} to {}", pct(sr), pct(sc)));
        } else {
            trades.push(format!("a success of {} instead of {}", pct(sc), pct(sr)));
        }
    }
    if let (Some(tc), Some(tr)) = (tail(c, figure), tail(r, figure))
        && pair.differs(figure, tr, tc, 1) != Some(false)
    {
        if tc < tr / 1.1 {
            gains.push(format!(
                "cuts {label} {} ({} → {} ms)",
                cut_words(tr, tc),
                ms(tr),
                ms(tc)
            ));
        } else if tc > tr * 1.1 {
            trades.push(format!("a {label} of {} ms instead of {}", ms(tc), ms(tr)));
        }
    }
    let dups = match strategies
        .iter()
        .filter_map(|s| Some((s, duplicates(s)?)))
        .filter(|(_, d)| *d > 0)
        .max_by_key(|(_, d)| *d)
    {
        Some((w, n)) if duplicates(c) == Some(0) => {
            format!(" with no duplicate side effects ({} had {n})", w.name)
        }
        _ => String::new(),
    };
    let trade = if trades.is_empty() {
        String::new()
    } else {
        format!(", for {}", trades.join(" and "))
    };
    let (cost_c, cost_r) = (load.cost(c), load.cost(r));
    if gains.is_empty() {
        let head = if trades.is_empty() {
            format!(
                "{} matches {} success and {label}",
                c.name,
                possessive(&r.name)
            )
        } else {
            format!("{} keeps {} success", c.name, possessive(&r.name))
        };
        return match load.words(cost_c, cost_r, None) {
            Some(l) => format!("{head}{dups} {l}{trade}."),
            None => format!("{head}{dups}{trade}."),
        };
    }
    let gains = gains.join(" and ");
    match load.words(cost_c, cost_r, Some(&r.name)) {
        Some(l) => format!("{} {gains}{dups} {l}{trade}.", c.name),
        None => format!("{} {gains} against {}{dups}{trade}.", c.name, r.name),
    }
}

/// The verdict when the first strategy is the answer: what the others would trade.
fn reference_wins(
    strategies: &[StrategyResult],
    contenders: &[bool],
    reference: usize,
    load: Load,
    (figure, label): (&str, &str),
) -> String {
    let r = &strategies[reference];
    let rate_text = |s: &StrategyResult| rate(s).map_or("no call".into(), pct);
    let all_out = (0..strategies.len())
        .filter(|i| *i != reference)
        .all(|i| !contenders[i]);
    let mut head = if all_out {
        format!("{} keeps the most calls ({})", r.name, rate_text(r))
    } else {
        format!("{} has the best success ({})", r.name, rate_text(r))
    };
    if let (false, Some(t)) = (all_out, tail(r, figure)) {
        let what = match load {
            Load::Backend => "backend load",
            Load::Client => "attempts per call",
        };
        head.push_str(&format!(" and {label} ({} ms) for its {what}", ms(t)));
    }
    // Of the strategies that cost less, the one that keeps the most calls.
    let cheaper = (0..strategies.len())
        .filter(|i| *i != reference && strategies[*i].counts.offered > 0)
        .filter(|i| load.cost(&strategies[*i]) < load.cost(r) * 0.995)
        .max_by(|a, b| {
            let (sa, sb) = (&strategies[*a], &strategies[*b]);
            rate(sa)
                .unwrap_or(0.0)
                .total_cmp(&rate(sb).unwrap_or(0.0))
                .then(load.cost(sb).total_cmp(&load.cost(sa)))
        });
    let trade = match cheaper {
        Some(i) if load.cost(r) > 0.0 => {
            let o = &strategies[i];
            // What it pays: calls, if it is out of the running; else its tail.
            let price = match tail(o, figure) {
                Some(t) if contenders[i] => format!("its {label} is {} ms", ms(t)),
                _ => format!("succeeds on {}", rate_text(o)),
            };
            let saved = one_decimal((1.0 - load.cost(o) / load.cost(r)) * 100.0);
            let what = match load {
                Load::Backend => format!("sends {saved}% less load to the backend"),
                Load::Client => format!("makes {saved}% fewer attempts per call"),
            };
            format!("; {} {what} but {price}", o.name)
        }
        _ => String::new(),
    };
    format!("{head}{trade}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_in_words() {
        let (b, r) = (Load::Backend, Some("R"));
        let w = |c, x, r| b.words(c, x, r).unwrap();
        assert_eq!(w(1.059, 1.0, r), "for 5.9% more backend load than R");
        assert_eq!(w(0.6, 1.0, r), "with 40% less backend load than R");
        assert_eq!(w(1.001, 1.0, r), "at the same backend load as R");
        assert_eq!(w(1.001, 1.0, None), "at the same backend load");
        let fewer = Load::Client.words(0.5, 1.0, None).unwrap();
        assert_eq!(fewer, "with 50% fewer attempts per call");
        assert_eq!(b.words(1.0, 0.0, r), None);
    }
}
