# resilbench's image: built in one stage, run from a small non-root one.
#   docker build -t resilbench .
#   docker run --rm resilbench run /profiles/quickstart.toml --clock virtual --out /tmp/run
# protoc comes from the protoc-bin-vendored crate, so the build needs nothing but cargo.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin resilbench \
    && strip target/release/resilbench

# distroless/cc: glibc and libgcc, no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/resilbench /usr/local/bin/resilbench
COPY --from=build /src/profiles /profiles
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/resilbench"]
CMD ["--help"]
