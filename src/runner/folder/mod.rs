//! The run folder, reserved before the run: made (or checked), locked, and how its results will
//! be put in place decided, so that nothing that can be known before the run fails after it.
//!
//! A run folder holds one run, and a run never replaces another it was not told to (`--force`).
//! So before the run, [`OutDir::reserve`] (a folder named by `--out`) or
//! [`OutDir::reserve_new`] (the default `reports/<profile>-<time>`, or a sweep's point):
//! - makes the folder with `mkdir`, which only one process can do: two runs started in the same
//!   second without `--out` get their own folders (the second takes `…-2`);
//! - locks it: `flock` on a file inside, `.resilbench.lock`, held until the results are in
//!   place. A second run into a folder being written is refused, naming the first one's pid
//!   (its lock goes with the process, even one killed outright: a stale lock file is taken
//!   over). A lock taken on a folder that was replaced meanwhile is let go and taken again on
//!   the folder now there;
//! - checks what it holds: nothing, or a run's files only, and then only with `--force`
//!   (anything else, a profile or notes, is refused, never deleted);
//! - follows a symbolic link: `--out latest` where `latest -> runs/7` replaces `runs/7`, and
//!   `latest` stays a link (a link to nothing is refused);
//! - decides how the results will be put in place ([`Placing`]): a whole-folder swap where the
//!   folder can be renamed (a hidden folder written beside it, then exchanged with it in one
//!   step, or, where the file system has no exchange, NFS for one, the old folder renamed
//!   aside first), or in place, file by file, where it cannot: it is a mount point
//!   (`docker -v …:/out --out /out`), the working folder (`--out .`: renaming it away would
//!   leave the shell in a removed folder), the root, or its parent cannot be written. Each is
//!   tried at the reservation (a folder made beside it, an exchange of two folders made inside
//!   that one), not guessed.
//!
//! A reservation dropped without results (an error before anything was measured) takes its
//! lock file away, and the folder too if it made it.

mod lock;
mod placing;

use std::path::{Path, PathBuf};

use super::RunError;
pub use lock::LOCK;
use lock::{FolderLock, Held};
pub use placing::Placing;
pub(crate) use placing::exchange;

/// A run folder reserved for this process (see the module's doc).
#[derive(Debug)]
pub struct OutDir {
    /// The folder as it was named (messages and printed paths use it).
    pub(super) shown: PathBuf,
    /// The folder, absolute, links followed.
    pub(super) path: PathBuf,
    /// How the results will be put in place.
    pub(super) placing: Placing,
    /// The run files the folder held when it was reserved, each with its size and time:
    /// the results are put in place only if it still holds exactly these.
    pub(super) found: Vec<Fingerprint>,
    /// Whether this reservation made the folder.
    created: bool,
    /// The lock, held until the results are in place.
    lock: Option<FolderLock>,
}

