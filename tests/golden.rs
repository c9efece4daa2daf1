//! Each shipped profile's results.json on the virtual clock, byte for byte, against the file
//! kept in `tests/golden/`: a refactoring that changes a single figure, a key's order or a
//! number's formatting fails here, with the first line that differs.
//!
//! The fields that name the machine and the moment (`tool`, `host`, `os`, `cores`,
//! `start_time`) are replaced by `"*"` on both sides. A change that is meant to change the
//! results rewrites the files with `RESILBENCH_BLESS=1 cargo test golden`, and the diff of
//! `tests/golden/` shows what it changed.

use std::path::Path;
use std::process::Command;

/// `text` with the machine's and the moment's values replaced by `"*"`.
fn normalised(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let volatile = [
                "\"tool\": ",
                "\"host\": ",
                "\"os\": ",
                "\"cores\": ",
                "\"start_time\": ",
            ]
            .iter()
            .find(|key| trimmed.starts_with(**key));
            match volatile {
                Some(key) => {
                    let indent = &line[..line.len() - trimmed.len()];
                    let comma = if trimmed.ends_with(',') { "," } else { "" };
                    format!("{indent}{key}\"*\"{comma}")
                }
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn check(name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_resilbench"))
        .arg("run")
        .arg(root.join("profiles").join(format!("{name}.toml")))
        .args(["--clock", "virtual", "--out"])
        .arg(out.path().join("run"))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let got = normalised(&std::fs::read_to_string(out.path().join("run/results.json")).unwrap());
    let golden = root
        .join("tests/golden")
        .join(format!("{name}.results.json"));
    if std::env::var_os("RESILBENCH_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
        return;
    }
    let want = normalised(&std::fs::read_to_string(&golden).unwrap());
    if got != want {
        let (n, (w, g)) = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .find(|(_, (w, g))| w != g)
            .unwrap_or((
                want.lines().count().min(got.lines().count()),
                ("(end of file)", "(end of file)"),
            ));
        panic!(
            "{name}: results.json differs from tests/golden/{name}.results.json at line {}:\n  kept: {w}\n  now:  {g}\n(RESILBENCH_BLESS=1 rewrites the kept files when the change is meant)",
            n + 1
        );
    }
}

macro_rules! golden {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($name);
            }
        )*
    };
}

golden! {
    quickstart => "quickstart",
    service_config => "service-config",
    retry_storm => "retry-storm",
    jitter => "jitter",
    hedging => "hedging",
    outage_breaker => "outage-breaker",
    fan_out => "fan-out",
    idempotency => "idempotency",
    streaming => "streaming",
    client_flavors => "client-flavors",
    sweep_retries => "sweep-retries",
}

/// Every shipped profile but the backend-only sandbox has its kept results. A profile with a
/// `[sweep]` (sweep-retries) is kept as `run` runs it: the profile as written, its base point;
/// its sweep's story is checked in tests/shipped_profiles.rs.
#[test]
fn every_shipped_profile_has_kept_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("profiles")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if stem == "sandbox" {
            continue;
        }
        assert!(
            root.join("tests/golden")
                .join(format!("{stem}.results.json"))
                .exists(),
            "profiles/{stem}.toml has no tests/golden/{stem}.results.json"
        );
    }
}
