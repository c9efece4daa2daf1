//! The grid: every key with its values, every point (one value per key), and each point's
//! plan, checked before anything runs.
//!
//! A point is the base plan (the profile with `--duration`, `--rate`, `--seed` applied) as the
//! TOML `resilbench validate` prints, with the point's values set at their keys, then read
//! again as a profile: the same parser and the same checks as `run`, so a point's plan is
//! exactly the plan of a hand-written profile with those values. Points are numbered in the
//! order of the keys, the first key outermost: with `a = 1, 2` and `b = x, y, z`, point 0 is
//! (1, x), point 1 is (1, y), point 3 is (2, x).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use toml::Value;

use super::key;
use super::spec::{Origin, Spec, Values};
use super::values::{self, Kind};
use crate::profile::error::{FieldPath, Seg};
use crate::profile::{self, Overrides, Plan, ProfileError};

/// Most keys one sweep may vary.
pub const MAX_KEYS: usize = 16;

/// Most points one sweep may have (a larger grid is several sweeps, or shards).
pub const MAX_POINTS: usize = 100_000;

/// One key of the grid.
#[derive(Debug, Clone)]
pub struct Key {
    /// As written.
    pub name: String,
    /// Where it is in the plan (`strategies[0].layers[1].max_attempts`).
    pub path: FieldPath,
    /// Its values, in order.
    pub values: Vec<Value>,
    origin: Origin,
}

/// The grid of a sweep.
#[derive(Debug)]
pub struct Grid {
    spec: Spec,
    stem: String,
    /// The base plan every point starts from.
    pub base: Plan,
    base_value: Value,
    /// The keys, in order.
    pub keys: Vec<Key>,
}

impl Grid {
    /// The grid of `spec` over `base` (the profile's plan with any overrides), running only
    /// `strategies` when some are named.
    pub fn build(spec: Spec, base: Plan) -> Result<Grid, ProfileError> {
        let plain = |message: String| ProfileError {
            file: spec.file.clone(),
            location: None,
            flag: None,
            field: FieldPath::default(),
            message,
        };
        let mut base_value = Value::try_from(&base).map_err(|e| plain(e.to_string()))?;
        keep_strategies(&spec, &mut base_value)?;
        if spec.vary.is_empty() {
            return Err(plain(
                "the sweep is empty: give keys to vary in the profile's [sweep.vary] or with \
                 --vary KEY=VALUES (docs/sweeps.md)"
                    .into(),
            ));
        }
        if spec.vary.len() > MAX_KEYS {
            return Err(spec.error(
                &spec.vary[MAX_KEYS].origin,
                FieldPath::default(),
                format!("at most {MAX_KEYS} keys, got {}", spec.vary.len()),
            ));
        }
        let mut keys: Vec<Key> = Vec::new();
        let mut points = 1usize;
        for v in &spec.vary {
            let at = FieldPath(vec![
                Seg::Key("sweep".into()),
                Seg::Key("vary".into()),
                Seg::Key(v.key.clone()),
            ]);
            let fail = |message: String| {
                let field = match v.origin {
                    Origin::File(_) => at.clone(),
                    Origin::Flag(_) => FieldPath::default(),
                };
                spec.error(&v.origin, field, message)
            };
            let (path, current) = key::resolve(&base_value, &v.key).map_err(&fail)?;
            if let Some(other) = keys
                .iter()
                .find(|k| prefix(&k.path, &path) || prefix(&path, &k.path))
            {
                return Err(fail(format!(
                    "names the same setting as `{}` ({path})",
                    other.name
                )));
            }
            let kind = Kind::of(current);
            let values = match &v.values {
                Values::Text(t) => values::expand(t, kind),
                Values::Toml(t) => values::from_toml(t, kind),
            }
            .map_err(&fail)?;
            points = points.saturating_mul(values.len());
            if points > MAX_POINTS {
                return Err(fail(format!(
                    "the grid reaches more than {MAX_POINTS} points; vary fewer values, or \
                     split the sweep"
                )));
            }
            keys.push(Key {
                name: v.key.clone(),
                path,
                values,
                origin: v.origin.clone(),
            });
        }
        let stem = std::path::Path::new(&spec.file)
            .file_stem()
            .map_or("profile".into(), |s| s.to_string_lossy().into_owned());
        // The base plan with only the strategies the sweep runs.
        let text = toml::to_string(&base_value).map_err(|e| plain(e.to_string()))?;
        let base = profile::parse(&text, &spec.file, &stem, &Overrides::default())?;
        Ok(Grid {
            spec,
            stem,
            base,
            base_value,
            keys,
        })
    }

    /// The profile's path as given.
    pub fn file(&self) -> &str {
        &self.spec.file
    }

    /// How many points the grid has.
    pub fn len(&self) -> usize {
        self.keys.iter().map(|k| k.values.len()).product()
    }

    /// Whether the grid has no point (never: an empty grid is refused when built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of each key's value at point `index` (first key outermost).
    pub fn choice(&self, index: usize) -> Vec<usize> {
        let mut rest = index;
        let mut out = vec![0; self.keys.len()];
        for (i, k) in self.keys.iter().enumerate().rev() {
            out[i] = rest % k.values.len();
            rest /= k.values.len();
        }
        out
    }

