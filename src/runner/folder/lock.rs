//! A run folder's lock: `.resilbench.lock` inside it, `flock`ed by the process writing the
//! folder, so that a second run into it is refused instead of replacing the first one's
//! results when both end. The lock goes with the process, even one killed outright, so a lock
//! file left behind is simply taken over; it holds the writer's pid, for the refusal's words.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

/// The lock file inside a folder being written.
pub const LOCK: &str = ".resilbench.lock";

/// A folder's lock: a file inside it, `flock`ed while this process writes the folder.
#[derive(Debug)]
pub(crate) struct FolderLock {
    file: File,
}

/// The lock is another process's (its pid, as " (pid N)", when it wrote it).
#[derive(Debug)]
pub(crate) struct Held(pub String);

impl FolderLock {
    /// Locks `dir`, or says who holds it. An error of the file system's (no locks on it) is
    /// not one: the folder is then used unlocked, as before locks.
    pub(crate) fn take(dir: &Path) -> std::io::Result<Result<Self, Held>> {
        let path = dir.join(LOCK);
        for _ in 0..8 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            match try_lock(&file) {
                Ok(true) => {}
                Ok(false) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    let pid = text.trim();
                    let holder = if pid.is_empty() || pid.len() > 20 {
                        String::new()
                    } else {
                        format!(" (pid {pid})")
                    };
                    return Ok(Err(Held(holder)));
                }
                // No locks here (some network file systems): used as it is.
                Err(_) => {}
            }
            // Still the file at that path? A run that put its folder in place meanwhile took
            // the old one (and this lock file with it) away.
            if same_file(&file, &path) {
                let _ = file.set_len(0);
                let _ = write!(file, "{}", std::process::id());
                return Ok(Ok(Self { file }));
            }
        }
        Err(std::io::Error::other(
            "its lock file kept being replaced (another process is writing it)",
        ))
    }

    /// Removes the lock file (if it is still this lock's) and lets the lock go.
    pub(crate) fn release(self, dir: &Path) {
        let path = dir.join(LOCK);
        if same_file(&self.file, &path) {
            let _ = std::fs::remove_file(&path);
        }
        drop(self.file);
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        matches!(
            (file.metadata(), std::fs::metadata(path)),
            (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino()
        )
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// Takes `file`'s lock without waiting: false if another process holds it.
#[cfg(target_os = "linux")]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use rustix::fs::{FlockOperation, flock};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}
