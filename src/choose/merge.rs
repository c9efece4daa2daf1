//! Shards of a sweep joined: `sweep --shard K/N` runs every N-th point, and `resilbench merge`
//! given the shards' folders puts their points back together, as one sweep folder.
//!
//! A point is a whole run, so nothing is added up: each shard's point folders are copied (each
//! file atomically) and the points' figures joined; the frontier, the load curves and the
//! verdict are then worked out again from all of them, and say exactly what the unsharded
//! sweep says. The shards must be of the same grid (same keys and values, same base plan,
//! same goal, same clock), all N of them, each once, and complete.

use std::path::{Path, PathBuf};

use super::doc::SweepDoc;
use crate::results::write_atomic;

/// The sweep.json of a shard given as its folder or as the file.
pub fn sweep_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("sweep.json")
    } else {
        path.to_path_buf()
    }
}

/// Whether `path` is a sweep (a folder with a sweep.json, or the file).
pub fn is_sweep(path: &Path) -> bool {
    sweep_file(path).is_file()
        && (path.is_dir() || path.file_name().is_some_and(|n| n == "sweep.json"))
}

/// Joins the shards at `paths` into `out` (created). Returns the merged sweep, written.
pub fn merge(paths: &[PathBuf], out: &Path) -> Result<SweepDoc, String> {
    let mut shards = Vec::new();
    for p in paths {
        let file = sweep_file(p);
        let doc = SweepDoc::read(&file)?;
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        shards.push((p.display().to_string(), dir, doc));
    }
    let Some((first_name, _, first)) = shards.first() else {
        return Err("no shard given".into());
    };
    let count = match first.shard {
        Some(s) => s.count as usize,
        None => {
            return Err(format!(
                "{first_name} is a whole sweep, not a shard (`sweep --shard K/N` writes shards)"
            ));
        }
    };
    let mut seen = vec![None; count];
    for (name, _, doc) in &shards {
        let same = doc.grid == first.grid
            && doc.base == first.base
            && doc.goal == first.goal
            && doc.clock == first.clock
            && doc.points_total == first.points_total
            && doc.strategies == first.strategies;
        if !same {
            return Err(format!(
                "{name} is a shard of another sweep than {first_name} (grid, base plan, goal or \
                 clock differ)"
            ));
        }
        let Some(shard) = doc.shard.filter(|s| s.count as usize == count) else {
            return Err(format!("{name} is not one of {count} shards"));
        };
        if let Some(other) = seen[shard.index as usize].replace(name.clone()) {
            return Err(format!("{name} and {other} are both shard {shard}"));
        }
        let expected = (shard.index as usize..doc.points_total)
            .step_by(count)
            .count();
        if doc.partial
            || doc.points.len() != expected
            || doc.points.iter().any(|p| p.figures.partial)
        {
            return Err(format!(
                "{name} (shard {shard}) is partial: {} of its {expected} points finished; run it \
                 again before merging",
                doc.points.iter().filter(|p| !p.figures.partial).count()
            ));
        }
        if let Some(p) = doc
            .points
            .iter()
            .find(|p| p.index % count != shard.index as usize)
        {
            return Err(format!("{name}: point {} is not shard {shard}'s", p.index));
        }
    }
    if let Some(k) = seen.iter().position(Option::is_none) {
        return Err(format!("shard {k}/{count} is missing"));
    }
    let mut merged = first.clone();
    merged.shard = None;
    merged.partial = false;
    merged.points.clear();
    merged.merged_from = shards.iter().map(|(n, _, _)| n.clone()).collect();
    for (_, dir, doc) in &shards {
        for note in &doc.notes {
            if !merged.notes.contains(note) {
                merged.notes.push(note.clone());
            }
        }
        for p in &doc.points {
            copy_dir(&dir.join(&p.dir), &out.join(&p.dir))?;
            merged.points.push(p.clone());
        }
    }
    merged.points.sort_by_key(|p| p.index);
    merged
        .write(&out.join("sweep.json"))
        .map_err(|e| format!("cannot write {}: {e}", out.join("sweep.json").display()))?;
    Ok(merged)
}

/// Copies the files of a point's folder, each atomically.
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    let fail = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(to).map_err(|e| fail(to, e))?;
    let entries = std::fs::read_dir(from).map_err(|e| fail(from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| fail(from, e))?;
        let path = entry.path();
        if !path.is_file() || entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| fail(&path, e))?;
        let dest = to.join(entry.file_name());
        write_atomic(&dest, &bytes).map_err(|e| fail(&dest, e))?;
    }
    Ok(())
}
