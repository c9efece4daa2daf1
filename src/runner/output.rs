//! The results written into a reserved run folder ([`OutDir`]), whole.
//!
//! A run folder always holds one run. Its files (results.json, one `.hlog` per strategy, and
//! report.html and the CSV export where asked for) are written into a fresh hidden folder,
//! each synced, and then put in the run folder's place as its reservation decided
//! ([`Placing`]):
//! - exchanged with it in one step (`renameat2(RENAME_EXCHANGE)` on Linux), the old run
//!   removed. A SIGKILL, a full disk or a failed write at any moment leaves the previous run
//!   or the new one, never the new `.hlog` files beside the old results;
//! - where the file system has no exchange, the old folder renamed aside (`.NAME.old-PID`)
//!   first: a kill between the two renames leaves it there, whole, and no run folder;
//! - where the folder cannot be renamed (a mount point, the working folder), file by file:
//!   the old run's files moved into `.resilbench.old-PID` inside it, `results.json` first, then
//!   the new ones moved in, `results.json` last. A kill in between leaves a folder without
//!   `results.json` (no reader takes it for a run) and the old run whole in the hidden folder.
//!
//! The results are put in place only if the folder still holds what it held when it was
//! reserved (its lock keeps other runs out; a file system without locks does not). If it does
//! not, or putting them in place fails, nothing measured is lost: the written folder is kept
//! as `.NAME.failed-PID` and the error names it. A kill can leave the hidden folder beside the
//! run folder.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::RunError;
use super::folder::{self, OutDir, Placing};
use crate::profile::Plan;
use crate::record::hlog;
use crate::results::Results;

/// The default run folder's name: `reports/<profile>-<UTC timestamp>`
/// ([`OutDir::reserve_new`] adds `-2`, `-3`… when a run started in the same second took it).
pub fn default_out_dir(plan: &Plan) -> PathBuf {
    let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    Path::new("reports").join(format!("{}-{stamp}", hlog::tag_for(&plan.name)))
}

/// The hidden folders being written, one per run folder (a sweep writes several at once): a
/// process that exits at a second signal removes them ([`abandon_writing`]). The lock is also
/// held while a folder is put in place, so an exit never cuts that short.
static WRITING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn writing() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    WRITING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the hidden folders being written, if any (a process about to exit mid-write),
/// and lets the reserved run folders go (those it made, empty, removed). A folder being put
/// in place is finished first.
pub fn abandon_writing() {
    let mut slots = writing();
    for staging in std::mem::take(&mut *slots) {
        let _ = std::fs::remove_dir_all(staging);
    }
    folder::abandon();
}

/// Writes `results.json` and one `.hlog` per strategy into `dir`, replacing the run there
/// (a sweep's point; tests). Returns the path of `results.json`.
pub fn write_outputs(dir: &Path, results: &Results) -> Result<PathBuf, RunError> {
    write_folder(OutDir::reserve(dir, true)?, results, &[])
}

/// Writes a run folder whole: `results.json`, one `.hlog` per strategy and the `extra` files
/// (name, bytes: report.html, the CSV export), then puts it in place (the module's doc says
/// how). An error names the file as it would be in the folder. Returns the path of
/// `results.json`.
pub fn write_folder(
    out: OutDir,
    results: &Results,
    extra: &[(&str, &[u8])],
) -> Result<PathBuf, RunError> {
    let shown = out.dir().to_path_buf();
    let staging = match out.placing() {
        Placing::InPlace(_) => folder::inside(&out.path),
        Placing::Exchange | Placing::RenameAside => folder::beside(&out.path, "tmp"),
    };
    let write = |name: &str| {
        let path = shown.join(name);
        move |error| RunError::Write { path, error }
    };
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(write(""))?;
    writing().push(staging.clone());
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
        Ok(())
    })();
    let mut slots = writing();
    let Some(slot) = slots.iter().position(|s| *s == staging) else {
        // Abandoned (a second signal): the process is exiting.
        return Err(write("")(std::io::Error::other("abandoned")));
    };
    slots.swap_remove(slot);
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    // Under the lock: an exit at a second signal waits for this to end.
    match put_in_place(&out, &staging) {
        Ok(()) => {
            out.finished();
            Ok(shown.join("results.json"))
        }
        Err(error) => Err(RunError::Write {
            path: shown,
            error: std::io::Error::other(format!("{error}; {}", keep(&out, &staging))),
        }),
    }
}

/// Keeps a written folder that could not be put in place, as `.NAME.failed-PID` where it is;
/// says where, for the error.
fn keep(out: &OutDir, staging: &Path) -> String {
    let kept = match out.placing() {
        Placing::InPlace(_) => out
            .path
            .join(format!(".resilbench.failed-{}", std::process::id())),
        _ => folder::beside(&out.path, "failed"),
    };
    let _ = std::fs::remove_dir_all(&kept);
    match std::fs::rename(staging, &kept) {
        Ok(()) => format!("the new run is kept whole in {}", kept.display()),
        Err(_) => format!("the new run is kept whole in {}", staging.display()),
    }
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

/// Puts the written folder `staging` in `out`'s place, as its reservation decided; an
/// exchange that fails all the same falls back to the rename aside, and a folder that cannot
/// be renamed after all to the placing file by file.
fn put_in_place(out: &OutDir, staging: &Path) -> std::io::Result<()> {
    let dir = &out.path;
    // Checked again: only the run found at the reservation is replaced.
    folder::check_run_folder(dir)?;
    if folder::fingerprints(dir)? != out.found {
        return Err(std::io::Error::other(
            "its files changed during the run (another process wrote into it), so it was \
             left as it is",
        ));
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    if let Placing::InPlace(_) = out.placing() {
        return in_place(dir, staging);
    }
    if *out.placing() == Placing::Exchange && folder::exchange(staging, dir).is_ok() {
        // `staging` now holds the previous run.
        sync_dir(parent);
        let _ = std::fs::remove_dir_all(staging);
        return Ok(());
    }
    let old = folder::beside(dir, "old");
    if std::fs::rename(dir, &old).is_err() {
        // Nothing moved: the folder cannot be renamed (a mount point not seen as one).
        let inside = folder::inside(dir);
        std::fs::rename(staging, &inside)?;
        return in_place(dir, &inside);
    }
    if let Err(e) = std::fs::rename(staging, dir) {
        let _ = std::fs::rename(&old, dir);
        return Err(e);
    }
    sync_dir(parent);
    let _ = std::fs::remove_dir_all(old);
    Ok(())
}

/// Moves the new run's files from `staging` (inside `dir`) into `dir`: the old run's files
/// aside first, `results.json` first, then the new ones, `results.json` last.
fn in_place(dir: &Path, staging: &Path) -> std::io::Result<()> {
    let old = dir.join(format!(".resilbench.old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&old);
    std::fs::create_dir(&old)?;
    let results_last = |names: &mut Vec<String>| names.sort_by_key(|n| n == "results.json");
    let mut olds = folder::run_files(dir)?;
    results_last(&mut olds);
    for name in olds.iter().rev() {
        std::fs::rename(dir.join(name), old.join(name))?;
    }
    sync_dir(dir);
    let mut news = folder::run_files(staging)?;
    results_last(&mut news);
    for name in &news {
        std::fs::rename(staging.join(name), dir.join(name)).map_err(|e| {
            std::io::Error::other(format!(
                "{e} (the previous run is kept whole in {})",
                old.display()
            ))
        })?;
    }
    sync_dir(dir);
    let _ = std::fs::remove_dir_all(old);
    let _ = std::fs::remove_dir(staging);
    Ok(())
}
