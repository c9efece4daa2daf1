//! docs/ci.md works as written: every `sh` block, then the GitHub Actions job's `run:` steps
//! (after its build), run in order by bash in a folder holding copies of the repository's
//! `profiles/` and `docs/`, with `resilbench` (and `./target/release/resilbench`) the binary
//! under test. Each command must exit 0.

use std::path::Path;
use std::process::Command;

/// The commands of docs/ci.md, in page order: each `sh` block's lines (a trailing `\` joins
/// the next line), then the `run:` steps of the `yaml` block (a `>` step folds its lines).
fn commands(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<&str> = None;
    let mut pending = String::new();
    let mut yaml: Vec<&str> = Vec::new();
    for line in page.lines() {
        if let Some(lang) = line.strip_prefix("```") {
            block = match block {
                None => Some(if lang.is_empty() { "plain" } else { lang }),
                Some(_) => None,
            };
            continue;
        }
        match block {
            Some("sh") => {
                let line = line.trim_end();
                if let Some(start) = line.strip_suffix('\\') {
                    pending.push_str(start);
                    pending.push(' ');
                } else {
                    pending.push_str(line);
                    if !pending.trim().is_empty() {
                        out.push(std::mem::take(&mut pending));
                    }
                    pending.clear();
                }
            }
            Some("yaml") => yaml.push(line),
            _ => {}
        }
    }
    // `- run: cmd`, or `- run: >` followed by more-indented lines folded with spaces.
    let mut i = 0;
    while i < yaml.len() {
        if let Some(rest) = yaml[i].trim_start().strip_prefix("- run:") {
            let rest = rest.trim();
            if rest == ">" {
                let indent = yaml[i].len() - yaml[i].trim_start().len();
                let mut folded = Vec::new();
                i += 1;
                while i < yaml.len() && yaml[i].len() - yaml[i].trim_start().len() > indent {
                    folded.push(yaml[i].trim());
                    i += 1;
                }
                out.push(folded.join(" "));
                continue;
            }
            out.push(rest.to_string());
        }
        i += 1;
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn every_command_of_docs_ci_md_works_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/ci.md")).unwrap();
    let commands = commands(&page);
    assert!(commands.len() >= 8, "{commands:#?}");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    copy_dir(&root.join("profiles"), &work.join("profiles"));
    copy_dir(&root.join("docs"), &work.join("docs"));
    let bin = Path::new(env!("CARGO_BIN_EXE_resilbench"));
    for at in ["bin", "target/release"] {
        std::fs::create_dir_all(work.join(at)).unwrap();
        std::os::unix::fs::symlink(bin, work.join(at).join("resilbench")).unwrap();
    }
    let path = format!(
        "{}:{}",
        work.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let summary = work.join("step-summary.md");
    let mut ran = 0;
    for command in &commands {
        if command.starts_with("cargo ") {
            continue; // the job's build: the binary under test is already built
        }
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", command])
            .current_dir(work)
            .env("PATH", &path)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docs/ci.md: `{command}` exited {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 7, "{ran} commands ran");
    // What the page says the commands leave behind.
    for file in [
        "reports/gate.xml",
        "reports/gate.md",
        "out/gate.xml",
        "out/report.html",
    ] {
        assert!(work.join(file).is_file(), "{file}");
    }
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("gate passed"), "{md}");
}

#[test]
fn the_commands_are_read_as_a_shell_would() {
    let page = "x\n```sh\na \\\n  b\n\nc\n```\n```text\nnot run\n```\n```yaml\n    - run: cargo build\n    - run: >\n        d e\n        f\n    - run: g\n```\n";
    assert_eq!(commands(page), ["a    b", "c", "cargo build", "d e f", "g"]);
}
