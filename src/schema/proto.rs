//! Where descriptors come from: `.proto` files compiled in process, a protoset file, or the
//! files a server sent by reflection.
//!
//! `.proto` files are compiled with protox (pure Rust; the well-known types such as
//! `google/protobuf/timestamp.proto` built in). The vendored `protoc` of the build cannot be
//! used at run time: its path is the build machine's. protox's errors name the file by its
//! name under an import path; they are shown with the file's path on disk, line and column
//! (`protos/acme/echo.proto:6:3: expected ';' ...`).

use std::path::{Path, PathBuf};

use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

use super::SchemaError;

/// Largest `.proto` or protoset file read.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Compiles `files` with their imports looked up in `import_paths`, then in each file's own
/// directory (as ghz and protoc users expect), then among the well-known types.
pub fn compile(files: &[PathBuf], import_paths: &[PathBuf]) -> Result<DescriptorPool, SchemaError> {
    if files.is_empty() {
        return Err(SchemaError::new("no .proto file given"));
    }
    for dir in import_paths {
        if !dir.is_dir() {
            return Err(SchemaError::new(format!(
                "import path {} is not a directory",
                dir.display()
            )));
        }
    }
    let mut includes: Vec<PathBuf> = import_paths.to_vec();
    for file in files {
        check_size(file)?;
        // A file outside every import path is looked up from its own directory; one inside
        // keeps the name it has there, so that imports of it by that name are the same file.
        let inside = includes.iter().any(|dir| under(file, dir));
        let parent = file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let parent = if parent.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            parent
        };
        if !inside && !includes.contains(&parent) {
            includes.push(parent);
        }
    }
    let mut compiler =
        protox::Compiler::new(&includes).map_err(|e| SchemaError::new(described(&e, &includes)))?;
    compiler.include_imports(true);
    compiler
        .open_files(files)
        .map_err(|e| SchemaError::new(described(&e, &includes)))?;
    Ok(compiler.descriptor_pool())
}

/// Whether `file` lies under `dir` (both as given, or both made absolute).
fn under(file: &Path, dir: &Path) -> bool {
    if file.starts_with(dir) {
        return true;
    }
    match (std::path::absolute(file), std::path::absolute(dir)) {
        (Ok(f), Ok(d)) => f.starts_with(d),
        _ => false,
    }
}

fn check_size(path: &Path) -> Result<(), SchemaError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| SchemaError::new(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(SchemaError::new(format!(
            "{} is not a file",
            path.display()
        )));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(SchemaError::new(format!(
            "{} is {} bytes; at most {MAX_FILE_BYTES}",
            path.display(),
            meta.len()
        )));
    }
    Ok(())
}

/// protox's error as `file:line:col: message` (its `Debug` form, which protox's own tests
/// hold), the file named by its path on disk where one of `includes` has it, and a hint for
/// an import that is not found.
fn described(e: &protox::Error, includes: &[PathBuf]) -> String {
    let mut text = format!("{e:?}");
    if let Some(name) = e.file()
        && let Some(rest) = text.strip_prefix(name).map(str::to_string)
        && let Some(disk) = includes.iter().map(|d| d.join(name)).find(|p| p.is_file())
    {
        text = format!("{}{rest}", disk.display());
    }
    if e.is_file_not_found() && text.contains("import '") {
        let dirs: Vec<String> = includes.iter().map(|d| d.display().to_string()).collect();
        text.push_str(&format!(
            " (looked in {}; add the directory holding it to import_paths, -i)",
            dirs.join(", ")
        ));
    }
    text
}

/// Reads a protoset: a serialized `FileDescriptorSet` holding the files and their imports.
pub fn protoset(path: &Path) -> Result<DescriptorPool, SchemaError> {
    check_size(path)?;
    let bytes = std::fs::read(path)
        .map_err(|e| SchemaError::new(format!("cannot read {}: {e}", path.display())))?;
    let set = FileDescriptorSet::decode(bytes.as_slice()).map_err(|e| {
        SchemaError::new(format!(
            "{} is not a protoset (a FileDescriptorSet as `protoc -o` writes it): {e}",
            path.display()
        ))
    })?;
    from_files(set.file).map_err(|e| SchemaError::new(format!("{}: {}", path.display(), e.0)))
}

