//! `resilbench merge`: the shards of a sharded run into one ordinary run folder.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::CliError;
use crate::cli::MergeArgs;
use crate::runner::{self, RunError};

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
    let dir = &args.out;
    runner::prepare_out_dir(dir)?;
    let path = runner::write_outputs(dir, &merged)?;
    let doc = crate::document::ResultsDoc::from_results(merged);
    let report = dir.join("report.html");
    crate::report::write(&report, &doc).map_err(|error| RunError::Write {
        path: report.clone(),
        error,
    })?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "merged {} shards", doc.results.merged_from.len());
    let _ = crate::summary::write_summary(&mut out, &doc.results);
    let _ = writeln!(out, "\nresults: {}", path.display());
    let _ = writeln!(out, "report:  {}", report.display());
    Ok(ExitCode::SUCCESS)
}