impl OutDir {
    /// Reserves the folder `dir` named by `--out`: refused if another run holds it, if it
    /// holds anything but a run's files, or a run's files without `force`.
    pub fn reserve(dir: &Path, force: bool) -> Result<Self, RunError> {
        let fail = |error| RunError::Write {
            path: dir.to_path_buf(),
            error,
        };
        let target = follow_link(dir).map_err(fail)?;
        let mut created = false;
        for _ in 0..8 {
            match std::fs::create_dir(&target) {
                Ok(()) => created = true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    make_parent(&target).map_err(fail)?;
                    continue;
                }
                Err(e) => return Err(fail(e)),
            }
            let lock = match FolderLock::take(&target) {
                Ok(Ok(lock)) => lock,
                Ok(Err(Held(holder))) => {
                    return Err(RunError::Options(format!(
                        "--out {}: another resilbench run{holder} is writing into this folder; \
                         give another folder, or wait for it to end",
                        dir.display()
                    )));
                }
                // Gone between making and locking it (a run putting its own in place): again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(fail(e)),
            };
            let mut reserved = Self {
                shown: dir.to_path_buf(),
                path: target.clone(),
                placing: Placing::Exchange,
                found: Vec::new(),
                created,
                lock: Some(lock),
            };
            check_free(dir, &target, force)?;
            reserved.found = fingerprints(&target).map_err(fail)?;
            reserved.path = std::fs::canonicalize(&target).map_err(fail)?;
            reserved.placing = placing::placing(&reserved.path).map_err(fail)?;
            return Ok(reserved.listed());
        }
        Err(fail(std::io::Error::other(
            "it kept disappearing while being reserved (another process is replacing it)",
        )))
    }

    /// Reserves a new folder: `base` if no folder has that name, else `base-2`, `base-3`…,
    /// each made with `mkdir`, so that two processes never get the same one.
    pub fn reserve_new(base: &Path) -> Result<Self, RunError> {
        let dir = make_new(base).map_err(|(path, error)| RunError::Write { path, error })?;
        let fail = |error| RunError::Write {
            path: dir.clone(),
            error,
        };
        // Nobody else made it: nobody else locks it.
        let lock = FolderLock::take(&dir).map_err(fail)?.ok();
        let path = std::fs::canonicalize(&dir).map_err(fail)?;
        let placing = placing::placing(&path).map_err(fail)?;
        Ok(Self {
            shown: dir,
            path,
            placing,
            found: Vec::new(),
            created: true,
            lock,
        }
        .listed())
    }

    /// The folder as it was named.
    pub fn dir(&self) -> &Path {
        &self.shown
    }

    /// How the results will be put in place.
    pub fn placing(&self) -> &Placing {
        &self.placing
    }

    /// Lets the folder go once the results are in place: its lock file is removed (the
    /// folder holds the run's files only).
    pub(super) fn finished(mut self) {
        self.created = false;
        if let Some(lock) = self.lock.take() {
            lock.release(&self.path);
        }
        unlist(&self.path);
    }

    /// Listed for [`abandon`], once reserved.
    fn listed(self) -> Self {
        reserved().push((self.path.clone(), self.created));
        self
    }

    /// For tests of each way of putting results in place.
    #[doc(hidden)]
    pub fn force_placing(&mut self, placing: Placing) {
        self.placing = placing;
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            lock.release(&self.path);
        }
        if self.created {
            // Only if empty: never a file of anyone's.
            let _ = std::fs::remove_dir(&self.path);
        }
        unlist(&self.path);
    }
}

/// The folders this process holds (and whether it made them), for [`abandon`]: a process
/// that exits at once (a second signal) runs no destructor.
static RESERVED: std::sync::Mutex<Vec<(PathBuf, bool)>> = std::sync::Mutex::new(Vec::new());

fn reserved() -> std::sync::MutexGuard<'static, Vec<(PathBuf, bool)>> {
    RESERVED.lock().unwrap_or_else(|e| e.into_inner())
}

fn unlist(path: &Path) {
    reserved().retain(|(p, _)| p != path);
}

/// Lets every folder this process holds go, before it exits at once: each lock file
/// removed, and each folder it made removed if still empty.
pub fn abandon() {
    for (path, created) in std::mem::take(&mut *reserved()) {
        let _ = std::fs::remove_file(path.join(LOCK));
        if created {
            let _ = std::fs::remove_dir(&path);
        }
    }
}

/// Makes a new folder: `base` if no folder has that name, else `base-2`, `base-3`…, each with
/// `mkdir`, which only one process can do for a name; its parents are made as needed. The
/// folder made, or the path and error that stopped it.
pub fn make_new(base: &Path) -> Result<PathBuf, (PathBuf, std::io::Error)> {
    make_parent(base).map_err(|e| (base.to_path_buf(), e))?;
    let name = base
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    for n in 1..10_000u32 {
        let dir = if n == 1 {
            base.to_path_buf()
        } else {
            base.with_file_name(format!("{name}-{n}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err((dir, error)),
        }
    }
    Err((
        base.to_path_buf(),
        std::io::Error::other("ten thousand folders of that name exist"),
    ))
}

/// Makes the folders above `dir`.
fn make_parent(dir: &Path) -> std::io::Result<()> {
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent),
        None => Ok(()),
    }
}

/// `dir`, or the folder it links to (followed to the end); a link to nothing is an error.
fn follow_link(dir: &Path) -> std::io::Result<PathBuf> {
    let is_link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return Ok(dir.to_path_buf());
    }
    std::fs::canonicalize(dir).map_err(|e| {
        let to = std::fs::read_link(dir).unwrap_or_default();
        std::io::Error::new(
            e.kind(),
            format!(
                "it is a symbolic link to {}, which cannot be followed ({e}); a run replaces the \
                 folder a link points to",
                to.display()
            ),
        )
    })
}

