//! A results file is held in bounded memory whatever it holds: `report`, `compare` and `merge`
//! count its JSON values before they build any (`results::bounds::count_values`), refuse a
//! file past [`MAX_VALUES`] or [`MAX_RESULTS_FILE`], and hold the profile once. Checked by
//! running the readers under an address-space limit (`ulimit -v`): an allocation past it
//! aborts the process, so exit status 0 or 2 under the limit is the bound, counted by the
//! kernel, not timed.
//!
//! The hostile shape is a long array of zeros: 2 bytes a value in the file, 32 to 64 bytes in
//! memory. Before the count, `report` of the at-bound file below took 525 MB (and a 16 MiB
//! file of zeros, now refused, 1.08 GB); it now reads it within 400 MiB of address space.

use resilbench::results::bounds::{MAX_RESULTS_FILE, MAX_VALUES, count_values};

use crate::common::{fixture, stderr};

/// The fixture run-a.json with `zeros` zeros in an array under `profile`, where they are held
/// as long as the file is.
fn with_zeros(zeros: u64) -> String {
    let text = std::fs::read_to_string(fixture("run-a.json")).unwrap();
    let at = text.find("\"profile\": {").unwrap() + "\"profile\": {".len();
    let mut out = String::with_capacity(text.len() + 2 * zeros as usize + 16);
    out.push_str(&text[..at]);
    out.push_str("\"junk\": [");
    for i in 0..zeros {
        out.push_str(if i == 0 { "0" } else { ",0" });
    }
    out.push_str("],");
    out.push_str(&text[at..]);
    out
}

/// Runs the binary with `args` in `dir` under an address-space limit of `kib` KiB.
fn limited(kib: u64, args: &[&str], dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_resilbench"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn a_results_file_is_read_within_a_memory_bound_or_refused_unbuilt() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read(fixture("run-a.json")).unwrap();
    let own = count_values(&base, MAX_VALUES).unwrap();
    // At the bound exactly: every value the file may hold, most of them zeros.
    let at = with_zeros(MAX_VALUES - own - 2);
    assert_eq!(count_values(at.as_bytes(), MAX_VALUES).unwrap(), MAX_VALUES);
    std::fs::write(dir.path().join("at.json"), &at).unwrap();
    let out = limited(
        400 << 10,
        &["report", "at.json", "--out", "r.html"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Two such files side by side: compare holds both.
    let out = limited(800 << 10, &["compare", "at.json", "at.json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // One value more is refused, and nothing is built: 100 MiB of address space is enough.
    let over = with_zeros(MAX_VALUES - own - 1);
    std::fs::write(dir.path().join("over.json"), &over).unwrap();
    for args in [
        &["report", "over.json", "--out", "r.html"][..],
        &["compare", "over.json", "at.json"],
        &["check", "over.json"],
        &["merge", "over.json", "--out", "m"],
    ] {
        let out = limited(100 << 10, args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "over.json: not JSON, or too large: more than {MAX_VALUES} JSON values and keys"
            )),
            "{args:?}: {err}"
        );
    }

    // Bytes are bounded too (a sparse file: no disk used).
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_RESULTS_FILE + 1)
        .unwrap();
    let out = limited(100 << 10, &["report", "huge.json"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("at most {MAX_RESULTS_FILE} are read")),
        "{}",
        stderr(&out)
    );
}
