//! `resilbench compare A B`: two runs of a profile (before and after a change), side by side.
//!
//! For every strategy both runs have, and every headline figure ([`crate::headline`]): A, B,
//! the difference B − A and the ratio B / A. A difference is **flagged** when it is both
//! larger than a relative threshold (default 5% of A: below that, a change rarely matters to a
//! decision, and real-clock runs on a shared machine move that much; for success and goodput
//! the threshold applies to the share of calls lost, 1 − success) and beyond sampling noise
//! ([`crate::noise`]: a p99.9 measured on a thousand calls can move a lot by chance; failures
//! that cluster in a spike move a success rate far more than independent calls would). Every
//! figure with a sampling model is judged as one of the table's family, 99% for the table. Flagged
//! differences say whether they are better or worse; a change beyond the threshold that
//! sampling noise could explain is shown as "within noise". Identical runs flag nothing.

use std::io::{self, Write};

use serde_json::Value;

use crate::document::ResultsDoc;
use crate::figure;
use crate::headline::cell_text;
use crate::headline::{Better, headlines};
use crate::noise;
use crate::results::StrategyResult;

/// Default relative threshold: differences within 5% of A are never flagged.
pub const DEFAULT_THRESHOLD: f64 = 0.05;

/// How a difference is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Within the threshold or within noise.
    None,
    /// Beyond both, in the better direction.
    Better,
    /// Beyond both, in the worse direction.
    Worse,
    /// Beyond both, for a figure with no better direction.
    Changed,
    /// Beyond the threshold but within sampling noise: too few calls to tell.
    Noise,
}

impl Flag {
    /// The word shown in tables (empty when not flagged).
    pub fn word(self) -> &'static str {
        match self {
            Flag::None => "",
            Flag::Better => "better",
            Flag::Worse => "WORSE",
            Flag::Changed => "changed",
            Flag::Noise => "within noise",
        }
    }
}

/// One figure of one strategy in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The strategy.
    pub strategy: String,
    /// The figure's column label (`p99 ms`).
    pub label: String,
    /// The figure's name in results.json.
    pub figure: String,
    /// Value in run A.
    pub a: Option<f64>,
    /// Value in run B.
    pub b: Option<f64>,
    /// A's and B's value as shown.
    pub shown: (String, String),
    /// How the difference is flagged.
    pub flag: Flag,
}

impl Row {
    /// B − A.
    pub fn diff(&self) -> Option<f64> {
        Some(self.b? - self.a?)
    }

    /// B / A (`None` when A is 0 or either is missing).
    pub fn ratio(&self) -> Option<f64> {
        let (a, b) = (self.a?, self.b?);
        (a != 0.0).then(|| b / a)
    }
}

/// The comparison of two runs.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// Rows, by strategy (A's order) then figure.
    pub rows: Vec<Row>,
    /// Sentences about what cannot be compared (strategies in one run only, profile changes).
    pub notes: Vec<String>,
}

impl Comparison {
    /// Rows flagged worse.
    pub fn worse(&self) -> usize {
        self.rows.iter().filter(|r| r.flag == Flag::Worse).count()
    }

    /// Rows flagged as a real difference (better, worse or changed).
    pub fn flagged(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| !matches!(r.flag, Flag::None | Flag::Noise))
            .count()
    }
}

