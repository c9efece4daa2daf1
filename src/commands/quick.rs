//! The quick run: the user's own service measured without writing a profile, with ghz's
//! flags.
//!
//! ```text
//! resilbench run --target https://api.internal --proto api.proto --call acme.v1.Orders/Get \
//!   -d '{"id": "order-{{call}}"}' -H 'authorization: Bearer ...' --rate 200 --duration 30s \
//!   --service-config retries.json --service-config hedging.json
//! ```
//!
//! The flags become a profile's text (`[load]`, `[target]`, a `baseline` strategy without
//! retries and one strategy per `--service-config`, named after its file; the automatic one
//! is `no-retry` when a file is itself named `baseline`), which is read as
//! any profile is: the same checks, the same plan, the same results. An error names the flag
//! it came from. Without `--proto` or `--protoset` the schema comes from the server by
//! reflection, as ghz does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::CliError;
use super::profiles::Loaded;
use crate::cli::{QuickArgs, RunArgs};
use crate::profile::{self, Overrides, ProfileError};

/// The quick run's rate and duration when none is given.
const RATE: f64 = 100.0;
const DURATION: &str = "10s";

/// The plan a quick run's flags make.
pub(super) fn load(args: &RunArgs, overrides: &Overrides) -> Result<Loaded, CliError> {
    let quick = &args.quick;
    let Some(target) = &args.target else {
        return Err(CliError::Other(
            "give a profile (resilbench run PROFILE), or a quick run of your own service: \
             --target ADDRESS --call package.Service/Method [--proto FILE] [-d JSON]"
                .into(),
        ));
    };
    let Some(call) = &quick.call else {
        return Err(CliError::Other(
            "a quick run needs --call package.Service/Method (or give a profile)".into(),
        ));
    };
    let text = profile_text(target, call, quick)?;
    let name = call
        .rsplit(['/', '.'])
        .next()
        .unwrap_or("quick")
        .to_string();
    let source = "the quick run";
    let plan = profile::parse(&text, source, &name, overrides).map_err(|e| flagged(e, quick))?;
    let quick = quick.clone();
    Ok(Loaded {
        plan,
        source: source.to_string(),
        place: Box::new(move |field, message| {
            flagged(ProfileError::at(source, None, field, message), &quick)
        }),
    })
}

/// The profile the flags say, as TOML.
fn profile_text(target: &str, call: &str, q: &QuickArgs) -> Result<String, CliError> {
    let path = |p: &Path| Value::String(p.display().to_string());
    let mut load = Table::new();
    load.insert("rate".into(), Value::Float(RATE));
    load.insert("duration".into(), Value::String(DURATION.into()));
    if let Some(d) = q.deadline {
        load.insert(
            "deadline".into(),
            Value::String(profile::duration::format(d)),
        );
    }
    if let Some(c) = q.connections {
        load.insert("connections".into(), Value::Integer(i64::from(c)));
    }
    let mut t = Table::new();
    t.insert("address".into(), Value::String(target.to_string()));
    t.insert("method".into(), Value::String(call.to_string()));
    if let Some(a) = &q.authority {
        t.insert("authority".into(), Value::String(a.clone()));
    }
    if !q.protos.is_empty() {
        t.insert(
            "proto".into(),
            Value::Array(q.protos.iter().map(|p| path(p)).collect()),
        );
    }
    if !q.import_paths.is_empty() {
        let dirs = q.import_paths.iter().map(|p| path(p)).collect();
        t.insert("import_paths".into(), Value::Array(dirs));
    }
    if let Some(p) = &q.protoset {
        t.insert("protoset".into(), path(p));
    }
    if q.reflection || (q.protos.is_empty() && q.protoset.is_none()) {
        t.insert("reflection".into(), Value::Boolean(true));
    }
    match (&q.data, &q.data_file) {
        (Some(_), Some(_)) => {
            return Err(CliError::Other("give -d or -D, not both".into()));
        }
        (Some(d), None) => {
            t.insert("request".into(), Value::String(d.clone()));
        }
        (None, Some(f)) => {
            t.insert("request_file".into(), path(f));
        }
        (None, None) => {}
    }
    let metadata = metadata(q)?;
    if !metadata.is_empty() {
        t.insert("metadata".into(), Value::Table(metadata));
    }
    let mut tls = Table::new();
    for (key, file) in [("ca", &q.cacert), ("cert", &q.cert), ("key", &q.key)] {
        if let Some(f) = file {
            tls.insert(key.into(), path(f));
        }
    }
    if let Some(n) = &q.cname {
        tls.insert("server_name".into(), Value::String(n.clone()));
    }
    if q.insecure {
        tls.insert("insecure".into(), Value::Boolean(true));
    }
    if !tls.is_empty() {
        t.insert("tls".into(), Value::Table(tls));
    }
    let (automatic, names) = strategy_names(&q.service_configs);
    let mut strategies = vec![strategy(
        &automatic,
        "each call sent once: no retries (added by the quick run)",
        None,
    )];
    for (file, name) in q.service_configs.iter().zip(names) {
        let description = format!("the service config {}", file.display());
        strategies.push(strategy(&name, &description, Some(path(file))));
    }
    let mut root = Table::new();
    root.insert(
        "description".into(),
        Value::String(format!("{call} at {target}: a quick run")),
    );
    root.insert("load".into(), Value::Table(load));
    root.insert("target".into(), Value::Table(t));
    root.insert("strategies".into(), Value::Array(strategies));
    toml::to_string(&root).map_err(|e| CliError::Other(format!("cannot build the profile: {e}")))
}

