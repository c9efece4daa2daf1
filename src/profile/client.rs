//! `client = "grpc-java@1.41"`: which gRPC client library a strategy's A6 policies behave as.
//!
//! gRFC A6 is a text; a service config runs in a library, and the libraries depart from the
//! text, differently from version to version. A strategy that imports or writes an A6 policy
//! (`service_config`, `grpc_retry`, `grpc_hedge`) names its library here: `"a6"` (the default:
//! the text), or a library with an optional version, `LIBRARY[@MAJOR.MINOR[.PATCH]]`. With no
//! version, the newest this build knows. A version this build does not know is an error that
//! lists the ranges it knows: a flavor is only as good as the source that was read for it.
//!
//! What each library version does differently is [`super::flavor::Flavor`]; the ranges here
//! are where that description changes (docs/strategies.md cites the source of each boundary).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::flavor::Flavor;

/// A gRPC client library, or the A6 text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Library {
    /// gRFC A6 as written (as amended in 2024).
    A6,
    /// grpc-java (`io.grpc`, `RetriableStream`).
    GrpcJava,
    /// grpc-js (`@grpc/grpc-js`, Node).
    GrpcJs,
    /// gRPC C-core: grpcio (Python), Ruby, PHP, C++, Objective-C.
    CCore,
    /// grpc-go (`google.golang.org/grpc`).
    GrpcGo,
}

impl Library {
    /// Every library, as written in a profile.
    pub const ALL: [Library; 5] = [
        Library::A6,
        Library::GrpcJava,
        Library::GrpcJs,
        Library::CCore,
        Library::GrpcGo,
    ];

    /// The name written in a profile.
    pub fn name(self) -> &'static str {
        match self {
            Library::A6 => "a6",
            Library::GrpcJava => "grpc-java",
            Library::GrpcJs => "grpc-js",
            Library::CCore => "c-core",
            Library::GrpcGo => "grpc-go",
        }
    }

    /// What users know it as, for messages and reports.
    pub fn described(self) -> &'static str {
        match self {
            Library::A6 => "the gRFC A6 text",
            Library::GrpcJava => "gRPC for Java",
            Library::GrpcJs => "gRPC for Node",
            Library::CCore => "gRPC C-core: grpcio, Ruby, PHP, C++",
            Library::GrpcGo => "gRPC for Go",
        }
    }
}

/// A release number, `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u16, pub u16, pub u16);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A range of releases that behave alike: from `first` to `last`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Era {
    /// The first release.
    pub first: Version,
    /// The last release.
    pub last: Version,
}

impl Era {
    const fn new(first: (u16, u16, u16), last: (u16, u16, u16)) -> Self {
        Self {
            first: Version(first.0, first.1, first.2),
            last: Version(last.0, last.1, last.2),
        }
    }

    fn contains(&self, v: Version) -> bool {
        self.first <= v && v <= self.last
    }

    /// Whether any patch release of `major.minor` falls in it.
    fn meets_minor(&self, major: u16, minor: u16) -> bool {
        (self.first.0, self.first.1) <= (major, minor)
            && (major, minor) <= (self.last.0, self.last.1)
    }
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}–{}", self.first, self.last)
        }
    }
}

