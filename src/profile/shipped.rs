//! The shipped profiles, built into the binary: `resilbench run quickstart` works with the
//! binary alone, and `resilbench profiles --print NAME` writes one out to start from.
//!
//! The files under `profiles/` stay the source: each is included here as written
//! (`include_str!`), and a test checks that every file there is in [`SHIPPED`]. A path on the
//! command line always wins over a built-in name.

/// One shipped profile: its name (the file's stem) and its text.
#[derive(Debug, Clone, Copy)]
pub struct Shipped {
    /// The name, as `resilbench run NAME` takes it.
    pub name: &'static str,
    /// The file's text, as shipped in `profiles/NAME.toml`.
    pub text: &'static str,
}

macro_rules! shipped {
    ($($name:literal),* $(,)?) => {
        [$(Shipped {
            name: $name,
            text: include_str!(concat!("../../profiles/", $name, ".toml")),
        }),*]
    };
}

/// Every shipped profile, in the order the README lists them.
pub const SHIPPED: [Shipped; 12] = shipped!(
    "quickstart",
    "service-config",
    "retry-storm",
    "jitter",
    "hedging",
    "outage-breaker",
    "fan-out",
    "idempotency",
    "streaming",
    "client-flavors",
    "sandbox",
    "sweep-retries",
);

/// The shipped profile called `name` (`quickstart`, `quickstart.toml` or
/// `profiles/quickstart.toml`).
pub fn find(name: &str) -> Option<Shipped> {
    let stem = name
        .strip_prefix("profiles/")
        .unwrap_or(name)
        .trim_end_matches(".toml");
    SHIPPED.iter().copied().find(|s| s.name == stem)
}
