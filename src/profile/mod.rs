//! Profiles: what a TOML file says ([`schema`]), and the checked, resolved [`Plan`] it becomes.
//!
//! Two stages, as in ripgrep's flag parsing: `Profile` stays close to what the user typed;
//! `Plan` has every default filled in and every value checked. Command-line overrides
//! (`--duration`, `--rate`, `--seed`) apply to the plan and go through the same checks.
//! Errors name the file, line, column and field ([`ProfileError`]).

pub mod backend;
mod check_backend;
mod check_layers;
pub mod check_target;
pub mod client;
pub mod codes;
pub mod duration;
pub mod error;
pub mod flavor;
pub mod gate;
pub mod latency;
pub mod layers;
pub mod measured;
pub mod phases;
pub mod plan;
pub mod recorded_run;
pub mod schema;
pub mod script;
pub mod service_config;
mod settle_target;
pub mod shipped;
pub mod sweep;
pub mod tagged;
pub mod target;
pub mod timers;
mod tls_files;
mod unapplied;
pub mod validate;

use std::path::Path;

pub use error::{FieldPath, ProfileError};
pub use plan::{
    Arrival, BackendPlan, LayerPlan, LoadPlan, Method, Order, Plan, RateStep, StrategyPlan,
};
pub use target::{Address, TargetPlan, TlsPlan};
pub use validate::Overrides;

/// Largest profile file read (a profile is a few kilobytes; this only stops a wrong path).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads, parses and checks the profile at `path`.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Plan, ProfileError> {
    let file = path.display().to_string();
    let read_error = |message: String| ProfileError {
        file: file.clone(),
        location: None,
        flag: None,
        field: FieldPath::default(),
        message,
    };
    let meta =
        std::fs::metadata(path).map_err(|e| read_error(format!("cannot read the profile: {e}")))?;
    if !meta.is_file() {
        return Err(read_error("is not a file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(read_error(format!(
            "is {} bytes; a profile may be at most {MAX_FILE_BYTES} bytes",
            meta.len()
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|e| read_error(format!("cannot read the profile: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        read_error(format!(
            "is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let stem = path
        .file_stem()
        .map_or("profile".into(), |s| s.to_string_lossy().into_owned());
    parse(&text, &file, &stem, overrides)
}

/// Parses and checks profile text; `file` names it in errors, `default_name` is used when the
/// profile has no `name`.
pub fn parse(
    text: &str,
    file: &str,
    default_name: &str,
    overrides: &Overrides,
) -> Result<Plan, ProfileError> {
    let profile = parse_profile(text, file)?;
    let base = Path::new(file).parent().unwrap_or(Path::new("."));
    validate::resolve(profile, default_name, overrides, base).map_err(|(field, message)| {
        let mut err = ProfileError::at(file, Some(text), field, message);
        err.flag = overrides.flag_for(&err.field);
        if err.flag.is_some() {
            err.location = None;
        } else if !overrides.flags().is_empty() {
            // The value in the file may be fine on its own and clash only with an override.
            err.message = format!(
                "{} (with {} from the command line)",
                err.message,
                overrides.flags().join(" ")
            );
        }
        err
    })
}

/// The parsing pass: syntax, unknown keys, types.
fn parse_profile(text: &str, file: &str) -> Result<schema::Profile, ProfileError> {
    let de = toml::de::Deserializer::parse(text)
        .map_err(|e| toml_error(file, text, &e, FieldPath::default()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = FieldPath::from(e.path());
        toml_error(file, text, e.inner(), field)
    })
}

fn toml_error(file: &str, text: &str, e: &toml::de::Error, field: FieldPath) -> ProfileError {
    let message = error::number_in_words(&error::with_suggestion(e.message().trim()));
    let message = message.as_str();
    if let Some((inner, message)) = tagged::split(message) {
        // An error inside a tagged table: the key it names is more precise than the span
        // the parser gives (the whole table).
        let mut field = field;
        field.0.extend(FieldPath::parse(inner).0);
        return ProfileError::at(file, Some(text), field, message.to_string());
    }
    let mut err = ProfileError::at(file, Some(text), field, message.to_string());
    if let Some(span) = e.span() {
        err.location = Some(Box::new(error::Location::of(text, span.start)));
    }
    err
}
