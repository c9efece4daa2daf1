//! Input bounds: what a hostile or careless file can make a reader or a run do is bounded,
//! and checked by counting (sizes, keys, copies), never by timing.
//!
//! Histogram encodings are checked in `src/record/histogram.rs` (a header claiming 4 GiB, a
//! deflate bomb, and a proptest over hostile headers), and the bad-file corpus
//! (`tests/data/bad/results-histogram-claims-4gib.json`, `results-65-status-keys.json`) holds
//! the results files that carry them.

use resilbench::document::ResultsDoc;
use resilbench::profile::validate::{MAX_REPLICAS, MAX_TOTAL_CONNECTIONS};
use resilbench::results::bounds::{MAX_FILE, MAX_STATUS_KEYS};

use crate::common::{fixture_json, plan, resilbench, run_virtual, stderr, write_json};

/// A profile with `n` replicas, each its own latency, and `connections` per replica.
fn replicas_profile(n: usize, connections: u32) -> String {
    let mut text = format!(
        "[load]\nrate = 500\nduration = \"2s\"\nconnections = {connections}\n\
         [[strategies]]\nname = \"s\"\n[backend]\nlatency = \"1ms\"\n"
    );
    for i in 0..n {
        text.push_str(&format!(
            "[[backend.replicas]]\nname = \"r{i}\"\nlatency = \"{}ms\"\n",
            1 + i % 5
        ));
    }
    text
}

/// `[[backend.replicas]]` has a documented limit, refused with the field and the limit (10,000
/// replicas once took 34 s and 11 GB: each replica's model copied every other replica); so
/// has replicas × connections. At the limit a run gives every replica its figures.
#[test]
fn replicas_have_a_limit_and_every_replica_below_it_is_served() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, expect) in [
        (
            "many.toml",
            replicas_profile(10_000, 1),
            format!("backend.replicas: at most {MAX_REPLICAS} replicas, got 10000"),
        ),
        (
            "sockets.toml",
            replicas_profile(32, 64),
            format!(
                "load.connections: 64 connections to each of 32 replicas make 2048; at most {MAX_TOTAL_CONNECTIONS} in all"
            ),
        ),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
        let out = resilbench(&["validate", name], dir.path());
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = stderr(&out);
        assert!(err.starts_with(&format!("error: {name}:")), "{err}");
        assert!(err.contains(&expect), "{err}");
    }
    let at_limit = plan(&replicas_profile(MAX_REPLICAS, 1));
    // Each replica's model is the base with its own settings, and carries no other replica.
    for i in [0, MAX_REPLICAS - 1] {
        assert!(at_limit.backend.replica(i).replicas.is_empty());
    }
    let r = run_virtual(&at_limit);
    let backend = r.strategies[0].backend.as_ref().unwrap();
    assert_eq!(backend.replicas.len(), MAX_REPLICAS);
    assert_eq!(backend.received, r.strategies[0].attempts.total);
    // Round-robin: 1,000 calls over 256 replicas, 3 or 4 each.
    assert!(
        backend
            .replicas
            .iter()
            .all(|x| (3..=4).contains(&x.received)),
        "{:?}",
        backend
            .replicas
            .iter()
            .map(|x| x.received)
            .collect::<Vec<_>>()
    );
}

/// The report's status table is linear in the status keys, which a results file bounds:
/// 100,000 keys are refused as the file is read (they once took the report 14 s), and at the
/// bound, in every strategy, each key is one column, counted.
#[test]
fn status_keys_are_bounded_and_each_is_one_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut json = fixture_json("run-a.json");
    let strategies = json["strategies"].as_array_mut().unwrap();
    for (k, s) in strategies.iter_mut().enumerate() {
        let keys: serde_json::Map<String, serde_json::Value> = (0..MAX_STATUS_KEYS)
            .map(|i| (format!("CODE_{k}_{i}"), 1.into()))
            .collect();
        s["status"] = keys.into();
    }
    let n = strategies.len();
    let path = write_json(dir.path(), "keys.json", &json);
    let doc = ResultsDoc::read(&path).unwrap();
    let html = resilbench::report::render(&doc);
    for k in 0..n {
        for i in 0..MAX_STATUS_KEYS {
            let th = format!("<th>CODE_{k}_{i}</th>");
            assert_eq!(html.matches(&th).count(), 1, "{th}");
        }
    }
    let big: serde_json::Map<String, serde_json::Value> =
        (0..100_000).map(|i| (format!("K{i}"), 1.into())).collect();
    json["strategies"][0]["status"] = big.into();
    let path = write_json(dir.path(), "big.json", &json);
    let err = ResultsDoc::read(&path).unwrap_err().to_string();
    assert!(
        err.contains("field `strategies[0].status`: 100000 keys; at most 64"),
        "{err}"
    );
}

