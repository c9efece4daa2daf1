//! The run folder: reserved before the run (made, locked, checked), so that two runs racing
//! for one folder never lose one, and put in place whole by each of its three ways (an
//! exchange, a rename aside, file by file inside a folder that cannot be renamed: `--out .`,
//! a mount point), a kill at any moment leaving one whole run.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use resilbench::results::Results;
use resilbench::runner::{self, OutDir, Placing};

use crate::common::{bin, plan, resilbench, run_virtual, stderr, stdout};

/// The strategy names of the run in `dir`, after checking its `.hlog` files are that run's.
fn run_in(dir: &Path) -> String {
    let r = Results::read(&dir.join("results.json")).unwrap();
    let names: Vec<&str> = r.strategies.iter().map(|s| s.name.as_str()).collect();
    let mut hlogs: Vec<String> = files(dir)
        .into_iter()
        .filter(|n| n.ends_with(".hlog"))
        .collect();
    hlogs.sort();
    let expected: Vec<String> = names.iter().map(|n| format!("{n}.hlog")).collect();
    assert_eq!(hlogs, expected, "{}", dir.display());
    names.join("")
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn profile(dir: &Path, file: &str, names: [&str; 2], duration: &str) {
    std::fs::write(
        dir.join(file),
        format!(
            "[load]\nrate = 200\nduration = \"{duration}\"\n[[strategies]]\nname = \"{}\"\n\
             [[strategies]]\nname = \"{}\"\n",
            names[0], names[1]
        ),
    )
    .unwrap();
}

/// Two runs into one `--out`: the second is refused at its start, naming the first, whether
/// or not it has `--force`, and the first's run is written. Runs without `--out` started
/// together each get a folder of their own.
#[test]
fn two_runs_racing_for_one_folder_never_lose_one() {
    let dir = tempfile::tempdir().unwrap();
    profile(dir.path(), "slow.toml", ["a", "b"], "1s");
    let first = bin()
        .args(["run", "slow.toml", "-q", "--out", "x"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = dir.path().join("x/.resilbench.lock");
    let started = Instant::now();
    while !lock.exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "no lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    for force in [false, true] {
        let mut args = vec!["run", "slow.toml", "-q", "--clock", "virtual", "--out", "x"];
        if force {
            args.push("--force");
        }
        let second = resilbench(&args, dir.path());
        assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
        let said = format!(
            "--out x: another resilbench run (pid {}) is writing into this folder",
            first.id()
        );
        assert!(stderr(&second).contains(&said), "{}", stderr(&second));
        assert!(stdout(&second).is_empty(), "refused before the run");
    }
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(run_in(&dir.path().join("x")), "ab");
    assert!(!lock.exists(), "the lock goes with the run");

    // Four runs with no --out, started at once: four folders, four runs.
    let children: Vec<_> = (0..4)
        .map(|_| {
            bin()
                .args(["run", "slow.toml", "-q", "--clock", "virtual"])
                .current_dir(dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut printed = std::collections::BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let line = stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("results: ").map(str::to_string))
            .unwrap();
        printed.insert(line);
    }
    assert_eq!(printed.len(), 4, "{printed:?}");
    let folders = files(&dir.path().join("reports"));
    assert_eq!(folders.len(), 4, "{folders:?}");
    for f in folders {
        assert_eq!(run_in(&dir.path().join("reports").join(f)), "ab");
    }
}

/// `--out .`: the working folder cannot be renamed, so the run is put in it file by file;
/// a rerun needs `--force` and replaces it; a file not a run's is refused before the run.
#[test]
fn out_dot_is_written_in_place() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("here");
    std::fs::create_dir(&dir).unwrap();
    profile(top.path(), "old.toml", ["a", "b"], "2s");
    profile(top.path(), "new.toml", ["c", "d"], "2s");
    let run = |p: &str, force: bool| {
        let mut args = vec!["run", p, "-q", "--clock", "virtual", "--out", "."];
        if force {
            args.push("--force");
        }
        resilbench(&args, &dir)
    };
    let first = run("../old.toml", false);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(run_in(&dir), "ab");
    assert_eq!(
        files(&dir),
        ["a.hlog", "b.hlog", "report.html", "results.json"],
        "nothing hidden left"
    );
    let refused = run("../new.toml", false);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("--out .: the folder already holds files"));
    let second = run("../new.toml", true);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(run_in(&dir), "cd");
    assert_eq!(files(&dir).len(), 4, "{:?}", files(&dir));
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let foreign = run("../old.toml", true);
    assert_eq!(foreign.status.code(), Some(2));
    assert!(
        stderr(&foreign).contains("it holds `notes.txt`, which is not a run's file"),
        "{}",
        stderr(&foreign)
    );
    assert!(stdout(&foreign).is_empty(), "refused before the run");
    assert_eq!(run_in(&dir), "cd");
}

/// `--out` on a mount point (`docker run -v …:/out … --out /out`): written in place, first
/// into the empty mount and then over a run with `--force`. Made in a user and mount
/// namespace (`unshare -m`, or `-rm` for a user): skipped where neither is allowed, unless CI
/// is set.
#[test]
fn a_mount_point_is_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    profile(dir.path(), "old.toml", ["a", "b"], "2s");
    profile(dir.path(), "new.toml", ["c", "d"], "2s");
    // A mount namespace of its own: as root `unshare -m` is enough; otherwise a user
    // namespace too (`-rm`), where the kernel allows unprivileged ones.
    let works = |flags: &str| {
        std::process::Command::new("unshare")
            .args([flags, "true"])
            .status()
            .is_ok_and(|s| s.success())
    };
    let Some(flags) = ["-m", "-rm"].into_iter().find(|f| works(f)) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "neither unshare -m nor unshare -rm works here, and CI is set"
        );
        eprintln!("skipped: no mount namespace can be made here (unshare -m, unshare -rm)");
        return;
    };
    let bin = env!("CARGO_BIN_EXE_resilbench");
    let m = mnt.display();
    let script = format!(
        "set -e; mount -t tmpfs none {m}; \
         {bin} run old.toml -q --clock virtual --out {m} > /dev/null; \
         {bin} run new.toml -q --clock virtual --out {m} --force > /dev/null; \
         ls -A {m}; cat {m}/results.json"
    );
    let out = std::process::Command::new("unshare")
        .args([flags, "sh", "-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (listing, json) = text.split_at(text.find('{').unwrap());
    assert_eq!(
        listing.split_whitespace().collect::<Vec<_>>(),
        ["c.hlog", "d.hlog", "report.html", "results.json"]
    );
    let r: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(r["strategies"][1]["name"], "d");
    assert!(files(&mnt).is_empty(), "the mount was the namespace's only");
}

/// Each way of putting a run in place, forced: the new run replaces the old one whole and
/// nothing is left beside or inside it; a folder whose run changed after it was reserved is
/// left alone, and the new run is kept whole beside it, named in the error.
#[test]
fn every_placing_replaces_the_run_whole_or_keeps_both() {
    let old = run_virtual(&plan(
        "[load]\nrate = 100\nduration = \"2s\"\n[[strategies]]\nname = \"a\"\n",
    ));
    let new = run_virtual(&plan(
        "[load]\nrate = 100\nduration = \"2s\"\n[[strategies]]\nname = \"b\"\n",
    ));
    let top = tempfile::tempdir().unwrap();
    let ways = [
        Placing::Exchange,
        Placing::RenameAside,
        Placing::InPlace("a test".into()),
    ];
    for (i, way) in ways.into_iter().enumerate() {
        let dir = top.path().join(format!("run{i}"));
        runner::write_outputs(&dir, &old).unwrap();
        assert_eq!(run_in(&dir), "a");
        let mut out = OutDir::reserve(&dir, true).unwrap();
        out.force_placing(way.clone());
        runner::write_folder(out, &new, &[("report.html", b"<p>")]).unwrap();
        assert_eq!(run_in(&dir), "b", "{way:?}");
        assert_eq!(files(&dir), ["b.hlog", "report.html", "results.json"]);
        assert_eq!(
            files(top.path()),
            (0..=i).map(|j| format!("run{j}")).collect::<Vec<_>>()
        );

        // Changed after the reservation (a file system without locks): left alone.
        let mut out = OutDir::reserve(&dir, true).unwrap();
        out.force_placing(way.clone());
        std::fs::remove_file(dir.join("report.html")).unwrap();
        let e = runner::write_folder(out, &old, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("its files changed during the run"), "{e}");
        assert_eq!(run_in(&dir), "b", "{way:?}");
        let kept = e.split("kept whole in ").nth(1).unwrap();
        assert!(kept.contains(".failed-"), "{e}");
        assert_eq!(run_in(Path::new(kept)), "a", "{way:?}");
        std::fs::remove_dir_all(kept).unwrap();
    }
}

/// Reruns into `--out .` killed at moments spread over the run: the folder always holds one
/// whole run, or (killed among the moves) no results.json and the previous run whole in
/// `.resilbench.old-PID` inside it.
#[test]
fn a_rerun_in_place_killed_at_any_moment_keeps_a_whole_run() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("here");
    std::fs::create_dir(&dir).unwrap();
    profile(top.path(), "old.toml", ["a", "b"], "3s");
    profile(top.path(), "new.toml", ["c", "d"], "3s");
    let args = |p: &'static str| {
        [
            "run", p, "--clock", "virtual", "--out", ".", "-q", "--force",
        ]
    };
    let started = Instant::now();
    let first = resilbench(&args("../old.toml"), &dir);
    assert!(first.status.success(), "{}", stderr(&first));
    let whole = started.elapsed().as_millis() as u64;
    for i in 0..10u64 {
        let child = bin()
            .args(args(if i % 2 == 0 {
                "../new.toml"
            } else {
                "../old.toml"
            }))
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = whole * (6 + i) / 14;
        std::thread::sleep(Duration::from_millis(delay));
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait_with_output();
        if dir.join("results.json").exists() {
            run_in(&dir);
        } else {
            let aside = files(&dir)
                .into_iter()
                .find(|n| n.starts_with(".resilbench.old-"))
                .unwrap_or_else(|| panic!("killed at {delay} ms: {:?}", files(&dir)));
            run_in(&dir.join(aside));
            // Put back by hand, as the user would, for the next round.
            let again = resilbench(&args("../old.toml"), &dir);
            assert!(again.status.success(), "{}", stderr(&again));
        }
    }
}
