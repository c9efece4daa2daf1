//! The recommendation: the cheapest point that meets the goal, how far the runner-up is, and,
//! when no point meets it, the one that comes closest and the limits it misses.
//!
//! *Cheapest* is the lowest cost ([`cost`]: backend amplification, the extra load a strategy
//! puts on the backend; ties go to the lower p99, then the higher success, then the lower
//! point number). A candidate meets the goal when every limit that applies to its strategy
//! holds on its figures (a figure not measured does not hold, as in `check`) and its run can
//! be trusted, unless the goal (a gate) allows untrustworthy runs. Interrupted points are not
//! considered. *Closest* is the candidate that misses the fewest limits, and among those the
//! one whose misses add up to the smallest share of their bounds.

use serde::{Deserialize, Serialize};

use super::figures::Candidate;
use super::goal::Goal;

/// A point and strategy the verdict names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The point's number.
    pub point: usize,
    /// The strategy.
    pub strategy: String,
    /// The point's settings in words.
    pub settings: String,
    /// Its cost ([`cost`]).
    pub cost: Option<f64>,
    /// `latency_ms.e2e.p99`, failures counted.
    pub p99: Option<f64>,
    /// `success_rate`.
    pub success: Option<f64>,
    /// The conditions it misses, with its values (empty when it meets the goal).
    pub missed: Vec<String>,
}

/// The recommendation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The goal's conditions, in words (empty: no goal).
    pub goal: Vec<String>,
    /// Candidates considered (finished points × strategies).
    pub considered: usize,
    /// Of those, how many meet the goal.
    pub meeting: usize,
    /// The cheapest that meets it.
    pub best: Option<Choice>,
    /// The next cheapest that meets it.
    pub runner_up: Option<Choice>,
    /// When none meets it: the closest.
    pub closest: Option<Choice>,
    /// The verdict in sentences.
    pub words: Vec<String>,
}

/// One candidate as the verdict sees it.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The point's number.
    pub point: usize,
    /// The point's settings in words.
    pub settings: &'a str,
    /// The point's run had warnings (its figures may not be trusted).
    pub warnings: Option<&'a str>,
    /// The strategy's figures.
    pub candidate: &'a Candidate,
}

/// A candidate's cost: backend amplification, or the client's when the backend's is unknown.
pub fn cost(c: &Candidate) -> Option<f64> {
    c.get("amplification.backend")
        .or_else(|| c.get("amplification.client"))
}

/// The conditions `entry` misses, with their values, and how far off it is in all.
fn misses(goal: &Goal, allow_untrusted: bool, entry: &Entry<'_>) -> (Vec<String>, f64) {
    let mut missed = Vec::new();
    let mut distance = 0.0;
    for (figure, limit) in goal.limits_for(&entry.candidate.strategy) {
        match entry.candidate.get(figure) {
            Some(v) if limit.op.holds(v, limit.bound) => {}
            Some(v) => {
                let shown = if limit.percent {
                    format!("{:.2}%", v * 100.0)
                } else {
                    crate::table::short(v)
                };
                missed.push(format!("{figure} {limit} (got {shown})"));
                distance += (v - limit.bound).abs() / limit.bound.abs().max(1e-12);
            }
            None => {
                missed.push(format!("{figure} {limit} (not measured)"));
                distance += 1e12;
            }
        }
    }
    if let (Some(w), false) = (entry.warnings, allow_untrusted) {
        missed.push(format!("a run that can be trusted ({w})"));
        distance += 1e6;
    }
    (missed, distance)
}

/// Whether `entry` meets `goal`.
pub fn meets(goal: &Goal, entry: &Entry<'_>) -> bool {
    misses(goal, goal.gate.allow_untrusted, entry).0.is_empty()
}

fn choice(entry: &Entry<'_>, missed: Vec<String>) -> Choice {
    let c = entry.candidate;
    Choice {
        point: entry.point,
        strategy: c.strategy.clone(),
        settings: entry.settings.to_string(),
        cost: cost(c),
        p99: c.get("latency_ms.e2e.p99"),
        success: c.get("success_rate"),
        missed,
    }
}

fn cmp_num(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    a.unwrap_or(f64::INFINITY)
        .total_cmp(&b.unwrap_or(f64::INFINITY))
}

