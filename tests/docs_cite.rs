//! Every test the docs cite exists: a renamed or mistyped test name in docs/strategies.md or
//! docs/reliability.md fails here, not in a reader's search.
//!
//! A citation is a backticked snake_case name with at least two underscores (test names are
//! sentences) in a table's `test` column or after "Test:" / "Tests:" up to the end of its
//! paragraph or list item; `prefix_*` names a family of tests.

use std::collections::BTreeSet;
use std::path::Path;

const DOCS: [&str; 2] = ["docs/strategies.md", "docs/reliability.md"];

/// The backticked spans of `text`.
fn spans(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

fn looks_like_a_test(name: &str) -> bool {
    let stem = name.strip_suffix('*').unwrap_or(name);
    stem.starts_with(|c: char| c.is_ascii_lowercase())
        && stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && stem.matches('_').count() >= 2
}

/// The test names `doc` cites, with their line numbers.
fn cited(doc: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let (mut test_column, mut in_tests) = (false, false);
    for (i, line) in doc.lines().enumerate() {
        if line.starts_with('|') {
            let last = line
                .trim()
                .trim_matches('|')
                .rsplit('|')
                .next()
                .unwrap_or("");
            if last.trim() == "test" {
                test_column = true;
            } else if test_column {
                out.extend(spans(last).map(|n| (i + 1, n.to_string())));
            }
            continue;
        }
        test_column = false;
        let mut rest = line;
        if let Some(at) = line.find("Tests:").or_else(|| line.find("Test:")) {
            in_tests = true;
            rest = &line[at..];
        } else if line.trim().is_empty() || line.trim_start().starts_with("- ") {
            in_tests = false;
        }
        if in_tests {
            out.extend(spans(rest).map(|n| (i + 1, n.to_string())));
        }
    }
    out.retain(|(_, n)| looks_like_a_test(n));
    out
}

/// The names of every `fn` under `dir`.
fn functions(dir: &Path, names: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            functions(&path, names);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for part in text.split("fn ").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                names.insert(name);
            }
        }
    }
}

#[test]
fn every_test_the_docs_cite_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names = BTreeSet::new();
    functions(&root.join("src"), &mut names);
    functions(&root.join("tests"), &mut names);
    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in DOCS {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for (line, name) in cited(&text) {
            checked += 1;
            let found = match name.strip_suffix('*') {
                Some(prefix) => names.iter().any(|n| n.starts_with(prefix)),
                None => names.contains(&name),
            };
            if !found {
                missing.push(format!("{doc}:{line}: `{name}`"));
            }
        }
    }
    assert!(
        checked > 80,
        "only {checked} citations found: the reader broke"
    );
    assert!(
        missing.is_empty(),
        "cited tests that do not exist:\n{}",
        missing.join("\n")
    );
}
