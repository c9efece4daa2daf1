//! The run folder: its default name, a check that it can be written before the run, and the
//! results written into it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::RunError;
use crate::profile::Plan;
use crate::record::hlog;
use crate::results::{Results, write_atomic};

/// The default run folder: `reports/<profile>-<UTC timestamp>`.
pub fn default_out_dir(plan: &Plan) -> PathBuf {
    let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let base = Path::new("reports").join(format!("{}-{stamp}", hlog::tag_for(&plan.name)));
    // Two runs started in the same second get their own folders.
    let mut dir = base.clone();
    let mut n = 2;
    while dir.exists() {
        dir = base.with_file_name(format!(
            "{}-{n}",
            base.file_name().unwrap_or_default().to_string_lossy()
        ));
        n += 1;
    }
    dir
}

/// Creates the run folder, failing before the run if it cannot be written.
/// Returns whether the folder was created (so a run that fails can remove it again).
pub fn prepare_out_dir(dir: &Path) -> Result<bool, RunError> {
    let write = |error| RunError::Write {
        path: dir.to_path_buf(),
        error,
    };
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(write)?;
    let probe = dir.join(format!(".resilbench-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(write)?;
    let _ = std::fs::remove_file(probe);
    Ok(created)
}

/// Writes `results.json` and one `.hlog` per strategy into `dir`, each atomically. Returns the
/// path of `results.json`.
pub fn write_outputs(dir: &Path, results: &Results) -> Result<PathBuf, RunError> {
    for (s, name) in results.strategies.iter().zip(hlog::file_names(
        results.strategies.iter().map(|s| s.name.as_str()),
    )) {
        let path = dir.join(name);
        let started = SystemTime::UNIX_EPOCH + Duration::from_millis(s.start_ms);
        write_atomic(&path, &hlog::write(&s.intervals, started, &s.name))
            .map_err(|error| RunError::Write { path, error })?;
    }
    let path = dir.join("results.json");
    write_atomic(&path, results.to_json().as_bytes()).map_err(|error| RunError::Write {
        path: path.clone(),
        error,
    })?;
    Ok(path)
}
