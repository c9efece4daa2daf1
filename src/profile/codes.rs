//! Status codes as a profile writes them: by name in any case or by number, checked when the
//! profile is read and held as [`StatusCode`] from then on, so no consumer parses them again.
//!
//! Tables keyed by status (`errors = { UNAVAILABLE = 0.01 }`) are read as the file writes
//! them, then keyed by code: a name that is not a status, or two names for one status
//! (`unavailable` and `UNAVAILABLE`), are errors at that key ([`super::tagged::nested`]
//! carries the key into the error's path, so the user sees its line).

use std::collections::BTreeMap;

use serde::de::Error;
use serde::{Deserialize, Deserializer};

use super::tagged::nested;
use crate::protocol::StatusCode;

/// A table keyed by status code (`#[serde(deserialize_with = "codes::table")]`).
pub fn table<'de, D, V>(d: D) -> Result<BTreeMap<StatusCode, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    let written = BTreeMap::<String, V>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (name, value) in written {
        let code = StatusCode::parse(&name).map_err(|m| D::Error::custom(nested(&name, &m)))?;
        if out.insert(code, value).is_some() {
            let message = format!("{code} is listed twice");
            return Err(D::Error::custom(nested(&name, &message)));
        }
    }
    Ok(out)
}

/// An optional [`table`].
pub fn optional_table<'de, D, V>(d: D) -> Result<Option<BTreeMap<StatusCode, V>>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(bound = "V: Deserialize<'de>")]
    struct Table<V>(#[serde(deserialize_with = "table")] BTreeMap<StatusCode, V>);
    Ok(Option::<Table<V>>::deserialize(d)?.map(|t| t.0))
}