/// The releases this build knows, per library, in order: where the flavor changes. The
/// boundaries and what lies between them are cited in docs/strategies.md.
pub fn eras(library: Library) -> &'static [Era] {
    const JAVA: [Era; 4] = [
        Era::new((1, 41, 0), (1, 56, 1)),
        Era::new((1, 57, 0), (1, 70, 0)),
        Era::new((1, 71, 0), (1, 79, 0)),
        Era::new((1, 80, 0), (1, 83, 1)),
    ];
    const JS: [Era; 3] = [
        Era::new((1, 8, 0), (1, 13, 0)),
        Era::new((1, 13, 1), (1, 13, 4)),
        Era::new((1, 14, 0), (1, 14, 7)),
    ];
    const GO: [Era; 2] = [
        Era::new((1, 41, 0), (1, 68, 2)),
        Era::new((1, 69, 0), (1, 83, 1)),
    ];
    // Pinned by measuring grpcio releases (benches/flavors/probe.py): 1.52 has no wheel for
    // the Python measured; 1.77 and 1.79 were never released. 1.81–1.83 and 1.84–1.85 differ
    // only in what a run cannot reproduce (a call hung by a pushback of 0 outlives its
    // deadline up to 1.83), so they are one era.
    const C_CORE: [Era; 5] = [
        Era::new((1, 51, 0), (1, 51, 3)),
        Era::new((1, 53, 0), (1, 66, 2)),
        Era::new((1, 67, 0), (1, 71, 2)),
        Era::new((1, 72, 0), (1, 80, 1)),
        Era::new((1, 81, 0), (1, 85, 4)),
    ];
    match library {
        Library::A6 => &[],
        Library::GrpcJava => &JAVA,
        Library::GrpcJs => &JS,
        Library::CCore => &C_CORE,
        Library::GrpcGo => &GO,
    }
}

/// `client`: a library and the release the strategy behaves as (none for the A6 text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client {
    /// The library.
    pub library: Library,
    /// The release as written (`1.41` or `1.41.3`), or the newest known when none was.
    pub version: Option<Written>,
}

/// A release as a profile writes it: `MAJOR.MINOR` (any patch) or `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Written {
    /// Major and minor.
    pub minor: (u16, u16),
    /// The patch, if written.
    pub patch: Option<u16>,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.minor.0, self.minor.1)?;
        if let Some(p) = self.patch {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

impl Default for Client {
    fn default() -> Self {
        Self {
            library: Library::A6,
            version: None,
        }
    }
}

impl Client {
    /// Whether it is the A6 text (the default, left out of a written plan).
    pub fn is_a6(&self) -> bool {
        self.library == Library::A6
    }

    /// Reads `LIBRARY[@VERSION]`; a version outside the known ranges is an error that lists
    /// them. With no version, the newest known release.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, version) = match text.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (text, None),
        };
        let names: Vec<&str> = Library::ALL.iter().map(|l| l.name()).collect();
        let library = Library::ALL
            .into_iter()
            .find(|l| l.name() == name.trim())
            .ok_or_else(|| {
                format!(
                    "unknown client `{name}`; expected one of {} (optionally @VERSION, \
                     e.g. \"grpc-java@1.41\")",
                    names.join(", ")
                )
            })?;
        if library == Library::A6 {
            return match version {
                None => Ok(Self::default()),
                Some(_) => Err("\"a6\" is the gRFC A6 text; it has no version".into()),
            };
        }
        let Some(v) = version else {
            let last = eras(library).last().expect("every library has eras").last;
            return Ok(Self {
                library,
                version: Some(Written {
                    minor: (last.0, last.1),
                    patch: Some(last.2),
                }),
            });
        };
        let written = parse_version(v).ok_or_else(|| {
            format!("`{v}` is not a release number; write MAJOR.MINOR or MAJOR.MINOR.PATCH")
        })?;
        let client = Self {
            library,
            version: Some(written),
        };
        client.era()?;
        Ok(client)
    }

    /// The era the release falls in (an error naming the known ones if none, or if a
    /// `MAJOR.MINOR` spans two).
    pub fn era(&self) -> Result<Option<Era>, String> {
        let Some(w) = self.version else {
            return Ok(None);
        };
        let all = eras(self.library);
        let known = || {
            all.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let name = self.library.name();
        let found: Vec<Era> = match w.patch {
            Some(p) => {
                let v = Version(w.minor.0, w.minor.1, p);
                all.iter().copied().filter(|e| e.contains(v)).collect()
            }
            None => all
                .iter()
                .copied()
                .filter(|e| e.meets_minor(w.minor.0, w.minor.1))
                .collect(),
        };
        match found.as_slice() {
            [era] => Ok(Some(*era)),
            [] => Err(format!(
                "{name}@{w} is not a release this build knows; it knows {name} {} (the \
                 releases whose source was read; docs/strategies.md, \"Client flavors\")",
                known()
            )),
            several => Err(format!(
                "{name}@{w} spans releases that behave differently ({}); write the patch \
                 release, e.g. {name}@{}",
                several
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" and "),
                several[1].first
            )),
        }
    }

    /// The release it behaves as: the one written, or for `MAJOR.MINOR` the first known
    /// patch of that minor (every patch of a minor accepted behaves alike), or without a
    /// version the newest known; none for the A6 text.
    pub fn release(&self) -> Option<Version> {
        let newest = eras(self.library).last()?.last;
        let Some(w) = self.version else {
            return Some(newest);
        };
        let Ok(Some(era)) = self.era() else {
            return Some(newest);
        };
        Some(match w.patch {
            Some(p) => Version(w.minor.0, w.minor.1, p),
            None => Version(w.minor.0, w.minor.1, 0).max(era.first),
        })
    }

    /// What the strategy's A6 policies do, as this library release does it.
    pub fn flavor(&self) -> Flavor {
        match self.release() {
            Some(v) => Flavor::of(self.library, v),
            None => Flavor::A6,
        }
    }
}

