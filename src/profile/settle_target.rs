//! `[target]` checked when the profile is read, without its schema: the address's form, one
//! schema source, the method's name, the request's template (read from `request_file` where
//! it is given), the metadata's names and values, the TLS files; paths made relative to the
//! profile's directory. The checks against the schema are in `check_target.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use super::target::{Address, MAX_METADATA, TargetPlan, Values};
use super::validate::{Invalid, invalid};

/// Names gRPC reserves, or HTTP/2 forbids, in metadata.
const RESERVED: [&str; 9] = [
    "content-type",
    "te",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

/// Checks what can be checked without the schema, reads `request_file`, and puts paths
/// relative to `base` (the profile's directory).
pub fn settle(t: &mut TargetPlan, base: &Path) -> Result<(), Invalid> {
    let address = Address::parse(&t.address).or_else(|e| invalid("target.address", e))?;
    if let Some(a) = &t.authority
        && (a.is_empty() || a.parse::<http::uri::Authority>().is_err() || a.contains('@'))
    {
        return invalid(
            "target.authority",
            format!("`{a}` is not an authority; expected host or host:port"),
        );
    }
    if t.control && address.tls {
        return invalid(
            "target.control",
            "a resilbench proxy listens in plaintext: `control = true` needs a host:port or \
             http:// address (the proxy's; it may reach your service over TLS, `proxy --upstream \
             https://...`)",
        );
    }
    let sources = [!t.proto.is_empty(), t.protoset.is_some(), t.reflection];
    match sources.iter().filter(|s| **s).count() {
        0 => {
            return invalid(
                "target",
                "where does the service's schema come from? Give `proto = [\"service.proto\"]`, \
                 `protoset = \"service.protoset\"`, or `reflection = true`",
            );
        }
        1 => {}
        _ => {
            return invalid(
                "target",
                "give one of `proto`, `protoset` and `reflection = true`, not several",
            );
        }
    }
    if !t.import_paths.is_empty() && t.proto.is_empty() {
        return invalid("target.import_paths", "import paths are for `proto` files");
    }
    let join = |p: &String| base.join(p).display().to_string();
    t.proto = t.proto.iter().map(join).collect();
    t.import_paths = t.import_paths.iter().map(join).collect();
    if let Some(dir) = t.import_paths.iter().find(|d| !Path::new(d).is_dir()) {
        return invalid(
            "target.import_paths",
            format!("import path {dir} is not a directory"),
        );
    }
    t.protoset = t.protoset.as_ref().map(join);
    if crate::schema::method::split(&t.method).is_none() {
        return invalid(
            "target.method",
            format!(
                "`{}` is not a method name; expected `package.Service/Method`",
                t.method
            ),
        );
    }
    read_request(t, base)?;
    crate::schema::request::JsonTemplate::parse(t.request_text())
        .or_else(|e| invalid(request_field(t), e.0))?;
    metadata(t)?;
    tls(t, &address, base)
}

/// The field the request came from, for errors.
pub fn request_field(t: &TargetPlan) -> &'static str {
    if t.request_from_file {
        "target.request_file"
    } else {
        "target.request"
    }
}