/// The quick run's strategy names: the automatic no-retry strategy's, and each service
/// config's. A file is named by its stem, as the user named it (`retries.json` is `retries`;
/// two files with one stem are `sc`, `sc-2`); the automatic one is `baseline`, or `no-retry`
/// when a file already takes `baseline` (`--service-config baseline.json` stays `baseline`,
/// never `baseline-2`), or `no-retry-auto` when both are taken.
fn strategy_names(files: &[PathBuf]) -> (String, Vec<String>) {
    let mut taken = BTreeSet::new();
    let mut names = Vec::with_capacity(files.len());
    for file in files {
        let stem = file.file_stem().map_or("service-config".into(), |s| {
            s.to_string_lossy().into_owned()
        });
        let mut name = stem.clone();
        let mut n = 2;
        while !taken.insert(name.clone()) {
            name = format!("{stem}-{n}");
            n += 1;
        }
        names.push(name);
    }
    let automatic = ["baseline", "no-retry", "no-retry-auto"]
        .into_iter()
        .find(|n| !taken.contains(*n))
        .map_or_else(
            || {
                (2..)
                    .map(|n| format!("no-retry-auto-{n}"))
                    .find(|n| !taken.contains(n))
                    .unwrap_or_default()
            },
            str::to_string,
        );
    (automatic, names)
}

fn strategy(name: &str, description: &str, service_config: Option<Value>) -> Value {
    let mut s = Table::new();
    s.insert("name".into(), Value::String(name.into()));
    s.insert("description".into(), Value::String(description.into()));
    if let Some(c) = service_config {
        s.insert("service_config".into(), c);
    }
    Value::Table(s)
}

/// `-H 'name: value'` and `-m '{"name": "value"}'` as one table. A name given more than
/// once (`-H` twice, `-H` and `-m`, in any case) is sent with every value, in the order
/// given (`-H` first), as grpcurl sends a repeated `-H`: gRPC metadata allows several values
/// per name.
fn metadata(q: &QuickArgs) -> Result<Table, CliError> {
    let mut values: Vec<(String, String)> = Vec::new();
    for h in &q.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| CliError::Other(format!("-H {h}: expected 'name: value'")))?;
        values.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    if let Some(json) = &q.metadata {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
            .map_err(|e| CliError::Other(format!("-m: expected a JSON object of strings: {e}")))?;
        for (name, value) in map {
            let serde_json::Value::String(value) = value else {
                return Err(CliError::Other(format!(
                    "-m: the value of `{name}` is not a string"
                )));
            };
            values.push((name.to_ascii_lowercase(), value));
        }
    }
    let mut out = Table::new();
    for (name, value) in values {
        match out.remove(&name) {
            None => out.insert(name, Value::String(value)),
            Some(Value::String(first)) => out.insert(
                name,
                Value::Array(vec![Value::String(first), Value::String(value)]),
            ),
            Some(Value::Array(mut all)) => {
                all.push(Value::String(value));
                out.insert(name, Value::Array(all))
            }
            Some(other) => out.insert(name, other),
        };
    }
    Ok(out)
}