    /// The settings of point `index`: each key and its value.
    pub fn settings(&self, index: usize) -> Vec<(&Key, &Value)> {
        self.keys
            .iter()
            .zip(self.choice(index))
            .map(|(k, i)| (k, &k.values[i]))
            .collect()
    }

    /// The settings of point `index` in words: `max_attempts = 3, initial_backoff = 100ms`.
    pub fn describe(&self, index: usize) -> String {
        self.settings(index)
            .iter()
            .map(|(k, v)| format!("{} = {}", k.name, values::show(v)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the grid varies the offered load (`load.rate`): a load sweep.
    pub fn load_key(&self) -> Option<usize> {
        self.keys
            .iter()
            .position(|k| k.path.to_string() == "load.rate")
    }

    /// The plan of point `index`, checked as a profile is.
    pub fn plan(&self, index: usize) -> Result<Plan, ProfileError> {
        let mut value = self.base_value.clone();
        for (k, v) in self.settings(index) {
            key::set(&mut value, &k.path, v.clone());
        }
        let text = toml::to_string(&value).map_err(|e| {
            self.spec
                .error(&self.keys[0].origin, FieldPath::default(), e.to_string())
        })?;
        profile::parse(&text, &self.spec.file, &self.stem, &Overrides::default())
            .map_err(|e| self.point_error(index, e))
    }

    /// A point's error, pointed at the key whose value caused it (the first key when the
    /// values clash only together).
    fn point_error(&self, index: usize, e: ProfileError) -> ProfileError {
        let culprit = self
            .keys
            .iter()
            .find(|k| prefix(&k.path, &e.field) || prefix(&e.field, &k.path))
            .unwrap_or(&self.keys[0]);
        self.spec.error(
            &culprit.origin,
            e.field,
            format!(
                "{} (sweep point {index} of {}: {})",
                e.message,
                self.len(),
                self.describe(index)
            ),
        )
    }

    /// Checks every point's plan, on `threads` threads, before anything runs. Returns notes on
    /// values the profile's rules change (a `max_attempts` of 7 runs as 5), once per value.
    pub fn check_all(&self, threads: usize) -> Result<Vec<String>, ProfileError> {
        let next = AtomicUsize::new(0);
        let first_error: Mutex<Option<(usize, ProfileError)>> = Mutex::new(None);
        let notes = Mutex::new(BTreeSet::new());
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= self.len() {
                            return;
                        }
                        match self.plan(i) {
                            Ok(plan) => {
                                for note in self.changed(i, &plan) {
                                    notes.lock().expect("no panic holds it").insert(note);
                                }
                            }
                            Err(e) => {
                                let mut first = first_error.lock().expect("no panic holds it");
                                if first.as_ref().is_none_or(|(j, _)| i < *j) {
                                    *first = Some((i, e));
                                }
                                // Points after the first failure need no checking.
                                next.store(usize::MAX / 2, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some((_, e)) = first_error.into_inner().expect("no panic holds it") {
            return Err(e);
        }
        Ok(notes
            .into_inner()
            .expect("no panic holds it")
            .into_iter()
            .collect())
    }

    /// The keys whose value the plan of point `index` holds differently (the profile's rules
    /// changed it), in words.
    fn changed(&self, index: usize, plan: &Plan) -> Vec<String> {
        let Ok(value) = Value::try_from(plan) else {
            return Vec::new();
        };
        self.settings(index)
            .into_iter()
            .filter_map(|(k, set)| {
                let got = key::get(&value, &k.path);
                (!got.is_some_and(|g| same(g, set))).then(|| {
                    format!(
                        "`{} = {}` runs as {} (the profile's rules change it)",
                        k.name,
                        values::show(set),
                        got.map_or("nothing".into(), values::show)
                    )
                })
            })
            .collect()
    }
}

/// Whether `a` is `b` or lies inside it.
fn prefix(a: &FieldPath, b: &FieldPath) -> bool {
    !a.is_empty() && b.0.starts_with(&a.0)
}

/// The same setting: equal values, equal durations written differently, or equal numbers.
fn same(a: &Value, b: &Value) -> bool {
    use crate::profile::duration::parse;
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            x == y || matches!((parse(x), parse(y)), (Ok(p), Ok(q)) if p == q)
        }
        (Value::Integer(i), Value::Float(f)) | (Value::Float(f), Value::Integer(i)) => {
            *i as f64 == *f
        }
        (a, b) => a == b,
    }
}

/// Keeps only the strategies the sweep names (and the gate's entries for them).
fn keep_strategies(spec: &Spec, plan: &mut Value) -> Result<(), ProfileError> {
    if spec.strategies.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = plan
        .get("strategies")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for (name, origin) in &spec.strategies {
        if !names.contains(name) {
            return Err(spec.error(
                origin,
                FieldPath::default(),
                format!(
                    "no strategy is named `{name}`; the profile's strategies are {}",
                    names.join(", ")
                ),
            ));
        }
    }
    let kept = |name: &str| spec.strategies.iter().any(|(n, _)| n == name);
    if let Some(Value::Array(list)) = plan.get_mut("strategies") {
        list.retain(|s| s.get("name").and_then(Value::as_str).is_some_and(kept));
    }
    if let Some(Value::Table(per)) = plan.get_mut("gate").and_then(|g| g.get_mut("strategies")) {
        per.retain(|name, _| kept(name));
    }
    Ok(())
}
