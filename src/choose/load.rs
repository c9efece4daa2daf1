//! A load sweep's curves: goodput and success against the offered load, per strategy, up to
//! and past the load where each collapses, and whether each came back after its trigger.
//!
//! When a sweep varies `load.rate`, each strategy (and each combination of the other keys'
//! values) gets one curve, its points in order of load. A point *collapsed* when fewer than
//! half the calls offered long after the trigger succeeded ([`COLLAPSED_BELOW`]); it
//! *recovered* when those calls succeeded (nearly) as often as the ones offered before the
//! trigger ([`RECOVERED_AT`]). A curve's collapse load is the lowest load at which it
//! collapsed; the highest load it recovers from is the highest load up to which every point
//! recovered (or, without a trigger, did not collapse). This is the metastability test of
//! Bronson et al. (HotOS'21) and Huang et al. (OSDI'22): a system that stays down after the
//! load that tipped it over is gone is in a metastable failure, sustained by its own retries.
//!
//! [`COLLAPSED_BELOW`]: super::figures::COLLAPSED_BELOW
//! [`RECOVERED_AT`]: super::figures::RECOVERED_AT

use serde::{Deserialize, Serialize};

use super::doc::{PointDoc, SweepDoc, shown};

/// One point of a curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPoint {
    /// The point's number.
    pub point: usize,
    /// The offered load (`load.rate`), calls per second.
    pub load: f64,
    /// Goodput over the measured window, calls per second.
    pub goodput: Option<f64>,
    /// Success over the measured window.
    pub success: Option<f64>,
    /// Success long after the trigger (or in the second half of the run).
    pub after: Option<f64>,
    /// Came back after the trigger (`null`: the profile has none).
    pub recovered: Option<bool>,
    /// Collapsed.
    pub collapsed: bool,
}

/// One strategy's curve at fixed values of the other keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// The strategy.
    pub strategy: String,
    /// The other keys' values, in words (empty when only the load varies).
    pub fixed: String,
    /// Its points, by load.
    pub points: Vec<LoadPoint>,
    /// The lowest load at which it collapsed.
    pub collapse_at: Option<f64>,
    /// The highest load up to which every point recovered (or did not collapse).
    pub recovers_up_to: Option<f64>,
    /// The highest load up to which every point meets the sweep's goal (`null`: no goal, or
    /// not even the lowest load meets it).
    pub meets_goal_up_to: Option<f64>,
}

/// Every curve of a load sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadCurves {
    /// The load key as written.
    pub key: String,
    /// The curves.
    pub curves: Vec<Curve>,
}

/// The curves of `points` (complete ones only), whose load is the key `key` of `doc`'s grid.
pub fn curves(key: &str, doc: &SweepDoc, points: &[PointDoc]) -> LoadCurves {
    let mut out: Vec<Curve> = Vec::new();
    let mut index: std::collections::HashMap<(String, String), usize> = Default::default();
    for p in points.iter().filter(|p| !p.figures.partial) {
        let Some(load) = p.settings.get(key).and_then(serde_json::Value::as_f64) else {
            continue;
        };
        let fixed = doc
            .grid
            .iter()
            .filter(|k| k.key != key)
            .filter_map(|k| {
                p.settings
                    .get(&k.key)
                    .map(|v| format!("{} = {}", k.key, shown(v)))
            })
            .collect::<Vec<_>>()
            .join(", ");
        for c in &p.figures.strategies {
            let point = LoadPoint {
                point: p.index,
                load,
                goodput: c.get("goodput.per_second"),
                success: c.get("success_rate"),
                after: c.stretch.after,
                recovered: c.stretch.recovered,
                collapsed: c.stretch.collapsed,
            };
            match index.get(&(c.strategy.clone(), fixed.clone())) {
                Some(&i) => out[i].points.push(point),
                None => {
                    index.insert((c.strategy.clone(), fixed.clone()), out.len());
                    out.push(Curve {
                        strategy: c.strategy.clone(),
                        fixed: fixed.clone(),
                        points: vec![point],
                        collapse_at: None,
                        recovers_up_to: None,
                        meets_goal_up_to: None,
                    });
                }
            }
        }
    }
    for curve in &mut out {
        curve
            .points
            .sort_by(|a, b| a.load.total_cmp(&b.load).then(a.point.cmp(&b.point)));
        curve.collapse_at = curve.points.iter().find(|p| p.collapsed).map(|p| p.load);
        curve.recovers_up_to = curve
            .points
            .iter()
            .take_while(|p| p.recovered.unwrap_or(!p.collapsed))
            .last()
            .map(|p| p.load);
    }
    LoadCurves {
        key: key.to_string(),
        curves: out,
    }
}

/// "By offered load: grpc-a6 meets the goal up to 375 calls/s, …", best first.
pub fn goal_words(load: &LoadCurves) -> String {
    let mut curves: Vec<&Curve> = load.curves.iter().collect();
    curves.sort_by(|a, b| {
        b.meets_goal_up_to
            .unwrap_or(-1.0)
            .total_cmp(&a.meets_goal_up_to.unwrap_or(-1.0))
    });
    let each: Vec<String> = curves
        .iter()
        .map(|c| {
            let who = if c.fixed.is_empty() {
                c.strategy.clone()
            } else {
                format!("{} ({})", c.strategy, c.fixed)
            };
            match c.meets_goal_up_to {
                Some(l) => format!("{who} up to {} calls/s", crate::table::short(l)),
                None => format!("{who} not even at the lowest load"),
            }
        })
        .collect();
    format!(
        "By offered load ({}), the goal is met at every load up to: {}.",
        load.key,
        each.join("; ")
    )
}
