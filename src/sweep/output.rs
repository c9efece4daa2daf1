//! The sweep folder: `sweep.json`, `sweep.html` and `points/`, one run folder per point.
//!
//! Each point's folder is written whole by the runner ([`crate::runner::write_outputs`]: a
//! hidden folder beside it, then put in its place), so a point is never half-written. The
//! sweep folder itself must hold nothing but a sweep's files: a folder holding anything else
//! (a profile, notes) is refused before the sweep, never emptied; one holding an earlier
//! sweep is refused too unless `--force`, and then its sweep files are removed first, so the
//! folder never mixes points of two grids.

use std::path::Path;

use crate::runner::RunError;

/// Whether a name in a sweep folder is one a sweep writes (or a temporary file of one).
fn is_sweep_file(name: &str) -> bool {
    matches!(name, "sweep.json" | "sweep.html" | "points")
        || (name.starts_with('.') && name.contains(".tmp-"))
}

/// Makes the sweep folder `dir` ready before anything runs: created if absent; refused if it
/// holds anything but a sweep's files, or an earlier sweep without `force` (with `force`, the
/// earlier sweep's files are removed); and checked writable.
pub fn prepare(dir: &Path, force: bool) -> Result<(), RunError> {
    let fail = |error| RunError::Write {
        path: dir.to_path_buf(),
        error,
    };
    let other = |message: String| RunError::Options(format!("--out {}: {message}", dir.display()));
    if dir.exists() {
        if !dir.is_dir() {
            return Err(other("is not a folder".into()));
        }
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(fail)?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        if let Some(name) = names.iter().find(|n| !is_sweep_file(n)) {
            return Err(other(format!(
                "the folder holds `{name}`, which is not a sweep's file; give an empty or a new \
                 folder"
            )));
        }
        if !names.is_empty() && !force {
            return Err(other(format!(
                "the folder already holds a sweep ({}); give a new folder, or --force to \
                 replace it",
                names.join(", ")
            )));
        }
        for name in &names {
            let path = dir.join(name);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|error| RunError::Write { path, error })?;
        }
    }
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".probe.tmp-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(fail)?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_a_sweeps_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s");
        prepare(&out, false).unwrap();
        assert!(out.is_dir());
        prepare(&out, false).unwrap();
        std::fs::create_dir_all(out.join("points/0000")).unwrap();
        std::fs::write(out.join("sweep.json"), "{}").unwrap();
        let e = prepare(&out, false).unwrap_err().to_string();
        assert!(
            e.contains("already holds a sweep") && e.contains("--force"),
            "{e}"
        );
        prepare(&out, true).unwrap();
        assert!(!out.join("points").exists() && !out.join("sweep.json").exists());
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let e = prepare(&out, true).unwrap_err().to_string();
        assert!(e.contains("`notes.txt`"), "{e}");
        assert!(out.join("notes.txt").exists(), "never deleted");
    }
}
