//! The module graph follows the data flow: every `crate::` path in `src/` (outside tests and
//! comments) goes to the same layer or one below, and no modules of one layer import each
//! other in a circle. A failure names the file and line of the edge that breaks the rule.
//!
//! The layers (docs/architecture.md, "Layers"; src/lib.rs shows the same map):
//! 0 vocabulary → 1 data → 2 mechanisms → 3 orchestration → 4 readers → 5 edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of the library, by layer.
const LAYERS: [(&str, &[&str]); 6] = [
    (
        "vocabulary",
        &[
            "clock", "keyed", "template", "protocol", "table", "pb", "hdr",
        ],
    ),
    ("data", &["call", "schema", "profile"]),
    (
        "mechanisms",
        &["strategy", "transport", "backend", "record"],
    ),
    (
        "orchestration",
        &["results", "driver", "progress", "runner", "sweep", "proxy"],
    ),
    (
        "readers",
        &[
            "figure", "document", "headline", "noise", "answer", "gate", "report", "compare",
            "merge", "summary", "export", "choose",
        ],
    ),
    ("edge", &["cli", "commands"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// One `crate::` reference: the file, its line, the module it names.
#[derive(Debug, Clone)]
struct Edge {
    file: PathBuf,
    line: usize,
    from: String,
    to: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/strategy/retry/mod.rs` → `strategy`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The source with test-only items and comments blanked out (newlines kept, so line numbers
/// stay true).
fn code_only(text: &str) -> String {
    let bytes: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = bytes.clone();
    let mut i = 0;
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    while i < bytes.len() {
        // Line comments (doc comments included).
        if bytes[i] == '/' && bytes.get(i + 1) == Some(&'/') {
            let end = bytes[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(bytes.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
            continue;
        }
        // `#[cfg(test)]` and the item after it, to its closing brace or semicolon.
        let rest: String = bytes[i..bytes.len().min(i + 12)].iter().collect();
        if rest == "#[cfg(test)]" {
            let mut j = i + 12;
            let mut depth = 0usize;
            while j < bytes.len() {
                match bytes[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            j += 1;
                            break;
                        }
                    }
                    ';' if depth == 0 => {
                        j += 1;
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            blank(&mut out, i, j);
            i = j;
            continue;
        }
        i += 1;
    }
    out.into_iter().collect()
}

/// Every module named by a `crate::` path in `code`, with its line: `crate::a::b` names `a`;
/// `crate::{a, b::c}` names `a` and `b`.
fn references(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            // `$crate::` inside a macro is the macro's own module, not this one's import.
            if before == Some('$') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            push_first(&mut out, n + 1, &item);
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                push_first(&mut out, n + 1, &item);
            } else {
                push_first(&mut out, n + 1, rest);
            }
        }
    }
    out
}

fn push_first(out: &mut Vec<(usize, String)>, line: usize, path: &str) {
    let name: String = path
        .trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if !name.is_empty() && name != "self" {
        out.push((line, name));
    }
}

fn edges() -> Vec<Edge> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let from = module_of(&src, &file);
        if from == "main" || from == "lib" {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for (line, to) in references(&code) {
            if to != from {
                out.push(Edge {
                    file: file.strip_prefix(src.parent().unwrap()).unwrap().into(),
                    line,
                    from: from.clone(),
                    to,
                });
            }
        }
    }
    out
}

/// Every module `lib.rs` declares has a layer, and every layer's module exists.
#[test]
fn every_module_has_a_layer() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').trim_end_matches(" {").to_string())
        .collect();
    for m in &declared {
        assert!(
            layer_of(m).is_some(),
            "src/lib.rs declares `{m}`, which tests/layers.rs gives no layer"
        );
    }
    for (_, modules) in LAYERS {
        for m in modules {
            assert!(
                declared.contains(*m),
                "tests/layers.rs names `{m}`, which src/lib.rs lacks"
            );
        }
    }
}

/// No import runs up the layers.
#[test]
fn no_module_imports_a_higher_layer() {
    let mut upward = Vec::new();
    for e in edges() {
        let (Some(from), Some(to)) = (layer_of(&e.from), layer_of(&e.to)) else {
            upward.push(format!(
                "{}:{}: `crate::{}` from `{}`: a module without a layer",
                e.file.display(),
                e.line,
                e.to,
                e.from
            ));
            continue;
        };
        if to > from {
            upward.push(format!(
                "{}:{}: `{}` ({} layer) imports `crate::{}` ({} layer, above it)",
                e.file.display(),
                e.line,
                e.from,
                LAYERS[from].0,
                e.to,
                LAYERS[to].0
            ));
        }
    }
    assert!(upward.is_empty(), "{}", upward.join("\n"));
}

/// Within a layer, the modules import each other in one direction only.
#[test]
fn no_modules_import_each_other_in_a_circle() {
    let mut graph: BTreeMap<String, BTreeMap<String, Edge>> = BTreeMap::new();
    for e in edges() {
        graph
            .entry(e.from.clone())
            .or_default()
            .entry(e.to.clone())
            .or_insert(e);
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, Edge>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            let lines: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    let e = &graph[&w[0]][&w[1]];
                    format!(
                        "{}:{}: `{}` imports `crate::{}`",
                        e.file.display(),
                        e.line,
                        w[0],
                        w[1]
                    )
                })
                .collect();
            panic!(
                "modules import each other in a circle:\n{}",
                lines.join("\n")
            );
        }
    }
}

/// The reader of this test: comments and test modules do not count, groups do.
#[test]
fn references_are_read_from_code_only() {
    let code = code_only(
        "use crate::a::b;\n// crate::commented\nuse crate::{c, d::{e, f}};\n\
         #[cfg(test)]\nmod tests {\n    use crate::hidden;\n}\nfn x() { $crate::m::y(); }\n",
    );
    let names: Vec<String> = references(&code).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["a", "c", "d"]);
}