/// A pool of `files` in any order (a protoset's, or those a server sent by reflection). The
/// well-known types the files import but do not hold are taken from those built in.
pub fn from_files(files: Vec<FileDescriptorProto>) -> Result<DescriptorPool, SchemaError> {
    let names: std::collections::HashSet<String> =
        files.iter().map(|f| f.name().to_string()).collect();
    let mut pool = DescriptorPool::new();
    let builtin = DescriptorPool::global();
    let wanted: std::collections::HashSet<&str> = files
        .iter()
        .flat_map(|f| f.dependency.iter().map(String::as_str))
        .filter(|d| !names.contains(*d))
        .collect();
    let mut missing: Vec<FileDescriptorProto> = Vec::new();
    for name in wanted {
        if let Some(file) = builtin.get_file_by_name(name) {
            add_with_imports(file, &names, &mut missing);
        }
    }
    missing.extend(files);
    pool.add_file_descriptor_protos(missing).map_err(|e| {
        let hint = if e.to_string().contains("has not been added") {
            " (write the protoset with its imports: `protoc --include_imports -o`, or `buf \
             build -o`)"
        } else {
            ""
        };
        SchemaError::new(format!("{e:?}{hint}"))
    })?;
    Ok(pool)
}

/// A built-in file and its own imports, unless the files given already hold them.
fn add_with_imports(
    file: prost_reflect::FileDescriptor,
    names: &std::collections::HashSet<String>,
    out: &mut Vec<FileDescriptorProto>,
) {
    if names.contains(file.name()) || out.iter().any(|f| f.name() == file.name()) {
        return;
    }
    for dep in file.dependencies() {
        add_with_imports(dep, names, out);
    }
    out.push(file.file_descriptor_proto().clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_proto_with_imports_and_well_known_types_compiles() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "acme/types.proto",
            "syntax = \"proto3\"; package acme; message Inner { int32 depth = 1; }",
        );
        let main = write(
            dir.path(),
            "acme/svc.proto",
            "syntax = \"proto3\"; package acme;\nimport \"acme/types.proto\";\nimport \
             \"google/protobuf/timestamp.proto\";\nmessage Req { Inner inner = 1; \
             google.protobuf.Timestamp at = 2; }\nservice S { rpc M(Req) returns (Req); }",
        );
        let pool = compile(&[main], &[dir.path().to_path_buf()]).unwrap();
        assert!(pool.get_service_by_name("acme.S").is_some());
        assert!(pool.get_message_by_name("acme.Inner").is_some());
    }

    /// A syntax error is named by the file's path on disk, line and column, with protox's
    /// message.
    #[test]
    fn a_proto_that_does_not_compile_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(
            dir.path(),
            "bad.proto",
            "syntax = \"proto3\";\nmessage A {\n  int32 a = 1\n  int32 b = 2;\n}\n",
        );
        let e = compile(std::slice::from_ref(&bad), &[]).unwrap_err().0;
        let expected = format!(
            "{}:4:3: expected ';' or '[', but found 'int32'",
            bad.display()
        );
        assert_eq!(e, expected);
        let missing = write(
            dir.path(),
            "imports.proto",
            "syntax = \"proto3\";\nimport \"does/not/exist.proto\";\n",
        );
        let e = compile(&[missing], &[]).unwrap_err().0;
        assert!(
            e.contains("imports.proto:2:1: import 'does/not/exist.proto' not found"),
            "{e}"
        );
        assert!(e.contains("import_paths"), "{e}");
        let e = compile(&[dir.path().join("nope.proto")], &[])
            .unwrap_err()
            .0;
        assert!(e.contains("cannot read"), "{e}");
    }

    /// A protoset with its imports works; one without them says how to write it.
    #[test]
    fn protosets_need_their_imports() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "t.proto",
            "syntax = \"proto3\"; package t; message T { int32 a = 1; }",
        );
        let main = write(
            dir.path(),
            "m.proto",
            "syntax = \"proto3\"; package m; import \"t.proto\"; message M { t.T t = 1; }",
        );
        let pool = compile(&[main], &[]).unwrap();
        let all = FileDescriptorSet {
            file: pool.file_descriptor_protos().cloned().collect(),
        };
        let path = dir.path().join("all.protoset");
        std::fs::write(&path, all.encode_to_vec()).unwrap();
        assert!(
            protoset(&path)
                .unwrap()
                .get_message_by_name("m.M")
                .is_some()
        );
        let only = FileDescriptorSet {
            file: pool
                .file_descriptor_protos()
                .filter(|f| f.name() == "m.proto")
                .cloned()
                .collect(),
        };
        std::fs::write(&path, only.encode_to_vec()).unwrap();
        let e = protoset(&path).unwrap_err().0;
        assert!(
            e.contains("t.proto") && e.contains("--include_imports"),
            "{e}"
        );
        std::fs::write(&path, b"\xff\xff\xff").unwrap();
        assert!(protoset(&path).unwrap_err().0.contains("is not a protoset"));
    }
}
