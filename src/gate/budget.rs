//! One regression budget checked against the baseline: `+10%` of the baseline's value, and
//! for a noise-aware budget, only a move that sampling noise cannot explain fails
//! ([`crate::noise`]).

use super::evaluate::{Check, Kind, Named, pass_if};
use super::output::show;
use crate::figure::{self, Resolved};
use crate::profile::gate::condition::{Budget, Direction};

/// What a budget check needs to know about its figure.
pub(super) struct Figure<'a> {
    /// The strategy.
    pub strategy: &'a str,
    /// The figure's name.
    pub name: &'a str,
    /// Its value in the run.
    pub got: Resolved,
    /// Whether the check is noise-aware (the budget says so, or the gate does).
    pub noisy: bool,
    /// The noise-aware checks judged together ([`crate::noise`]'s family).
    pub family: usize,
}

/// The check of `budget` on `figure`, against `base`, for `run`.
pub(super) fn check(budget: &Budget, figure: Figure<'_>, run: Named<'_>, base: Named<'_>) -> Check {
    let Figure {
        strategy,
        name,
        got,
        noisy,
        family,
    } = figure;
    let mut value = show(got.value(), false);
    // An older baseline may lack a figure newer builds write: that fails the check
    // (refresh the baseline), it does not stop the gate.
    let was = match base.doc.strategy_json(strategy) {
        None => Err("strategy not in the baseline"),
        Some(j) => match figure::resolve(j, name) {
            Ok(Resolved::Value(b)) => Ok(b),
            Ok(Resolved::NotMeasured) => Err("not measured in the baseline"),
            Err(_) => Err("the baseline has no such figure"),
        },
    };
    let (limit, ok) = match was {
        // Nothing to measure in either run (no successful call to take a p99 of, before and
        // after): nothing moved. A limit on success says whether that is acceptable.
        Err(why @ "not measured in the baseline") if got == Resolved::NotMeasured => {
            value.push_str(" (nor in the baseline)");
            (format!("{budget} of baseline ({why})"), true)
        }
        Err(why) => (format!("{budget} of baseline ({why})"), false),
        Ok(b) => {
            let op = match budget.direction {
                Direction::Grow => "<=",
                Direction::Fall => ">=",
            };
            let mut ok = got.value().is_some_and(|v| budget.holds(v, b));
            if !ok
                && noisy
                && let Some(v) = got.value()
            {
                let pair = (
                    base.doc
                        .results
                        .strategies
                        .iter()
                        .find(|s| s.name == strategy),
                    run.doc
                        .results
                        .strategies
                        .iter()
                        .find(|s| s.name == strategy),
                );
                let real = match pair {
                    (Some(sb), Some(sr)) => crate::noise::Pair::new(sb, sr)
                        .differs(name, b, v, family)
                        .unwrap_or(true),
                    _ => true,
                };
                if !real {
                    ok = true;
                    value.push_str(" (within noise)");
                }
            }
            let noise = if noisy && !budget.beyond_noise {
                " beyond noise"
            } else {
                ""
            };
            (
                format!(
                    "{budget}{noise} of baseline {} = {op} {}",
                    show(Some(b), false),
                    show(Some(budget.bound(b)), false)
                ),
                ok,
            )
        }
    };
    Check {
        kind: Kind::Budget,
        strategy: strategy.into(),
        figure: name.into(),
        limit,
        value,
        outcome: pass_if(ok),
    }
}
