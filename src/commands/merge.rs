//! `resilbench merge`: the shards of a sharded run into one ordinary run folder.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::{CliError, write_run_folder};
use crate::cli::MergeArgs;
use crate::runner::{self};

pub(super) fn merge(args: MergeArgs) -> Result<ExitCode, CliError> {
    if args
        .results
        .iter()
        .any(|p| crate::choose::merge::is_sweep(p))
    {
        return merge_sweeps(&args);
    }
    // Writing into a shard's own folder would replace that shard's results.
    let out = std::fs::canonicalize(&args.out).ok();
    for p in &args.results {
        let dir = if p.is_dir() {
            Some(p.as_path())
        } else {
            p.parent()
        };
        let dir = dir.and_then(|d| {
            std::fs::canonicalize(if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            })
            .ok()
        });
        if out.is_some() && dir == out {
            return Err(CliError::Other(format!(
                "cannot merge into {}: it holds the shard {}",
                args.out.display(),
                p.display()
            )));
        }
    }
    // Reserved before the shards are read: a folder that cannot take the merge is said first.
    let out = runner::OutDir::reserve(&args.out, args.force)?;
    let runs = args
        .results
        .iter()
        .map(|p| crate::merge::ShardRun::read(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Other)?;
    let merged =
        crate::merge::merge(runs).map_err(|e| CliError::Other(format!("cannot merge: {e}")))?;
    let heading = format!("merged {} shards", merged.merged_from.len());
    write_run_folder(out, merged, Some(&heading), Vec::new())?;
    Ok(ExitCode::SUCCESS)
}

/// Shards of a sweep (`sweep --shard K/N`): their points joined into one sweep folder.
fn merge_sweeps(args: &MergeArgs) -> Result<ExitCode, CliError> {
    if let Some(p) = args
        .results
        .iter()
        .find(|p| !crate::choose::merge::is_sweep(p))
    {
        return Err(CliError::Other(format!(
            "{} is not a sweep folder, and the others are: merge joins shards of one kind",
            p.display()
        )));
    }
    for p in &args.results {
        let shard = crate::choose::merge::sweep_file(p);
        let dir = shard.parent().and_then(|d| std::fs::canonicalize(d).ok());
        if dir.is_some() && dir == std::fs::canonicalize(&args.out).ok() {
            return Err(CliError::Other(format!(
                "cannot merge into {}: it holds the shard {}",
                args.out.display(),
                p.display()
            )));
        }
    }
    let existed = args.out.exists();
    crate::sweep::output::prepare(&args.out, false)?;
    let doc = crate::choose::merge::merge(&args.results, &args.out).map_err(|e| {
        // Nothing half-written: a folder this merge made goes with it.
        if !existed {
            let _ = std::fs::remove_dir_all(&args.out);
        }
        CliError::Other(format!("cannot merge: {e}"))
    })?;
    let page = args.out.join("sweep.html");
    crate::choose::page::write(&page, &doc).map_err(|error| runner::RunError::Write {
        path: page.clone(),
        error,
    })?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "merged {} sweep shards", args.results.len());
    let _ = crate::choose::text::write_summary(&mut out, &doc);
    let _ = writeln!(out, "\nsweep: {}", args.out.join("sweep.json").display());
    let _ = writeln!(out, "page:  {}", page.display());
    Ok(ExitCode::SUCCESS)
}