/// Compares run `b` with run `a`; `threshold` is the relative change below which nothing is
/// flagged.
pub fn compare(a: &ResultsDoc, b: &ResultsDoc, threshold: f64) -> Comparison {
    let mut out = Comparison::default();
    let jsons: Vec<&Value> = a
        .results
        .strategies
        .iter()
        .filter_map(|s| a.strategy_json(&s.name))
        .chain(
            b.results
                .strategies
                .iter()
                .filter_map(|s| b.strategy_json(&s.name)),
        )
        .collect();
    let heads = headlines(jsons);
    // Every figure with a sampling model is judged as one of a family (see [`noise`]).
    let family = a
        .results
        .strategies
        .iter()
        .filter(|sa| b.results.strategies.iter().any(|sb| sb.name == sa.name))
        .count()
        * heads
            .iter()
            .filter(|h| noise::kind::model(&h.figure) != noise::kind::Model::None)
            .count();
    for sa in &a.results.strategies {
        let Some(sb) = b.results.strategies.iter().find(|s| s.name == sa.name) else {
            out.notes
                .push(format!("strategy `{}` is only in A", sa.name));
            continue;
        };
        let pair = noise::Pair::new(sa, sb);
        let (ja, jb) = (a.strategy_json(&sa.name), b.strategy_json(&sb.name));
        for h in &heads {
            let value = |j: Option<&Value>| {
                j.and_then(|j| figure::resolve(j, &h.figure).ok())
                    .and_then(|r| r.value())
            };
            let (va, vb) = (value(ja), value(jb));
            let flag = match (va, vb) {
                (Some(x), Some(y)) => {
                    let (bx, by) = threshold_basis(&h.figure, sa, sb, x, y);
                    let big = if bx == 0.0 {
                        by != 0.0
                    } else {
                        ((by - bx) / bx).abs() > threshold
                    };
                    let real = pair.differs(&h.figure, x, y, family).unwrap_or(true);
                    match (big && real, h.better) {
                        (false, _) if big => Flag::Noise,
                        (false, _) => Flag::None,
                        (true, Better::Neither) => Flag::Changed,
                        (true, Better::Higher) if y > x => Flag::Better,
                        (true, Better::Lower) if y < x => Flag::Better,
                        (true, _) => Flag::Worse,
                    }
                }
                (None, None) => Flag::None,
                _ => Flag::Changed,
            };
            out.rows.push(Row {
                strategy: sa.name.clone(),
                label: h.label.clone(),
                figure: h.figure.clone(),
                a: va,
                b: vb,
                shown: (cell_text(h, va), cell_text(h, vb)),
                flag,
            });
        }
    }
    for sb in &b.results.strategies {
        if !a.results.strategies.iter().any(|s| s.name == sb.name) {
            out.notes
                .push(format!("strategy `{}` is only in B", sb.name));
        }
    }
    out.notes.extend(run_differences(a, b));
    out.notes.extend(profile_differences(a, b));
    out
}

/// Why two files are not runs of one profile, so that comparing them means nothing: no
/// strategy in common, or profiles of different names. `compare` refuses them (exit 2)
/// unless `--force`.
pub fn unrelated(a: &ResultsDoc, b: &ResultsDoc) -> Option<String> {
    let (na, nb) = (a.profile_name(), b.profile_name());
    let common = a
        .results
        .strategies
        .iter()
        .filter(|s| b.results.strategies.iter().any(|t| t.name == s.name))
        .count();
    if common == 0 {
        return Some(format!(
            "A (profile `{na}`) and B (profile `{nb}`) have no strategy in common: there is \
             nothing to compare"
        ));
    }
    (na != nb).then(|| {
        format!(
            "A is a run of profile `{na}`, B of profile `{nb}`: figures of different scenarios \
             differ for reasons no flag can tell apart"
        )
    })
}

/// How the runs themselves differ: interrupted, another clock, another backend.
fn run_differences(a: &ResultsDoc, b: &ResultsDoc) -> Vec<String> {
    let mut out = Vec::new();
    for (which, d) in [("A", a), ("B", b)] {
        let r = &d.results;
        let planned = r.planned_strategies().len();
        let cut = r.strategies.iter().filter(|s| s.partial).count();
        if r.partial || cut > 0 || r.strategies.len() < planned {
            out.push(format!(
                "{which} is a partial run (interrupted): {} of {planned} strategies measured{}; \
                 its figures cover only what was measured",
                r.strategies.len(),
                if cut > 0 {
                    format!(", {cut} of them cut short")
                } else {
                    String::new()
                }
            ));
        }
    }
    let (ea, eb) = (&a.results.environment, &b.results.environment);
    if ea.clock != eb.clock {
        out.push(format!(
            "A ran on a {} clock, B on a {} clock: a virtual run models the backend exactly \
             and has no network or scheduling noise, so differences mix the clock with the \
             change",
            ea.clock, eb.clock
        ));
    }
    if ea.target != eb.target {
        out.push(format!(
            "A sent to {} backend, B to {}: different backends",
            ea.target, eb.target
        ));
    }
    out
}

