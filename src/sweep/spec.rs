//! What a sweep was asked to vary, as written: the profile's `[sweep]` table and the command
//! line's `--vary KEY=VALUES`, each entry with where it came from (a line of the file, or the
//! flag), so that an error about it points there.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Value;

use crate::profile::error::{FieldPath, Location, ProfileError, Seg, span_of};
use crate::profile::sweep::SweepSpec;

/// Where an entry was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// In the profile, at this byte span.
    File(Range<usize>),
    /// On the command line, as this flag.
    Flag(String),
}

/// The values of one key, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Text in the sweep's value syntax (`--vary`, or a string in `[sweep.vary]`).
    Text(String),
    /// A TOML value from `[sweep.vary]` (an array, a number).
    Toml(Value),
}

/// One key to vary.
#[derive(Debug, Clone, PartialEq)]
pub struct Vary {
    /// The key as written.
    pub key: String,
    /// Its values as written.
    pub values: Values,
    /// Where.
    pub origin: Origin,
}

/// Everything a sweep was asked, before any of it is checked against the plan.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// The profile's path as given.
    pub file: String,
    /// The profile's text (for error locations).
    pub text: String,
    /// The keys, in the order written: `[sweep.vary]` first, then `--vary` flags (a flag
    /// naming a key of the table replaces its values in place).
    pub vary: Vec<Vary>,
    /// The goal's conditions and where each was written.
    pub goal: Vec<(String, Origin)>,
    /// The strategies each point runs (empty: all).
    pub strategies: Vec<(String, Origin)>,
}

#[derive(Deserialize)]
struct SweepOnly {
    #[serde(default)]
    sweep: Option<SweepSpec>,
}