fn parse_version(v: &str) -> Option<Written> {
    let parts: Vec<&str> = v.trim().split('.').collect();
    let num = |s: &str| -> Option<u16> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match parts.as_slice() {
        [major, minor] => Some(Written {
            minor: (num(major)?, num(minor)?),
            patch: None,
        }),
        [major, minor, patch] => Some(Written {
            minor: (num(major)?, num(minor)?),
            patch: Some(num(patch)?),
        }),
        _ => None,
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.library.name())?;
        if let Some(v) = self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

impl Serialize for Client {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Client {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Client::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_read() {
        let c = Client::parse("grpc-java@1.41").unwrap();
        assert_eq!(
            (c.library, c.to_string()),
            (Library::GrpcJava, "grpc-java@1.41".into())
        );
        assert_eq!(c.era().unwrap().unwrap(), eras(Library::GrpcJava)[0]);
        assert_eq!(
            Client::parse("grpc-js").unwrap().to_string(),
            "grpc-js@1.14.7",
            "no version: the newest known"
        );
        assert!(Client::parse("a6").unwrap().is_a6());
        assert_eq!(
            Client::parse("c-core@1.51.1")
                .unwrap()
                .era()
                .unwrap()
                .unwrap()
                .first,
            Version(1, 51, 0)
        );
    }

    fn flavor_at(library: Library, v: Version) -> Flavor {
        Client::parse(&format!("{}@{v}", library.name()))
            .unwrap()
            .flavor()
    }

    /// The ranges are where the flavor changes (the module's promise): every release of an
    /// era behaves as its first, and each era behaves differently from the one before it.
    #[test]
    fn each_era_is_where_the_flavor_changes() {
        for library in Library::ALL {
            let all = eras(library);
            for era in all {
                assert_eq!(
                    flavor_at(library, era.first),
                    flavor_at(library, era.last),
                    "{} {era}",
                    library.name()
                );
            }
            for pair in all.windows(2) {
                assert_ne!(
                    flavor_at(library, pair[0].last),
                    flavor_at(library, pair[1].first),
                    "{} {} and {} behave alike: one era",
                    library.name(),
                    pair[0],
                    pair[1]
                );
            }
        }
    }

    #[test]
    fn unknown_versions_list_the_known_ranges() {
        let e = Client::parse("grpc-java@1.30").unwrap_err();
        assert!(
            e.contains("1.41.0–1.56.1") && e.contains("1.80.0–1.83.1"),
            "{e}"
        );
        let e = Client::parse("c-core@1.52").unwrap_err();
        assert!(e.contains("1.51.0–1.51.3, 1.53.0–1.66.2"), "{e}");
        let e = Client::parse("grpc-js@1.13").unwrap_err();
        assert!(e.contains("spans") && e.contains("grpc-js@1.13.1"), "{e}");
        assert!(Client::parse("grpc-js@1.13.0").is_ok());
        for bad in [
            "java",
            "grpc-java@x",
            "grpc-java@1",
            "a6@1.0",
            "grpc-go@1.2.3.4",
        ] {
            assert!(Client::parse(bad).is_err(), "{bad}");
        }
    }
}