/// Refuses a folder that is not one, holds anything but a run's files, or holds files
/// without `force` (the message `run` has always given).
fn check_free(shown: &Path, dir: &Path, force: bool) -> Result<(), RunError> {
    let write = |error| RunError::Write {
        path: shown.to_path_buf(),
        error,
    };
    let mut names = names(dir).map_err(write)?;
    names.retain(|n| n != LOCK);
    if !names.is_empty() && !force {
        names.sort();
        let listed = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let more = if names.len() > 3 { ", ..." } else { "" };
        return Err(RunError::Options(format!(
            "--out {}: the folder already holds files ({listed}{more}); give a new folder, or \
             --force to replace the run in it (the new run takes its place whole)",
            shown.display()
        )));
    }
    check_run_folder(dir).map_err(write)
}

/// The names in `dir`.
fn names(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// Whether a name in a run folder is one a run writes: its results, report, `.hlog` and CSV
/// files, the lock, and the hidden temporary files and folders of one being written.
pub(super) fn is_run_file(name: &str) -> bool {
    matches!(
        name,
        "results.json" | "report.html" | "summary.csv" | "timeline.csv" | LOCK
    ) || name.ends_with(".hlog")
        || is_temporary(name)
}

/// A hidden temporary file or folder of a run being written (`.NAME.tmp-PID`), or of an old
/// run being put aside (`.resilbench.old-PID`).
pub(super) fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && (name.contains(".tmp-") || name.contains(".old-"))
}

/// A run file's name, size and modification time.
pub type Fingerprint = (String, u64, Option<std::time::SystemTime>);

/// The run files of `dir` (lock and temporary files aside), each fingerprinted, sorted.
pub(super) fn fingerprints(dir: &Path) -> std::io::Result<Vec<Fingerprint>> {
    let mut found = Vec::new();
    for name in run_files(dir)? {
        let meta = std::fs::symlink_metadata(dir.join(&name))?;
        found.push((name, meta.len(), meta.modified().ok()));
    }
    found.sort();
    Ok(found)
}

/// The run files `dir` holds (its lock and temporary files aside).
pub(super) fn run_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = names(dir)?;
    names.retain(|n| n != LOCK && !is_temporary(n));
    Ok(names)
}

/// Fails (naming the first one) if `dir` is not a folder or holds anything but a run's files.
pub(super) fn check_run_folder(dir: &Path) -> std::io::Result<()> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "Not a directory",
        ));
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        if !is_run_file(&name) || (kind.is_dir() && !is_temporary(&name)) {
            return Err(std::io::Error::other(format!(
                "it holds `{name}`, which is not a run's file; a run replaces its folder's \
                 files, so give an empty or a new folder"
            )));
        }
    }
    Ok(())
}

/// `.NAME.KIND-PID` beside `dir` (an absolute folder with a parent).
pub(super) fn beside(dir: &Path, kind: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    let parent = dir.parent().unwrap_or(Path::new("/"));
    parent.join(format!(".{name}.{kind}-{}", std::process::id()))
}

/// `.resilbench.tmp-PID` inside `dir`.
pub(super) fn inside(dir: &Path) -> PathBuf {
    dir.join(format!(".resilbench.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two reservations of one folder: the second is refused while the first holds it, and
    /// takes it once the first is done; a lock file left by a process that died is taken
    /// over.
    #[test]
    fn a_folder_is_reserved_by_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let first = OutDir::reserve(&out, false).unwrap();
        let e = OutDir::reserve(&out, true).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "another resilbench run (pid {}) is writing into this folder",
                std::process::id()
            )),
            "{e}"
        );
        drop(first);
        assert!(!out.exists(), "an unused reservation takes its folder away");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join(LOCK), "999999").unwrap();
        let again = OutDir::reserve(&out, false).unwrap();
        assert_eq!(again.placing(), &Placing::Exchange);
        drop(again);
        assert!(out.is_dir() && !out.join(LOCK).exists());
    }

    #[test]
    fn new_folders_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("reports/p-1");
        let a = OutDir::reserve_new(&base).unwrap();
        let b = OutDir::reserve_new(&base).unwrap();
        assert_eq!(a.dir(), base);
        assert_eq!(b.dir(), dir.path().join("reports/p-1-2"));
    }

    /// Eight processes' worth of threads asking at once for the same new folder (a sweep and
    /// runs started in the same second) each get their own.
    #[test]
    fn folders_made_at_once_are_each_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("reports/p-sweep-1");
        let made: std::collections::BTreeSet<PathBuf> = std::thread::scope(|s| {
            let all: Vec<_> = (0..8)
                .map(|_| s.spawn(|| make_new(&base).unwrap()))
                .collect();
            all.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(made.len(), 8, "{made:?}");
        assert!(made.contains(&base));
    }
}
