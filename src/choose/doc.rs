//! `sweep.json`: the grid, every point's settings and headline figures, and what they say
//! (the frontier, the load curves, the recommendation).
//!
//! Schema `resilbench.sweep/v1`. Each point's full results are its own `results.json`
//! (`points[i].dir`, relative to this file), an ordinary run folder that `report`, `compare`
//! and `check` read; this file keeps a few figures per point, so that the page, the verdict and
//! a merge of shards need nothing else. The derived sections (`frontier`, `load`, `verdict`)
//! are recomputed from `points` whenever the file is written ([`SweepDoc::conclude`]), so a
//! merged file says exactly what the unsharded sweep would.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::figures::{Candidate, PointFigures};
use super::frontier::{Scores, pareto};
use super::goal::Goal;
use super::load::{LoadCurves, curves, goal_words};
use super::verdict::{Entry, Verdict, cost, meets, verdict};
use crate::results::{Shard, write_atomic};
use crate::sweep::Grid;
use crate::sweep::values::show;

/// The schema name and version this build writes and reads.
pub const SCHEMA: &str = "resilbench.sweep/v1";

/// Largest sweep.json read (100,000 points of a few strategies each).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// The tail latencies the frontier is drawn for.
pub const TAILS: [&str; 2] = ["latency_ms.e2e.p99", "latency_ms.e2e.p999"];

/// One key of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridKey {
    /// As written.
    pub key: String,
    /// Where in the plan.
    pub path: String,
    /// Its values, in order.
    pub values: Vec<Value>,
}

/// One finished point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointDoc {
    /// Its number in the grid.
    pub index: usize,
    /// Its run folder, relative to sweep.json.
    pub dir: String,
    /// Each key's value.
    pub settings: BTreeMap<String, Value>,
    /// What the sweep kept of its results.
    #[serde(flatten)]
    pub figures: PointFigures,
}

/// A (point, strategy) the frontier names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    /// The point.
    pub point: usize,
    /// The strategy.
    pub strategy: String,
}

/// The frontier for one tail latency, cheapest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tail {
    /// The latency figure.
    pub latency: String,
    /// The Pareto-optimal candidates, by cost.
    pub points: Vec<Pick>,
}

/// A whole sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepDoc {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The profile's name.
    pub name: String,
    /// The profile's description.
    pub description: String,
    /// The profile's path as given.
    pub profile: String,
    /// `virtual` or `real`.
    pub clock: String,
    /// The keys and their values.
    pub grid: Vec<GridKey>,
    /// Points in the grid (all shards).
    pub points_total: usize,
    /// The strategies every point runs.
    pub strategies: Vec<String>,
    /// The base plan every point starts from.
    pub base: Value,
    /// The goal, if any.
    pub goal: Option<Goal>,
    /// Values the profile's rules change, and other notes on the grid.
    pub notes: Vec<String>,
    /// The shard this file holds (`--shard K/N`); absent for a whole sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The shard folders a merged file was made from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// True while the sweep runs, and when it was interrupted or stopped by an error.
    pub partial: bool,
    /// Points that finished, by number.
    pub points: Vec<PointDoc>,
    /// The cost figure the frontier and the verdict use.
    pub cost: String,
    /// The trade-off frontiers.
    pub frontier: Vec<Tail>,
    /// For a load sweep (`load.rate` varies): goodput and success against the offered load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadCurves>,
    /// The recommendation.
    pub verdict: Verdict,
}

impl SweepDoc {
    /// A sweep of `grid` with no point yet.
    pub fn new(
        grid: &Grid,
        goal: Option<Goal>,
        clock: &str,
        shard: Option<Shard>,
        notes: Vec<String>,
    ) -> Self {
        SweepDoc {
            schema: SCHEMA.into(),
            name: grid.base.name.clone(),
            description: grid.base.description.clone(),
            profile: grid.file().to_string(),
            clock: clock.into(),
            grid: grid
                .keys
                .iter()
                .map(|k| GridKey {
                    key: k.name.clone(),
                    path: k.path.to_string(),
                    values: k.values.iter().map(json).collect(),
                })
                .collect(),
            points_total: grid.len(),
            strategies: grid
                .base
                .strategies
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            base: serde_json::to_value(&grid.base).expect("a plan always serializes"),
            goal,
            notes,
            shard,
            merged_from: Vec::new(),
            partial: true,
            points: Vec::new(),
            cost: "amplification.backend".into(),
            frontier: Vec::new(),
            load: None,
            verdict: Verdict::default(),
        }
    }

    /// Adds a finished point of `grid`.
    pub fn add(&mut self, grid: &Grid, index: usize, dir: String, figures: PointFigures) {
        let settings = grid
            .settings(index)
            .into_iter()
            .map(|(k, v)| (k.name.clone(), json(v)))
            .collect();
        let at = self.points.partition_point(|p| p.index < index);
        self.points.insert(
            at,
            PointDoc {
                index,
                dir,
                settings,
                figures,
            },
        );
    }