/// A results file larger than the bound is refused from its size, before it is read.
#[test]
fn a_results_file_above_the_size_bound_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    // Sparse: no disk is used, and a reader that read it would hold 256 MiB of zeros.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(MAX_FILE + 1)
        .unwrap();
    let err = ResultsDoc::read(&path).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "{} bytes or more; at most {MAX_FILE}",
            MAX_FILE + 1
        )),
        "{err}"
    );
}

/// Names never reach the terminal raw: a profile or strategy name with control characters
/// or a bidi override is refused, and names from a results file (a profile's, a strategy's)
/// are printed escaped by `compare` (its refusal and warning of unrelated runs included),
/// `check` and `merge`'s summary (its verdict line included). `compare` takes run folders, as
/// `merge` does.
#[test]
fn names_with_control_characters_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        "name = \"a\\u001b[2Jb\"\n[load]\nrate = 1\n[[strategies]]\nname = \"s\"\n",
    )
    .unwrap();
    let out = resilbench(&["validate", "p.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("name: expected printable characters"),
        "{}",
        stderr(&out)
    );
    let mut json = fixture_json("run-a.json");
    json["profile"]["name"] = "evil\u{1b}[2J\u{202e}".into();
    json["strategies"][0]["name"] = "s\u{1b}]0;title\u{7}".into();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    write_json(&dir.path().join("a"), "results.json", &json);
    json["strategies"][0]["name"] = "other".into();
    write_json(dir.path(), "b.json", &json);
    let gate = "allow_untrusted = true\n[limits]\n\"counts.offered\" = \">= 1\"\n";
    std::fs::write(dir.path().join("gate.toml"), gate).unwrap();
    for args in [
        vec!["compare", "a", "b.json"],
        vec!["check", "a", "--gate", "gate.toml"],
    ] {
        let out = resilbench(&args, dir.path());
        let all = format!("{}{}", crate::common::stdout(&out), stderr(&out));
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {all}");
        assert!(
            !all.contains('\u{1b}') && !all.contains('\u{202e}'),
            "{args:?}: {all:?}"
        );
        assert!(all.contains("\\u{1b}"), "{args:?}: {all}");
    }
    // Runs of two profiles, one named with an OSC sequence: compare's refusal and its
    // --force warning name both, escaped.
    json["profile"]["name"] = "x\u{1b}]0;pwned\u{7}".into();
    write_json(dir.path(), "c.json", &json);
    for force in [false, true] {
        let mut args = vec!["compare", "a", "c.json"];
        if force {
            args.push("--force");
        }
        let out = resilbench(&args, dir.path());
        let all = format!("{}{}", crate::common::stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(if force { 0 } else { 2 }), "{all}");
        assert!(all.contains("x\\u{1b}]0;pwned\\u{7}"), "{all}");
        assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all:?}");
    }
    // A bidi override in a strategy name is refused like a control character.
    std::fs::write(
        dir.path().join("q.toml"),
        "[load]\nrate = 1\n[[strategies]]\nname = \"plain\\u202Eevil\"\n",
    )
    .unwrap();
    let out = resilbench(&["validate", "q.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("strategies[0].name"),
        "{}",
        stderr(&out)
    );
    // merge's shards are untrusted input: a strategy name edited to hold escapes reaches the
    // merged summary, its verdict line included, escaped.
    let p = "seed = 9\n[load]\nrate = 300\nduration = \"2s\"\n[[strategies]]\nname = \"plain\"\n\
             [[strategies]]\nname = \"other\"\n";
    std::fs::write(dir.path().join("m.toml"), p).unwrap();
    let evil = "pl\u{1b}[31mRED\u{1b}[0m";
    let evil_hlog = resilbench::record::hlog::file_names([evil]).remove(0);
    for k in 0..2 {
        let shard = format!("s{k}");
        let args = [
            "run",
            "m.toml",
            "--clock",
            "virtual",
            "-q",
            "--shard",
            &format!("{k}/2"),
            "--out",
            &shard,
        ];
        let out = resilbench(&args, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let d = dir.path().join(&shard);
        let mut j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("results.json")).unwrap())
                .unwrap();
        j["strategies"][0]["name"] = evil.into();
        j["profile"]["strategies"][0]["name"] = evil.into();
        std::fs::write(d.join("results.json"), j.to_string()).unwrap();
        std::fs::rename(d.join("plain.hlog"), d.join(&evil_hlog)).unwrap();
    }
    let out = resilbench(&["merge", "s0", "s1", "--out", "merged"], dir.path());
    let all = format!("{}{}", crate::common::stdout(&out), stderr(&out));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("verdict: pl\\u{1b}[31mRED"), "{all}");
    assert!(!all.contains('\u{1b}'), "{all:?}");
}