impl Spec {
    /// The `[sweep]` of the profile at `path`, read after the profile itself loaded (so the
    /// file is known to be a valid profile).
    pub fn read(path: &Path) -> Result<Spec, ProfileError> {
        let file = path.display().to_string();
        let fail = |message: String| ProfileError {
            file: file.clone(),
            location: None,
            flag: None,
            field: FieldPath::default(),
            message,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| fail(format!("cannot read the profile: {e}")))?
            .len();
        if size > crate::profile::MAX_FILE_BYTES {
            return Err(fail(format!(
                "is {size} bytes; a profile may be at most {} bytes",
                crate::profile::MAX_FILE_BYTES
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read the profile: {e}")))?;
        Self::parse(file, text)
    }

    /// The `[sweep]` of the profile `text`, known in messages as `file` (a path, or a built-in
    /// profile's name).
    pub fn parse(file: String, text: String) -> Result<Spec, ProfileError> {
        let spec = toml::from_str::<SweepOnly>(&text)
            .map_err(|e| ProfileError::at(&file, Some(&text), field(&["sweep"]), e.to_string()))?
            .sweep
            .unwrap_or_default();
        let span = |path: &[&str], index: Option<usize>| {
            let mut p = field(path);
            if let Some(i) = index {
                p.0.push(Seg::Index(i));
            }
            span_of(&text, &p).unwrap_or(0..0)
        };
        let mut vary = Vec::new();
        flatten(&spec.vary, &mut Vec::new(), &mut |names, value| {
            let mut at = vec!["sweep", "vary"];
            at.extend(names.iter().map(String::as_str));
            vary.push(Vary {
                key: joined(names),
                values: match value {
                    Value::String(s) => Values::Text(s.clone()),
                    v => Values::Toml(v.clone()),
                },
                origin: Origin::File(span(&at, None)),
            });
        });
        // A toml::Table is sorted by key; the keys are run in the order they were written.
        vary.sort_by_key(|v| match &v.origin {
            Origin::File(s) => s.start,
            Origin::Flag(_) => usize::MAX,
        });
        let listed = |items: &[String], name: &str| -> Vec<(String, Origin)> {
            items
                .iter()
                .enumerate()
                .map(|(i, g)| (g.clone(), Origin::File(span(&["sweep", name], Some(i)))))
                .collect()
        };
        Ok(Spec {
            goal: listed(&spec.goal, "goal"),
            strategies: listed(&spec.strategies, "strategies"),
            file,
            text,
            vary,
        })
    }

    /// Adds `--vary KEY=VALUES` flags: a key the table has gets the flag's values instead.
    pub fn with_flags(mut self, flags: &[String]) -> Result<Spec, ProfileError> {
        for flag in flags {
            let shown = format!("--vary {flag}");
            let Some((key, values)) = flag.split_once('=') else {
                return Err(self.error(
                    &Origin::Flag(shown),
                    FieldPath::default(),
                    "expected KEY=VALUES, like load.rate=500..5000x2 or \
                     strategies.grpc.layers.grpc_retry.max_attempts=2,3,5"
                        .into(),
                ));
            };
            let entry = Vary {
                key: key.trim().to_string(),
                values: Values::Text(values.to_string()),
                origin: Origin::Flag(shown),
            };
            match self.vary.iter_mut().find(|v| v.key == entry.key) {
                Some(v) => *v = entry,
                None => self.vary.push(entry),
            }
        }
        Ok(self)
    }

    /// An error about an entry written at `origin`.
    pub fn error(&self, origin: &Origin, field: FieldPath, message: String) -> ProfileError {
        match origin {
            Origin::File(span) => ProfileError {
                file: self.file.clone(),
                location: Some(Box::new(Location::of(&self.text, span.start))),
                flag: None,
                field,
                message,
            },
            Origin::Flag(flag) => ProfileError {
                file: self.file.clone(),
                location: None,
                flag: Some(flag.clone()),
                field,
                message,
            },
        }
    }
}

fn field(names: &[&str]) -> FieldPath {
    FieldPath(names.iter().map(|n| Seg::Key((*n).to_string())).collect())
}

/// Calls `each` with every value of `table` that is not a table, and the names leading to it.
fn flatten(table: &toml::Table, names: &mut Vec<String>, each: &mut dyn FnMut(&[String], &Value)) {
    for (k, v) in table {
        names.push(k.clone());
        match v {
            Value::Table(inner) => flatten(inner, names, each),
            v => each(names, v),
        }
        names.pop();
    }
}

/// Nested names as one key; a name with a dot in it is quoted, unless it is the whole key.
fn joined(names: &[String]) -> String {
    if let [one] = names {
        return one.clone();
    }
    names
        .iter()
        .map(|n| {
            if n.contains('.') {
                format!("\"{n}\"")
            } else {
                n.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Spec {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).unwrap();
        Spec::read(&path).unwrap()
    }

    #[test]
    fn keys_keep_their_written_order_nested_or_quoted() {
        let s = spec(
            r#"
            [load]
            rate = 1
            [sweep]
            goal = ["success_rate >= 99%"]
            [sweep.vary]
            "strategies[0].deadline" = "1s, 2s"
            load.rate = [100, 200]
            strategies."v1.2".deadline = "3s"
            backend.workers = "1..3"
            "#,
        );
        let keys: Vec<&str> = s.vary.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "strategies[0].deadline",
                "load.rate",
                "strategies.\"v1.2\".deadline",
                "backend.workers"
            ]
        );
        assert!(matches!(&s.vary[1].values, Values::Toml(Value::Array(a)) if a.len() == 2));
        let Origin::File(span) = &s.vary[3].origin else {
            panic!()
        };
        assert_eq!(Location::of(&s.text, span.start).line, 10);
        assert_eq!(s.goal.len(), 1);
        let s = s
            .with_flags(&["load.rate=5..6".into(), "seed=1,2".into()])
            .unwrap();
        assert_eq!(s.vary.len(), 5);
        assert_eq!(s.vary[1].values, Values::Text("5..6".into()));
        assert!(matches!(s.vary[1].origin, Origin::Flag(_)));
        assert!(s.clone().with_flags(&["seed".into()]).is_err());
    }
}
