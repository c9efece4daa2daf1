//! Where a profile comes from, and `resilbench profiles`.
//!
//! `run`, `validate` and `serve` take a path, or the name of a profile built into the binary
//! (`crate::profile::shipped`): a file of that name always wins, and the command says which it
//! used. The profile's gate is checked with it (`crate::gate::names`), so a misspelt figure is
//! an error before the run, at its line. `resilbench profiles` lists the built-in profiles with
//! their one-line stories; `--print NAME` writes one out to start from.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::CliError;
use crate::cli::ProfilesArgs;
use crate::profile::shipped::{self, SHIPPED};
use crate::profile::{self, FieldPath, Overrides, Plan, ProfileError};

/// A loaded profile and where it came from, in words.
pub(super) struct Loaded {
    /// The checked plan.
    pub plan: Plan,
    /// `profiles/quickstart.toml`, or `quickstart (built in)`.
    pub source: String,
    /// An error about one key, found after loading (a schema fetched by reflection), said
    /// where the key was written: the profile's file:line:col, or the quick run's flag.
    pub place: Place,
}

/// Says an error about a key where that key was written.
pub(super) type Place = Box<dyn Fn(FieldPath, String) -> CliError>;

/// [`Place`] in a profile's `text`, read from `source`.
pub(super) fn in_profile(source: &str, text: String) -> Place {
    let source = source.to_string();
    Box::new(move |field, message| ProfileError::at(&source, Some(&text), field, message).into())
}

/// Loads `arg`: the file at that path, or else the built-in profile of that name.
pub(super) fn load(arg: &Path, overrides: &Overrides) -> Result<Loaded, CliError> {
    let name = arg.to_string_lossy();
    let builtin = (!arg.exists()).then(|| shipped::find(&name)).flatten();
    let (plan, source, text) = match builtin {
        Some(s) => {
            let source = format!("{} (built in)", s.name);
            let plan = profile::parse(s.text, &source, s.name, overrides)?;
            (plan, source, s.text.to_string())
        }
        None if !arg.exists() => match profile::load(arg, overrides) {
            Err(mut err) => {
                let stem = arg
                    .file_stem()
                    .map_or(name.clone(), |s| s.to_string_lossy());
                let near = profile::error::closest(&stem, SHIPPED.iter().map(|s| s.name));
                err.message = format!(
                    "{}; no profile of that name is built in either{} (`resilbench profiles` \
                     lists them)",
                    err.message,
                    near.map_or(String::new(), |n| format!(", did you mean `{n}`?"))
                );
                return Err(err.into());
            }
            // Created since we looked: it is a file after all.
            Ok(plan) => {
                let text = std::fs::read_to_string(arg).unwrap_or_default();
                (plan, arg.display().to_string(), text)
            }
        },
        None => {
            let plan = profile::load(arg, overrides)?;
            let text = std::fs::read_to_string(arg).unwrap_or_default();
            (plan, arg.display().to_string(), text)
        }
    };
    crate::gate::names::check_plan(&plan)
        .map_err(|(field, message)| ProfileError::at(&source, Some(&text), field, message))?;
    let place = in_profile(&source, text);
    Ok(Loaded {
        plan,
        source,
        place,
    })
}

/// `resilbench profiles [--print NAME]`.
pub(super) fn profiles(args: ProfilesArgs) -> Result<ExitCode, CliError> {
    let mut out = std::io::stdout().lock();
    if let Some(name) = &args.print {
        let s = shipped::find(name).ok_or_else(|| {
            let near = profile::error::closest(name, SHIPPED.iter().map(|s| s.name));
            CliError::Other(format!(
                "no profile `{name}` is built in{}; `resilbench profiles` lists them",
                near.map_or(String::new(), |n| format!(" (did you mean `{n}`?)"))
            ))
        })?;
        let _ = out.write_all(s.text.as_bytes());
        return Ok(ExitCode::SUCCESS);
    }
    let _ = writeln!(
        out,
        "Profiles built into this binary (`resilbench run NAME`; a file of that name wins):\n"
    );
    let rows: Vec<Vec<String>> = SHIPPED
        .iter()
        .map(|s| {
            let story = profile::parse(s.text, s.name, s.name, &Overrides::default())
                .map_or_else(|e| format!("(does not load: {e})"), |p| p.description);
            vec![s.name.to_string(), story]
        })
        .collect();
    let _ = crate::table::write(&mut out, &["name", "the story"], &rows, 2);
    let _ = writeln!(
        out,
        "\n`resilbench profiles --print NAME > my.toml` writes one out to start from."
    );
    Ok(ExitCode::SUCCESS)
}
