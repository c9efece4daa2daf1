//! Sweep keys: a dotted name of the resolved plan, found in it.
//!
//! A key names a setting the way `resilbench validate` prints the plan: `load.rate`,
//! `backend.workers`, `phases[0].duration`, `strategies[2].layers[0].max_attempts`. An entry of
//! an array of tables may also be named instead of numbered: a strategy by its `name`
//! (`strategies.grpc.deadline`), a layer or a phase by its `kind` when only one entry has it
//! (`strategies.grpc.layers.grpc_retry.max_attempts`, `phases.load_spike.factor`). A name with
//! a dot in it is quoted: `strategies."v1.2".deadline`.
//!
//! Keys are found in the *resolved* plan, not in the file as written, so every setting has a
//! name even where the file relies on a default, and a strategy's service config (inline or
//! in a file) is varied through the `grpc_retry` or `grpc_hedge` layer it becomes, whose keys
//! are the service config's in snake case (`max_attempts`, `initial_backoff`,
//! `hedging_delay`).

use toml::Value;

use crate::profile::error::{FieldPath, Seg};

/// One step of a key as written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A table's key, or an entry of an array named by its `name` or `kind`.
    Name(String),
    /// An entry of an array by its index.
    Index(usize),
}

fn parse(key: &str) -> Result<Vec<Step>, String> {
    let bad = |why: &str| {
        Err(format!(
            "`{key}` is not a key: {why}; expected a dotted name like `load.rate` or \
             `strategies[0].layers[1].max_attempts`"
        ))
    };
    let mut steps = Vec::new();
    let mut chars = key.trim().chars().peekable();
    let mut expect_name = true;
    while let Some(c) = chars.next() {
        match c {
            '.' if expect_name => return bad("an empty name between two dots"),
            '.' => expect_name = true,
            '[' if expect_name => return bad("an index in [ ] follows a name"),
            '[' => {
                let digits: String = chars.by_ref().take_while(|c| *c != ']').collect();
                match digits.trim().parse() {
                    Ok(i) => steps.push(Step::Index(i)),
                    Err(_) => return bad("an index in [ ] must be a number"),
                }
            }
            '"' if expect_name => {
                let name: String = chars.by_ref().take_while(|c| *c != '"').collect();
                steps.push(Step::Name(name));
                expect_name = false;
            }
            c if expect_name && c != ']' && c != '"' => {
                let mut name = c.to_string();
                while let Some(&n) = chars.peek() {
                    match n {
                        '.' | '[' => break,
                        ']' | '"' => return bad("a ] or a quote inside a name"),
                        _ => name.push(n),
                    }
                    chars.next();
                }
                steps.push(Step::Name(name.trim().to_string()));
                expect_name = false;
            }
            _ => return bad("a dot is missing"),
        }
    }
    if steps.is_empty() {
        return bad("it is empty");
    }
    if expect_name {
        return bad("it ends with a dot");
    }
    Ok(steps)
}

/// Finds `key` in the plan `root`: the path to its value (the last key may be one the plan
/// does not have yet: the profile's checks say whether it exists), and the value it has.
pub fn resolve<'a>(root: &'a Value, key: &str) -> Result<(FieldPath, Option<&'a Value>), String> {
    let steps = parse(key)?;
    let mut here = root;
    let mut path = FieldPath::default();
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        let shown = if path.is_empty() {
            "the plan".to_string()
        } else {
            format!("`{path}`")
        };
        let seg = match (here, step) {
            (Value::Table(t), Step::Name(n)) => match t.get(n) {
                Some(_) => Seg::Key(n.clone()),
                None if last => {
                    path.0.push(Seg::Key(n.clone()));
                    return Ok((path, None));
                }
                None => {
                    let keys: Vec<&str> = t.keys().map(String::as_str).collect();
                    return Err(format!("{shown} has no `{n}`; it has {}", keys.join(", ")));
                }
            },
            (Value::Table(t), Step::Index(_)) => {
                let keys: Vec<&str> = t.keys().map(String::as_str).collect();
                return Err(format!(
                    "{shown} is a table, not a list; name one of its keys: {}",
                    keys.join(", ")
                ));
            }
            (Value::Array(a), Step::Index(n)) if *n < a.len() => Seg::Index(*n),
            (Value::Array(a), Step::Index(n)) => {
                return Err(format!(
                    "{shown} has {} entries ([0] to [{}]), so no [{n}]",
                    a.len(),
                    a.len().saturating_sub(1)
                ));
            }
            (Value::Array(a), Step::Name(n)) => Seg::Index(entry(a, n, &shown)?),
            (_, step) => {
                let step = match step {
                    Step::Name(n) => n.clone(),
                    Step::Index(i) => format!("[{i}]"),
                };
                return Err(format!("{shown} is a single value; it has no `{step}`"));
            }
        };
        path.0.push(seg);
        here = get(root, &path).expect("the step was just found");
    }
    Ok((path, Some(here)))
}

