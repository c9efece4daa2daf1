//! `resilbench merge`: the shards of a sharded run into one ordinary run folder.

use std::path::Path;
use std::process::ExitCode;

use super::{CliError, write_run_folder};
use crate::cli::MergeArgs;
use crate::runner::{self};

pub(super) fn merge(args: MergeArgs) -> Result<ExitCode, CliError> {
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
    let runs = args
        .results
        .iter()
        .map(|p| crate::merge::ShardRun::read(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Other)?;
    let merged =
        crate::merge::merge(runs).map_err(|e| CliError::Other(format!("cannot merge: {e}")))?;
    runner::prepare_out_dir(&args.out)?;
    let heading = format!("merged {} shards", merged.merged_from.len());
    write_run_folder(&args.out, merged, Some(&heading))?;
    Ok(ExitCode::SUCCESS)
}
