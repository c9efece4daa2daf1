//! How a run's results can be put in its folder, found by trying before the run (never
//! guessed, never found out after the run): a whole-folder exchange, a rename aside where the
//! file system has no exchange (NFS), or file by file inside the folder where the folder
//! itself cannot be renamed (a mount point, the working folder, the root, a parent that
//! cannot be written).

use std::path::Path;

use super::beside;

/// How the results will be put in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placing {
    /// Written into a hidden folder beside it, then exchanged with it in one step
    /// (`renameat2(RENAME_EXCHANGE)`), the old one removed.
    Exchange,
    /// Written into a hidden folder beside it; the old folder is renamed aside, the new one
    /// renamed to its name, the old one removed (a file system without the exchange).
    RenameAside,
    /// Written into a hidden folder inside it; the old run's files are moved into another
    /// hidden folder inside it (`results.json` first), the new ones moved in (`results.json`
    /// last): the folder itself cannot be renamed, for the reason given.
    InPlace(String),
}

/// How results can be put in `dir` (absolute, links followed), found by trying.
pub(super) fn placing(dir: &Path) -> std::io::Result<Placing> {
    let Some(parent) = dir.parent() else {
        return Ok(Placing::InPlace("it is the root folder".into()));
    };
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize);
    if cwd.is_ok_and(|c| c.starts_with(dir)) {
        return Ok(Placing::InPlace(
            "it is or holds the working folder (renaming it would leave the shell in a \
             removed folder)"
                .into(),
        ));
    }
    if is_mount_point(dir, parent) {
        return Ok(Placing::InPlace(
            "it is a mount point, which cannot be renamed".into(),
        ));
    }
    let probe = beside(dir, "tmp");
    let _ = std::fs::remove_dir_all(&probe);
    if let Err(e) = std::fs::create_dir(&probe) {
        return Ok(Placing::InPlace(format!(
            "no folder can be made beside it, in {} ({e})",
            parent.display()
        )));
    }
    let exchanged = (|| {
        let (a, b) = (probe.join("a"), probe.join("b"));
        std::fs::create_dir(&a)?;
        std::fs::create_dir(&b)?;
        exchange(&a, &b)
    })();
    let _ = std::fs::remove_dir_all(&probe);
    Ok(if exchanged.is_ok() {
        Placing::Exchange
    } else {
        Placing::RenameAside
    })
}

/// Whether `dir` is a mount point: on another device than its parent, or listed as one
/// (a bind mount of a folder of the same file system).
pub(super) fn is_mount_point(dir: &Path, parent: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(dir), std::fs::metadata(parent))
            && a.dev() != b.dev()
        {
            return true;
        }
    }
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|table| {
        table
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .any(|at| Path::new(&unescape_mount(at)) == dir)
    })
}

/// A mount point as `/proc/self/mountinfo` writes it: space, tab, newline and backslash as
/// three octal digits (`\040`).
pub(super) fn unescape_mount(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Exchanges two paths in one step (Linux's `renameat2` with `RENAME_EXCHANGE`).
#[cfg(target_os = "linux")]
pub(crate) fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_as_the_kernel_escapes_them() {
        assert_eq!(unescape_mount("/mnt/a\\040b\\134c"), "/mnt/a b\\c");
        assert_eq!(unescape_mount("/plain\\"), "/plain\\");
        assert!(is_mount_point(Path::new("/proc"), Path::new("/")));
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("x");
        std::fs::create_dir(&inner).unwrap();
        assert!(!is_mount_point(&inner, dir.path()));
    }
}