/// The entry of an array of tables whose `name` is `n`, or the only one whose `kind` is.
fn entry(items: &[Value], n: &str, shown: &str) -> Result<usize, String> {
    let field = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).map(str::to_string);
    if let Some(i) = items
        .iter()
        .position(|v| field(v, "name").as_deref() == Some(n))
    {
        return Ok(i);
    }
    let kinds: Vec<usize> = (0..items.len())
        .filter(|&i| field(&items[i], "kind").as_deref() == Some(n))
        .collect();
    match kinds.as_slice() {
        [i] => Ok(*i),
        [] => {
            let known: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let label = field(v, "name").or_else(|| field(v, "kind"));
                    format!("[{i}] {}", label.unwrap_or_default())
                })
                .collect();
            Err(if known.is_empty() {
                format!("{shown} is empty")
            } else {
                format!(
                    "no entry of {shown} is named `{n}`; its entries are {}",
                    known.join(", ")
                )
            })
        }
        several => {
            let at: Vec<String> = several.iter().map(|i| format!("[{i}]")).collect();
            Err(format!(
                "several entries of {shown} are `{n}` ({}); name one by its index",
                at.join(", ")
            ))
        }
    }
}

/// The value at `path` in `root`, if there is one.
pub fn get<'a>(root: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.0.iter().try_fold(root, |here, seg| match seg {
        Seg::Key(k) => here.get(k.as_str()),
        Seg::Index(i) => here.get(*i),
    })
}

/// Sets the value at `path` in `root` (a path from [`resolve`]: every step but the last
/// exists; the last key of a table is added when missing).
pub fn set(root: &mut Value, path: &FieldPath, value: Value) {
    let Some((last, parents)) = path.0.split_last() else {
        *root = value;
        return;
    };
    let mut here = root;
    for seg in parents {
        here = match seg {
            Seg::Key(k) => here.get_mut(k.as_str()),
            Seg::Index(i) => here.get_mut(*i),
        }
        .expect("a resolved path exists");
    }
    match (here, last) {
        (Value::Table(t), Seg::Key(k)) => {
            t.insert(k.clone(), value);
        }
        (Value::Array(a), Seg::Index(i)) => a[*i] = value,
        _ => unreachable!("a resolved path ends in a table's key or an array's entry"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
        seed = 1
        [load]
        rate = 100.0
        [[strategies]]
        name = "a"
        [[strategies.layers]]
        kind = "retry"
        max_attempts = 3
        [[strategies.layers]]
        kind = "timeout"
        timeout = "100ms"
        [[strategies]]
        name = "v1.2"
        [[strategies.layers]]
        kind = "timeout"
        timeout = "1s"
        [[strategies.layers]]
        kind = "timeout"
        timeout = "2s"
    "#;

    fn plan() -> Value {
        Value::Table(toml::from_str(PLAN).unwrap())
    }

    fn path(key: &str) -> String {
        let root = plan();
        resolve(&root, key)
            .map(|(p, _)| p.to_string())
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    fn error(key: &str) -> String {
        resolve(&plan(), key).unwrap_err()
    }

    #[test]
    fn keys_by_index_by_name_and_by_kind() {
        assert_eq!(path("load.rate"), "load.rate");
        assert_eq!(
            path("strategies[0].layers[0].max_attempts"),
            "strategies[0].layers[0].max_attempts"
        );
        assert_eq!(
            path("strategies.a.layers.retry.max_attempts"),
            "strategies[0].layers[0].max_attempts"
        );
        assert_eq!(
            path("strategies.\"v1.2\".layers[1].timeout"),
            "strategies[1].layers[1].timeout"
        );
        assert_eq!(
            path("load.duration"),
            "load.duration",
            "a key the plan lacks, last only"
        );
        let root = plan();
        let (_, v) = resolve(&root, "strategies.a.layers.timeout.timeout").unwrap();
        assert_eq!(v.and_then(Value::as_str), Some("100ms"));
    }

    #[test]
    fn bad_keys_say_what_is_there() {
        assert!(
            error("lod.rate").contains("the plan has no `lod`"),
            "{}",
            error("lod.rate")
        );
        assert!(error("strategies.b.deadline").contains("[0] a, [1] v1.2"));
        assert!(error("strategies[5].deadline").contains("2 entries"));
        assert!(error("strategies[1].layers.timeout.timeout").contains("several"));
        assert!(error("load.rate.x").contains("single value"));
        assert!(error("load[0]").contains("not a list"));
        for bad in ["", "load..rate", "load.", "load[x]", "load]rate"] {
            assert!(error(bad).contains("is not a key"), "{bad}: {}", error(bad));
        }
    }

    #[test]
    fn set_replaces_and_adds_the_last_key() {
        let mut root = plan();
        let (p, _) = resolve(&root, "strategies.a.layers.retry.max_attempts").unwrap();
        set(&mut root, &p, Value::Integer(5));
        let (p2, _) = resolve(&root, "load.duration").unwrap();
        set(&mut root, &p2, Value::String("20s".into()));
        assert_eq!(get(&root, &p), Some(&Value::Integer(5)));
        assert_eq!(get(&root, &p2).and_then(Value::as_str), Some("20s"));
    }
}