/// The values the relative threshold applies to. For success and goodput it is the share of
/// calls *lost*: 99.0% → 98.0% doubles the failures, a change that matters, though it is
/// only 1% of the success rate.
fn threshold_basis(
    figure: &str,
    a: &StrategyResult,
    b: &StrategyResult,
    x: f64,
    y: f64,
) -> (f64, f64) {
    match figure {
        "success_rate" | "goodput.fraction" => (1.0 - x, 1.0 - y),
        "goodput.per_second" => (1.0 - a.goodput.fraction, 1.0 - b.goodput.fraction),
        _ => (x, y),
    }
}

/// Which parts of the two profiles differ (a comparison across a profile change is fine, but
/// the reader should know).
fn profile_differences(a: &ResultsDoc, b: &ResultsDoc) -> Vec<String> {
    let (pa, pb) = (&a.results.profile, &b.results.profile);
    let mut parts: Vec<String> = ["seed", "load", "backend"]
        .iter()
        .filter(|k| pa.get(**k) != pb.get(**k))
        .map(|k| k.to_string())
        .collect();
    let strategy = |p: &Value, name: &str| {
        p.get("strategies")
            .and_then(Value::as_array)
            .and_then(|l| {
                l.iter()
                    .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
            })
            .cloned()
    };
    for s in &a.results.strategies {
        let (x, y) = (strategy(pa, &s.name), strategy(pb, &s.name));
        if x.is_some() && y.is_some() && x != y {
            parts.push(format!("strategy `{}`", s.name));
        }
    }
    if parts.is_empty() {
        Vec::new()
    } else if parts == ["seed"] {
        vec![
            "the two profiles differ only in their seed: other arrivals and other backend \
             draws, the same scenario; differences within noise are expected, and a flag \
             means beyond noise (99% confidence for the whole table)"
                .to_string(),
        ]
    } else {
        vec![format!("the two profiles differ in: {}", parts.join(", "))]
    }
}

/// A signed difference as text.
pub fn signed(v: Option<f64>, percent: bool) -> String {
    match v {
        None => "–".into(),
        Some(v) if percent => format!("{:+.2} pts", v * 100.0),
        Some(v) => {
            let text = crate::table::number(v.abs());
            if v < 0.0 {
                format!("-{text}")
            } else {
                format!("+{text}")
            }
        }
    }
}

/// A ratio as text.
pub fn ratio_text(v: Option<f64>) -> String {
    v.map_or("–".into(), |r| format!("{r:.3}×"))
}

/// The comparison as a terminal table, with the files named, notes and a summary line.
pub fn write_table(w: &mut impl Write, c: &Comparison, a: &str, b: &str) -> io::Result<()> {
    writeln!(w, "A: {a}\nB: {b}\n")?;
    let rows: Vec<Vec<String>> = c
        .rows
        .iter()
        .map(|r| {
            vec![
                r.strategy.clone(),
                r.label.clone(),
                r.shown.0.clone(),
                r.shown.1.clone(),
                signed(r.diff(), r.figure == "success_rate"),
                ratio_text(r.ratio()),
                r.flag.word().to_string(),
            ]
        })
        .collect();
    crate::table::write(
        w,
        &["strategy", "figure", "A", "B", "B - A", "B / A", "flag"],
        &rows,
        2,
    )?;
    writeln!(w)?;
    for note in &c.notes {
        writeln!(w, "note: {}", crate::table::printable(note))?;
    }
    writeln!(
        w,
        "{} of {} figures differ beyond noise and the threshold; {} worse",
        c.flagged(),
        c.rows.len(),
        c.worse()
    )
}