/// `merge` takes what it is given only if it adds up: a missing, truncated or corrupt shard
/// `.hlog` is refused naming the file (it used to merge with every second's percentiles
/// null), and so are a shard whose index was edited (a copy of shard 0 as shard 1: its
/// calls counted twice) and absurd counts (`offered = 1e15`). Whole shards still merge.
#[test]
fn merge_refuses_shards_that_do_not_add_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        "seed = 9\n[load]\narrival = \"poisson\"\nrate = 300\nduration = \"3s\"\nwarmup = \"1s\"\n\
         [[strategies]]\nname = \"plain\"\n",
    )
    .unwrap();
    for k in 0..2 {
        let out = resilbench(
            &[
                "run",
                "p.toml",
                "--clock",
                "virtual",
                "-q",
                "--shard",
                &format!("{k}/2"),
                "--out",
                &format!("s{k}"),
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let merge =
        |a: &str, b: &str| resilbench(&["merge", a, b, "--out", "m", "--force"], dir.path());
    let whole = merge("s0", "s1");
    assert!(whole.status.success(), "{}", stderr(&whole));
    // A second merge into the same folder replaces the first only with --force.
    let again = resilbench(&["merge", "s0", "s1", "--out", "m"], dir.path());
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("--out m: the folder already holds files"),
        "{}",
        stderr(&again)
    );
    let copy = |to: &str| {
        let to = dir.path().join(to);
        let _ = std::fs::remove_dir_all(&to);
        std::fs::create_dir(&to).unwrap();
        for f in ["results.json", "plain.hlog"] {
            std::fs::copy(dir.path().join("s1").join(f), to.join(f)).unwrap();
        }
        to
    };
    let hlog = std::fs::read_to_string(dir.path().join("s1/plain.hlog")).unwrap();
    let last_line = hlog.lines().last().unwrap().to_string();
    type Spoil<'a> = Box<dyn Fn(&std::path::Path) + 'a>;
    let cases: Vec<(&str, Spoil, String)> = vec![
        (
            "missing",
            Box::new(|d| std::fs::remove_file(d.join("plain.hlog")).unwrap()),
            "missing/plain.hlog: No such file or directory".into(),
        ),
        (
            "truncated",
            Box::new(|d| {
                let cut = &hlog[..hlog.len() - last_line.len() / 2];
                std::fs::write(d.join("plain.hlog"), cut).unwrap();
            }),
            "truncated/plain.hlog: ".into(),
        ),
        (
            "corrupt",
            Box::new(|d| {
                let bad = hlog.replace(&last_line, &last_line.replace('A', "B"));
                std::fs::write(d.join("plain.hlog"), bad).unwrap();
            }),
            "corrupt/plain.hlog: ".into(),
        ),
        (
            "relabelled",
            Box::new(|d| {
                let mut j: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(dir.path().join("s0/results.json")).unwrap(),
                )
                .unwrap();
                j["shard"]["index"] = 1.into();
                std::fs::write(d.join("results.json"), j.to_string()).unwrap();
                std::fs::copy(dir.path().join("s0/plain.hlog"), d.join("plain.hlog")).unwrap();
            }),
            "relabelled/results.json: shard 1/2 offered".into(),
        ),
        (
            "absurd",
            Box::new(|d| {
                let mut j: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(d.join("results.json")).unwrap(),
                )
                .unwrap();
                j["strategies"][0]["counts"]["offered"] = 1_000_000_000_000_000u64.into();
                std::fs::write(d.join("results.json"), j.to_string()).unwrap();
            }),
            "absurd/results.json: strategy `plain`: its counts do not add up (offered 1000000000000000".into(),
        ),
    ];
    for (name, spoil, expect) in cases {
        let folder = copy(name);
        spoil(&folder);
        let out = merge("s0", name);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(&expect), "{name}: {err}");
    }
}