    /// A point's settings in words, in the grid's order of keys.
    pub fn describe(&self, point: &PointDoc) -> String {
        self.grid
            .iter()
            .filter_map(|k| {
                point
                    .settings
                    .get(&k.key)
                    .map(|v| format!("{} = {}", k.key, shown(v)))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every candidate of the finished, complete points: (point, candidate).
    pub fn candidates(&self) -> impl Iterator<Item = (&PointDoc, &Candidate)> {
        self.points
            .iter()
            .filter(|p| !p.figures.partial)
            .flat_map(|p| p.figures.strategies.iter().map(move |c| (p, c)))
    }

    /// Recomputes the frontier, the load curves and the verdict from the points.
    pub fn conclude(&mut self) {
        let all: Vec<(&PointDoc, &Candidate)> = self.candidates().collect();
        let cost_figure = if all
            .iter()
            .all(|(_, c)| c.get("amplification.backend").is_none())
            && !all.is_empty()
        {
            "amplification.client"
        } else {
            "amplification.backend"
        };
        let frontier = TAILS
            .iter()
            .map(|tail| {
                let scores: Vec<Option<Scores>> = all
                    .iter()
                    .map(|(_, c)| {
                        Some(Scores {
                            latency: c.get(tail)?,
                            cost: cost(c)?,
                            success: c.get("success_rate")?,
                        })
                    })
                    .collect();
                let on = pareto(&scores);
                let mut picks: Vec<(f64, f64, Pick)> = all
                    .iter()
                    .zip(&scores)
                    .zip(on)
                    .filter(|(_, on)| *on)
                    .map(|(((p, c), s), _)| {
                        let s = s.expect("on the frontier, so measured");
                        (
                            s.cost,
                            s.latency,
                            Pick {
                                point: p.index,
                                strategy: c.strategy.clone(),
                            },
                        )
                    })
                    .collect();
                picks.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
                Tail {
                    latency: tail.to_string(),
                    points: picks.into_iter().map(|(_, _, p)| p).collect(),
                }
            })
            .collect();
        let mut load = self
            .grid
            .iter()
            .find(|k| k.path == "load.rate")
            .map(|k| curves(&k.key, self, &self.points));
        let words: Vec<String> = self.points.iter().map(|p| self.describe(p)).collect();
        let entries: Vec<Entry<'_>> = self
            .points
            .iter()
            .zip(&words)
            .filter(|(p, _)| !p.figures.partial)
            .flat_map(|(p, w)| {
                p.figures.strategies.iter().map(move |c| Entry {
                    point: p.index,
                    settings: w,
                    warnings: p.figures.warnings.first().map(String::as_str),
                    candidate: c,
                })
            })
            .collect();
        let mut verdict = verdict(&entries, self.goal.as_ref(), self.strategies.len() > 1);
        if let (Some(load), Some(goal)) = (load.as_mut(), self.goal.as_ref()) {
            let meets: HashMap<(usize, &str), bool> = entries
                .iter()
                .map(|e| ((e.point, e.candidate.strategy.as_str()), meets(goal, e)))
                .collect();
            for curve in &mut load.curves {
                let strategy = curve.strategy.clone();
                curve.meets_goal_up_to = curve
                    .points
                    .iter()
                    .take_while(|p| {
                        meets
                            .get(&(p.point, strategy.as_str()))
                            .copied()
                            .unwrap_or(false)
                    })
                    .last()
                    .map(|p| p.load);
            }
            // In a load sweep, which strategy holds the goal to the highest load comes first.
            verdict.words.insert(0, goal_words(load));
        }
        self.cost = cost_figure.into();
        self.frontier = frontier;
        self.load = load;
        self.verdict = verdict;
    }

    /// Writes the file atomically, its derived sections recomputed.
    pub fn write(&mut self, path: &Path) -> std::io::Result<()> {
        self.conclude();
        let text = serde_json::to_string_pretty(self).expect("a sweep always serializes");
        write_atomic(path, text.as_bytes())
    }

    /// Reads and checks a sweep.json.
    pub fn read(path: &Path) -> Result<SweepDoc, String> {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| format!("{shown}: {e}"))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(format!(
                "{shown}: {size} bytes; a sweep.json may be at most {MAX_FILE_BYTES}"
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| format!("{shown}: not JSON: {e}"))?;
        match value.get("schema").and_then(Value::as_str) {
            Some(SCHEMA) => {}
            other => {
                return Err(format!(
                    "{shown}: schema {other:?}; this build reads `{SCHEMA}`"
                ));
            }
        }
        serde_path_to_error::deserialize(&value)
            .map_err(|e| format!("{shown}: field `{}`: {}", e.path(), e.inner()))
    }
}

fn json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A setting's value in words.
pub fn shown(v: &Value) -> String {
    match toml::Value::try_from(v) {
        Ok(t) => show(&t),
        Err(_) => v.to_string(),
    }
}