/// The verdict on `entries` (finished points only) for `goal`; `named` says whether labels
/// name the strategy (a sweep of several).
pub fn verdict(entries: &[Entry<'_>], goal: Option<&Goal>, named: bool) -> Verdict {
    let Some(goal) = goal else {
        return Verdict {
            considered: entries.len(),
            words: vec![
                "No goal was given, so there is no recommendation: add --goal (like \
                 \"latency_ms.e2e.p99 <= 50\" \"success_rate >= 99.9%\") or a [gate] with \
                 limits to the profile. The frontier below shows the trade-off."
                    .into(),
            ],
            ..Verdict::default()
        };
    };
    let mut judged: Vec<(Choice, f64)> = entries
        .iter()
        .map(|e| {
            let (missed, distance) = misses(goal, goal.gate.allow_untrusted, e);
            (choice(e, missed), distance)
        })
        .collect();
    let by_cost = |a: &Choice, b: &Choice| {
        cmp_num(a.cost, b.cost)
            .then(cmp_num(a.p99, b.p99))
            .then(
                b.success
                    .unwrap_or(f64::NEG_INFINITY)
                    .total_cmp(&a.success.unwrap_or(f64::NEG_INFINITY)),
            )
            .then(a.point.cmp(&b.point))
    };
    let mut meeting: Vec<Choice> = judged
        .iter()
        .filter(|(c, _)| c.missed.is_empty())
        .map(|(c, _)| c.clone())
        .collect();
    meeting.sort_by(by_cost);
    let mut v = Verdict {
        goal: goal.words(),
        considered: entries.len(),
        meeting: meeting.len(),
        ..Verdict::default()
    };
    let label = |c: &Choice| {
        let who = if named {
            format!(" [{}]", c.strategy)
        } else {
            String::new()
        };
        format!("point {} ({}){who}", c.point, c.settings)
    };
    let goal_words = format!("{} (from {})", v.goal.join(", "), goal.source);
    if let Some(best) = meeting.first() {
        v.words.push(format!(
            "Recommended: {}: the cheapest of the {} of {} candidates that meet {goal_words}, \
             at a cost of {} ({}).",
            label(best),
            meeting.len(),
            entries.len(),
            amp(best.cost),
            figures(best)
        ));
        if let Some(next) = meeting.get(1) {
            let extra = match (best.cost, next.cost) {
                (Some(a), Some(b)) if a > 0.0 => {
                    format!(", {:+.4} ({:+.2}%)", b - a, (b / a - 1.0) * 100.0)
                }
                _ => String::new(),
            };
            v.words.push(format!(
                "Runner-up: {}, at a cost of {}{extra} ({}).",
                label(next),
                amp(next.cost),
                figures(next)
            ));
        } else {
            v.words
                .push("No other candidate meets the goal: there is no runner-up.".into());
        }
        v.best = Some(best.clone());
        v.runner_up = meeting.get(1).cloned();
    } else if entries.is_empty() {
        v.words
            .push("No point finished, so there is nothing to recommend.".into());
    } else {
        judged.sort_by(|(a, da), (b, db)| {
            a.missed
                .len()
                .cmp(&b.missed.len())
                .then(da.total_cmp(db))
                .then(by_cost(a, b))
        });
        let (closest, _) = judged.swap_remove(0);
        v.words.push(format!(
            "No candidate meets {goal_words}. The closest is {}, which misses {} ({}).",
            label(&closest),
            closest.missed.join("; "),
            figures(&closest)
        ));
        v.closest = Some(closest);
    }
    v
}

fn amp(v: Option<f64>) -> String {
    v.map_or("unknown".into(), |v| format!("{v:.3}× backend load"))
}

fn figures(c: &Choice) -> String {
    let p99 = c
        .p99
        .map_or("–".into(), |v| format!("{} ms", crate::table::short(v)));
    let success = c
        .success
        .map_or("–".into(), |v| format!("{:.2}%", v * 100.0));
    format!("p99 {p99}, success {success}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choose::figures::Stretch;

    fn cand(p99: f64, cost: f64, success: f64) -> Candidate {
        Candidate {
            strategy: "s".into(),
            figures: [
                ("latency_ms.e2e.p99", Some(p99)),
                ("amplification.backend", Some(cost)),
                ("success_rate", Some(success)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            stretch: Stretch {
                before: None,
                after: None,
                recovered: None,
                collapsed: false,
            },
        }
    }

    fn goal(conditions: &[&str]) -> Goal {
        let c: Vec<String> = conditions.iter().map(|s| s.to_string()).collect();
        Goal::from_conditions("--goal", &c).unwrap()
    }

    #[test]
    fn the_cheapest_that_meets_the_goal_and_the_runner_up() {
        let cands = [
            cand(40.0, 1.0, 0.95),   // 0: cheapest, misses success
            cand(60.0, 1.2, 0.9991), // 1: meets
            cand(45.0, 1.1, 0.9995), // 2: meets, cheaper than 1
            cand(30.0, 2.0, 1.0),    // 3: meets, dearest
        ];
        let entries: Vec<Entry<'_>> = cands
            .iter()
            .enumerate()
            .map(|(i, c)| Entry {
                point: i,
                settings: "x = 1",
                warnings: None,
                candidate: c,
            })
            .collect();
        let g = goal(&["success_rate >= 99.9%", "latency_ms.e2e.p99 <= 100"]);
        let v = verdict(&entries, Some(&g), false);
        assert_eq!(v.best.as_ref().map(|c| c.point), Some(2));
        assert_eq!(v.runner_up.as_ref().map(|c| c.point), Some(1));
        assert_eq!(v.meeting, 3);
        assert!(
            v.words[0].starts_with("Recommended: point 2 (x = 1)"),
            "{:?}",
            v.words
        );
        assert!(v.words[1].contains("+0.1000 (+9.09%)"), "{:?}", v.words);
        // Nothing meets a tighter goal: the closest misses one limit by the least.
        let g = goal(&["success_rate >= 99.99%", "latency_ms.e2e.p99 <= 25"]);
        let v = verdict(&entries, Some(&g), false);
        assert!(v.best.is_none());
        let closest = v.closest.unwrap();
        assert_eq!(closest.point, 3, "misses only the p99 limit, by 5 ms");
        assert_eq!(closest.missed, ["latency_ms.e2e.p99 <= 25 (got 30)"]);
        // An untrusted run meets nothing unless the goal allows it.
        let warned = Entry {
            warnings: Some("generator lag"),
            ..entries[2]
        };
        let v = verdict(&[warned], Some(&goal(&["success_rate >= 90%"])), false);
        assert!(v.best.is_none() && v.closest.unwrap().missed[0].contains("trusted"));
        assert!(verdict(&entries, None, false).words[0].contains("No goal"));
    }
}