fn read_request(t: &mut TargetPlan, base: &Path) -> Result<(), Invalid> {
    let Some(file) = t.request_file.take() else {
        return Ok(());
    };
    if t.request.is_some() {
        return invalid(
            "target.request_file",
            "give `request` or `request_file`, not both",
        );
    }
    let path = base.join(&file);
    let limit = crate::schema::request::MAX_TEXT as u64;
    let meta = std::fs::metadata(&path).or_else(|e| {
        invalid(
            "target.request_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    if meta.len() > limit {
        return invalid(
            "target.request_file",
            format!(
                "{} is {} bytes; at most {limit}",
                path.display(),
                meta.len()
            ),
        );
    }
    let text = std::fs::read_to_string(&path).or_else(|e| {
        invalid(
            "target.request_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    t.request = Some(text);
    t.request_from_file = true;
    Ok(())
}

/// Metadata names as gRPC allows them (lower case; `0-9 a-z - _ .`; not reserved), values
/// as HTTP/2 allows them (no line breaks or other control characters; `-bin` values are sent
/// base64-encoded, as gRPC libraries send them).
fn metadata(t: &mut TargetPlan) -> Result<(), Invalid> {
    let mut lowered: BTreeMap<String, Values> = BTreeMap::new();
    for (name, values) in std::mem::take(&mut t.metadata) {
        let field = format!("target.metadata.{name}");
        let lower = name.to_ascii_lowercase();
        if lower.is_empty()
            || !lower
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"-_.".contains(&b))
        {
            return invalid(
                &field,
                format!("`{name}` is not a metadata name (letters, digits, `-`, `_` and `.`)"),
            );
        }
        if lower.starts_with("grpc-") || RESERVED.contains(&lower.as_str()) {
            return invalid(
                &field,
                format!(
                    "`{lower}` is set by the gRPC client itself and cannot be sent as metadata"
                ),
            );
        }
        for value in &values.0 {
            header_value(&field, &lower, value)?;
        }
        // Names ignore case: `Authorization` and `authorization` are one name, sent with
        // every value of both.
        lowered.entry(lower).or_default().0.extend(values.0);
    }
    let count: usize = lowered.values().map(|v| v.0.len()).sum();
    if count > MAX_METADATA {
        return invalid(
            "target.metadata",
            format!("at most {MAX_METADATA} values, got {count}"),
        );
    }
    t.metadata = lowered;
    Ok(())
}

/// One value of metadata `lower` (written at `field`): a template, and without control
/// characters unless binary.
fn header_value(field: &str, lower: &str, value: &str) -> Result<(), Invalid> {
    let template = crate::template::Template::parse(value, 1).or_else(|e| invalid(field, e.0))?;
    if !lower.ends_with("-bin") {
        let mut texts: Vec<&str> = Vec::new();
        for piece in template.pieces() {
            match piece {
                crate::template::Piece::Text(t) => texts.push(t),
                crate::template::Piece::Hole(h) => {
                    if let crate::template::Value::Choice(values) = &h.value {
                        texts.extend(values.iter().map(|v| &**v));
                    }
                }
            }
        }
        if let Some(bad) = texts
            .iter()
            .find(|t| t.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f))
        {
            return invalid(
                field,
                format!("{bad:?} holds a control character, which a header value cannot hold"),
            );
        }
    }
    Ok(())
}

fn tls(t: &mut TargetPlan, address: &Address, base: &Path) -> Result<(), Invalid> {
    let Some(tls) = &mut t.tls else {
        return Ok(());
    };
    if !address.tls {
        return invalid(
            "target.tls",
            format!(
                "TLS settings need an https:// address; `{}` is plaintext HTTP/2",
                t.address
            ),
        );
    }
    if tls.cert.is_some() != tls.key.is_some() {
        let missing = if tls.cert.is_none() { "cert" } else { "key" };
        return invalid(
            &format!("target.tls.{missing}"),
            "a client certificate needs both `cert` and `key`",
        );
    }
    if tls.insecure && tls.ca.is_some() {
        return invalid(
            "target.tls.insecure",
            "`insecure` verifies nothing, so `ca` would not be used: give one or the other",
        );
    }
    for (key, path) in [
        ("ca", &mut tls.ca),
        ("cert", &mut tls.cert),
        ("key", &mut tls.key),
    ] {
        if let Some(p) = path {
            let joined = base.join(&*p);
            if !joined.is_file() {
                return invalid(
                    &format!("target.tls.{key}"),
                    format!("{} is not a file", joined.display()),
                );
            }
            *p = joined.display().to_string();
        }
    }
    if let Some(name) = &tls.server_name
        && rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
    {
        return invalid(
            "target.tls.server_name",
            format!("`{name}` is not a DNS name or an IP address"),
        );
    }
    super::tls_files::check(tls)
}
