//! The trade-off frontier: the points no other point beats on tail latency, cost and success
//! at once (Pareto-optimal).
//!
//! Every (point, strategy) of a sweep is a candidate with three figures: a tail latency of all
//! calls, failures counted (`latency_ms.e2e.p99` or `p999`; lower is better), a cost (backend
//! amplification, the load the strategy adds to a backend already in trouble; lower is
//! better) and success (`success_rate`; higher is better). A candidate is *dominated* when
//! another is at least as good on all three and better on one; the frontier is every
//! candidate that is not. Success is part of the comparison because a strategy that fails
//! fast is cheap and quick: without it, giving up at once would dominate every retry. Ties
//! (candidates equal on all three) dominate neither each other, so all are kept. Candidates
//! with a figure not measured are left out.
//!
//! The computation sorts by cost and keeps a staircase of the best success at each latency
//! seen so far (a 3-D skyline, O(n log n)), so a grid of 100,000 points is no slower to read
//! than to write.

use std::collections::BTreeMap;

/// A candidate's three figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Tail latency, lower is better.
    pub latency: f64,
    /// Cost, lower is better.
    pub cost: f64,
    /// Success, higher is better.
    pub success: f64,
}

/// Whether `a` dominates `b`.
pub fn dominates(a: &Scores, b: &Scores) -> bool {
    a.latency <= b.latency
        && a.cost <= b.cost
        && a.success >= b.success
        && (a.latency < b.latency || a.cost < b.cost || a.success > b.success)
}

/// Ordered key of a finite float (positive and negative zero alike).
fn key(v: f64) -> i64 {
    let bits = (v + 0.0).to_bits() as i64;
    if bits < 0 { bits ^ i64::MAX } else { bits }
}

/// Which of `items` are on the frontier (`None` items, not measured, never are).
pub fn pareto(items: &[Option<Scores>]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..items.len())
        .filter(|&i| {
            items[i].is_some_and(|s| {
                s.latency.is_finite() && s.cost.is_finite() && s.success.is_finite()
            })
        })
        .collect();
    let s = |i: usize| items[i].expect("filtered");
    order.sort_by(|&a, &b| {
        let (a, b) = (s(a), s(b));
        a.cost
            .total_cmp(&b.cost)
            .then(a.latency.total_cmp(&b.latency))
            .then(b.success.total_cmp(&a.success))
    });
    let mut on = vec![false; items.len()];
    // Latency → best success among candidates of strictly lower cost; success rises with
    // latency along it (a point with more latency and no more success is dropped).
    let mut stairs: BTreeMap<i64, f64> = BTreeMap::new();
    let mut group_start = 0;
    while group_start < order.len() {
        let cost = s(order[group_start]).cost;
        let group_end = order[group_start..]
            .iter()
            .position(|&i| s(i).cost != cost)
            .map_or(order.len(), |n| group_start + n);
        let group = &order[group_start..group_end];
        // Within the group (same cost), sorted by latency then success descending: beaten by
        // an earlier entry with lower latency and no less success, or with the same latency
        // and more success.
        let mut max_lower = f64::NEG_INFINITY;
        let mut run: Option<(f64, f64)> = None;
        for &i in group {
            let c = s(i);
            let run_best = match run {
                Some((latency, best)) if latency == c.latency => best,
                Some((_, best)) => {
                    max_lower = max_lower.max(best);
                    run = Some((c.latency, c.success));
                    c.success
                }
                None => {
                    run = Some((c.latency, c.success));
                    c.success
                }
            };
            let in_group = max_lower >= c.success || run_best > c.success;
            let cheaper = stairs
                .range(..=key(c.latency))
                .next_back()
                .is_some_and(|(_, &best)| best >= c.success);
            on[i] = !in_group && !cheaper;
        }
        for &i in group {
            let c = s(i);
            let below = stairs.range(..=key(c.latency)).next_back().map(|(_, &b)| b);
            if below.is_some_and(|b| b >= c.success) {
                continue;
            }
            let higher: Vec<i64> = stairs
                .range(key(c.latency)..)
                .take_while(|(_, b)| **b <= c.success)
                .map(|(k, _)| *k)
                .collect();
            for k in higher {
                stairs.remove(&k);
            }
            stairs.insert(key(c.latency), c.success);
        }
        group_start = group_end;
    }
    on
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sc(latency: f64, cost: f64, success: f64) -> Option<Scores> {
        Some(Scores {
            latency,
            cost,
            success,
        })
    }

    fn naive(items: &[Option<Scores>]) -> Vec<bool> {
        items
            .iter()
            .map(|a| a.is_some_and(|a| !items.iter().flatten().any(|b| dominates(b, &a))))
            .collect()
    }

    #[test]
    fn dominated_points_go_ties_stay() {
        let items = [
            sc(100.0, 1.0, 0.99), // 0: cheapest
            sc(50.0, 1.5, 0.99),  // 1: faster, dearer
            sc(120.0, 1.5, 0.99), // 2: dominated by 0 (slower and dearer)
            sc(50.0, 1.5, 0.99),  // 3: tie with 1: both kept
            sc(200.0, 3.0, 1.0),  // 4: the only one at 100% success
            sc(10.0, 0.5, 0.2),   // 5: fails fast: cheap and quick, kept for its speed
            None,                 // 6: not measured
            sc(50.0, 1.5, 0.98),  // 7: dominated by 1 (less success, same else)
            sc(100.0, 1.0, 0.99), // 8: tie with 0
        ];
        assert_eq!(
            pareto(&items),
            [true, true, false, true, true, true, false, false, true]
        );
        assert_eq!(pareto(&items), naive(&items));
    }

    proptest! {
        #[test]
        fn the_skyline_agrees_with_pairwise_comparison(
            raw in proptest::collection::vec((0u8..6, 0u8..6, 0u8..4), 0..60)
        ) {
            // Few distinct values, so ties of every kind are common.
            let items: Vec<_> = raw
                .iter()
                .map(|&(l, c, s)| sc(f64::from(l), f64::from(c), f64::from(s) / 4.0))
                .collect();
            prop_assert_eq!(pareto(&items), naive(&items));
        }
    }
}
