//! The run folder: its default name, a check that it can be written before the run, and the
//! results written into it, whole.
//!
//! A run folder always holds one run. Its files (results.json, one `.hlog` per strategy,
//! report.html) are written into a fresh hidden folder beside it (`.NAME.tmp-PID`), each
//! synced, and that folder is then put in the run folder's place in one step: renamed to it
//! when there is none, or exchanged with the old one (`renameat2(RENAME_EXCHANGE)` on Linux)
//! and the old one removed. So a SIGKILL, a full disk or a failed write at any moment leaves
//! the previous run or the new one, never the new `.hlog` files beside the old results. (Where
//! the exchange is not available, the old folder is first renamed aside, `.NAME.old-PID`: a
//! kill between the two renames leaves it there, whole, and no run folder.) A kill can leave
//! the hidden folder beside the run folder.
//!
//! Because the whole folder is replaced, a folder that already exists must hold nothing but a
//! run's files: anything else (the profile, notes) is refused before the run, never deleted.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::RunError;
use crate::profile::Plan;
use crate::record::hlog;
use crate::results::Results;

/// The default run folder: `reports/<profile>-<UTC timestamp>`.
pub fn default_out_dir(plan: &Plan) -> PathBuf {
    let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let base = Path::new("reports").join(format!("{}-{stamp}", hlog::tag_for(&plan.name)));
    // A run of the same second whose folder is already in place gets a suffix. Nothing claims
    // the folder while a run runs (it is put in place at the end), so two runs started together
    // pick the same name here (review H1, not fixed on this branch).
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

/// Whether a file of a run folder is one a run writes (or a run's temporary file).
fn is_run_file(name: &str) -> bool {
    matches!(name, "results.json" | "report.html")
        || name.ends_with(".hlog")
        || (name.starts_with('.') && name.contains(".tmp-"))
}

/// Checks, before the run, that the run folder can be written: it is absent, or a folder of
/// a run's files only, and a folder can be made beside it. Nothing is left behind.
pub fn prepare_out_dir(dir: &Path) -> Result<(), RunError> {
    let write = |error| RunError::Write {
        path: dir.to_path_buf(),
        error,
    };
    if dir.exists() {
        check_run_folder(dir).map_err(write)?;
    }
    let staging = staging_path(dir, "tmp");
    if let Some(parent) = staging.parent().filter(|p| !p.exists()) {
        std::fs::create_dir_all(parent).map_err(write)?;
    }
    std::fs::create_dir(&staging).map_err(write)?;
    let probe = std::fs::write(staging.join("probe"), b"");
    let _ = std::fs::remove_dir_all(&staging);
    probe.map_err(write)
}

/// Fails (naming the first one) if `dir` is not a folder or holds anything but a run's files.
fn check_run_folder(dir: &Path) -> std::io::Result<()> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "Not a directory",
        ));
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_file() || !is_run_file(&name) {
            return Err(std::io::Error::other(format!(
                "it holds `{name}`, which is not a run's file; a run replaces its folder \
                 whole, so give an empty or a new folder"
            )));
        }
    }
    Ok(())
}

/// `.NAME.KIND-PID` beside `dir`.
fn staging_path(dir: &Path, kind: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join(format!(".{name}.{kind}-{}", std::process::id()))
}

/// The hidden folder being written, if any: a process that exits at a second signal removes
/// it ([`abandon_writing`]).
static WRITING: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Removes the hidden folder being written, if any (a process about to exit mid-write).
pub fn abandon_writing() {
    if let Some(staging) = WRITING.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = std::fs::remove_dir_all(staging);
    }
}

/// Writes `results.json` and one `.hlog` per strategy into `dir`, replacing it whole.
/// Returns the path of `results.json`.
pub fn write_outputs(dir: &Path, results: &Results) -> Result<PathBuf, RunError> {
    write_folder(dir, results, &[])
}

/// Writes a run folder whole: `results.json`, one `.hlog` per strategy and the `extra` files
/// (name, bytes: report.html), into a hidden folder beside `dir`, then put in its place (the
/// module's doc says how). An error names the file as it would be in `dir`. Returns the path
/// of `results.json`.
pub fn write_folder(
    dir: &Path,
    results: &Results,
    extra: &[(&str, &[u8])],
) -> Result<PathBuf, RunError> {
    let staging = staging_path(dir, "tmp");
    let write = |name: &str| {
        let path = dir.join(name);
        move |error| RunError::Write { path, error }
    };
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|error| RunError::Write {
        path: dir.to_path_buf(),
        error,
    })?;
    *WRITING.lock().unwrap_or_else(|e| e.into_inner()) = Some(staging.clone());
    let written = (|| {
        let names = hlog::file_names(results.strategies.iter().map(|s| s.name.as_str()));
        for (s, name) in results.strategies.iter().zip(&names) {
            let started = SystemTime::UNIX_EPOCH + Duration::from_millis(s.start_ms);
            let bytes = hlog::write(&s.intervals, started, &s.name);
            write_synced(&staging.join(name), &bytes).map_err(write(name))?;
        }
        write_synced(&staging.join("results.json"), results.to_json().as_bytes())
            .map_err(write("results.json"))?;
        for (name, bytes) in extra {
            write_synced(&staging.join(name), bytes).map_err(write(name))?;
        }
        sync_dir(&staging);
        put_in_place(&staging, dir).map_err(|error| RunError::Write {
            path: dir.to_path_buf(),
            error,
        })
    })();
    *WRITING.lock().unwrap_or_else(|e| e.into_inner()) = None;
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    written.map(|()| dir.join("results.json"))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Puts the written folder `staging` where `dir` is, in one step where the system allows it.
fn put_in_place(staging: &Path, dir: &Path) -> std::io::Result<()> {
    let parent = staging.parent().unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::rename(staging, dir)?;
        sync_dir(parent);
        return Ok(());
    }
    // Checked again: files may have been put there during the run.
    check_run_folder(dir)?;
    if exchange(staging, dir).is_ok() {
        // `staging` now holds the previous run.
        sync_dir(parent);
        let _ = std::fs::remove_dir_all(staging);
        return Ok(());
    }
    let old = staging_path(dir, "old");
    std::fs::rename(dir, &old)?;
    if let Err(e) = std::fs::rename(staging, dir) {
        let _ = std::fs::rename(&old, dir);
        return Err(e);
    }
    sync_dir(parent);
    let _ = std::fs::remove_dir_all(old);
    Ok(())
}

/// Exchanges two paths in one step (Linux's `renameat2` with `RENAME_EXCHANGE`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}
