//! Generates the gRPC client and server code from `proto/resilbench.proto`, and the server of
//! the tests' foreign service (`tests/proto/acme/echo/v1/echo.proto`, a service that is not
//! resilbench's, which only the integration tests include) with its descriptor set for their
//! reflection server.
//!
//! `protoc` comes from `protoc-bin-vendored`, so a fresh machine needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(&protoc);
    tonic_prost_build::configure()
        .bytes(".")
        .compile_with_config(config, &["proto/resilbench.proto"], &["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(&protoc);
    tonic_prost_build::configure()
        .build_client(false)
        .file_descriptor_set_path(out.join("acme_echo.protoset"))
        .compile_with_config(
            config,
            &["tests/proto/acme/echo/v1/echo.proto"],
            &["tests/proto"],
        )?;
    Ok(())
}