/// A profile error as the flag that made the value says it.
fn flagged(e: ProfileError, q: &QuickArgs) -> CliError {
    let field = e.field.to_string();
    let flag = match field.as_str() {
        f if f.starts_with("target.metadata") => "-H/-m",
        "target.address" => "--target",
        "target.authority" => "--authority",
        "target.method" => "--call",
        "target.proto" => "--proto",
        "target.import_paths" => "--import-path",
        "target.protoset" => "--protoset",
        "target.request" => "-d",
        "target.request_file" => "-D",
        "target.tls" => {
            let given: Vec<&str> = [
                (q.cacert.is_some(), "--cacert"),
                (q.cert.is_some(), "--cert"),
                (q.key.is_some(), "--key"),
                (q.cname.is_some(), "--cname"),
                (q.insecure, "--insecure"),
            ]
            .into_iter()
            .filter_map(|(on, flag)| on.then_some(flag))
            .collect();
            if given == ["--insecure"] {
                // ghz's --insecure means plaintext; here the address says so.
                return CliError::Other(
                    "--insecure skips verifying a TLS server's certificate, and this address \
                     is plaintext HTTP/2 already: drop --insecure (ghz's --insecure means \
                     plaintext; here a host:port address does)"
                        .into(),
                );
            }
            return CliError::Other(format!("{}: {}", given.join(", "), e.message));
        }
        "target.tls.ca" => "--cacert",
        "target.tls.cert" => "--cert",
        "target.tls.key" => "--key",
        "target.tls.server_name" => "--cname",
        "target.tls.insecure" => "--insecure",
        "load.rate" => "--rate",
        "load.duration" => "--duration",
        "load.deadline" => "--deadline",
        "load.connections" => "--connections",
        "seed" => "--seed",
        f if f.starts_with("strategies[") => {
            let i: usize = f[11..]
                .split(']')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            return match q.service_configs.get(i.wrapping_sub(1)) {
                Some(file) => CliError::Other(format!(
                    "--service-config {}: {}",
                    file.display(),
                    e.message
                )),
                None => CliError::Other(e.message),
            };
        }
        "target" => "--proto/--protoset/--reflection",
        _ => return CliError::Profile(e),
    };
    CliError::Other(format!("{flag}: {}", e.message))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::strategy_names;

    fn names(files: &[&str]) -> (String, Vec<String>) {
        let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
        strategy_names(&files)
    }

    /// A file keeps its stem; the automatic no-retry strategy gives way to the user's names.
    #[test]
    fn service_configs_keep_their_names_and_the_automatic_one_gives_way() {
        assert_eq!(names(&[]), ("baseline".into(), vec![]));
        assert_eq!(
            names(&["sc/retries.json", "hedge.json"]),
            ("baseline".into(), vec!["retries".into(), "hedge".into()])
        );
        assert_eq!(
            names(&["baseline.json"]),
            ("no-retry".into(), vec!["baseline".into()])
        );
        assert_eq!(
            names(&["a/sc.json", "b/sc.json", "no-retry.json", "baseline.json"]),
            (
                "no-retry-auto".into(),
                vec![
                    "sc".into(),
                    "sc-2".into(),
                    "no-retry".into(),
                    "baseline".into()
                ]
            )
        );
        assert_eq!(
            names(&["baseline.json", "no-retry.json", "no-retry-auto.json"]).0,
            "no-retry-auto-2"
        );
    }
}
