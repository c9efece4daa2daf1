//! Scripted answers: `[[backend.scripts]]`, a status sequence for chosen requests, each step
//! with its own latency and `grpc-retry-pushback-ms` values (docs/profiles.md, "Scripts").
//!
//! Scripts exist to check what a client does with an exact answer: a pushback that is
//! negative, malformed, beyond 32 bits, or sent several times (docs/strategies.md, "Client
//! flavors").

use serde::{Deserialize, Serialize};

use super::latency::Latency;
use crate::protocol::StatusCode;

/// At most this many `grpc-retry-pushback-ms` values in one step.
pub const MAX_PUSHBACK_VALUES: usize = 4;

/// A scripted status sequence: the n-th attempt of a chosen request gets the n-th step. The
/// backend counts attempts per request id; attempts beyond the script are answered OK.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptPlan {
    /// Request ids the script applies to (resilbench sends the call's index as its id).
    #[serde(default)]
    pub ids: Vec<String>,
    /// Applies to every n-th call (calls whose numeric id is `offset` modulo `every`).
    pub every: Option<u64>,
    /// See `every`.
    #[serde(default)]
    pub offset: u64,
    /// What successive attempts get.
    pub steps: Vec<StepPlan>,
}

/// One step of a script. In a profile a status name alone (`"UNAVAILABLE"`) is a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields)]
pub struct StepPlan {
    /// The status to answer with.
    pub status: StatusCode,
    /// The service time, instead of the backend's latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Raw `grpc-retry-pushback-ms` values to send (any text: gRFC A6 defines what clients do
    /// with negative or malformed values, and scripts exist to check exactly that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushback: Option<PushbackValues>,
}

impl Serialize for StepPlan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StepPlan::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for StepPlan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StepPlan;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a status name, or a table like { status = \"UNAVAILABLE\", latency = \"5ms\" }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StepPlan, E> {
                Ok(StepPlan {
                    status: StatusCode::parse(v)
                        .map_err(|m| E::custom(super::tagged::nested("status", &m)))?,
                    latency: None,
                    pushback: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<StepPlan, A::Error> {
                StepPlan::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The `grpc-retry-pushback-ms` values a step sends, each as written, one header field each
/// in order: `pushback = "100"`, or several, `pushback = ["10", "20"]` (at most
/// [`MAX_PUSHBACK_VALUES`], checked with the profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushbackValues(Vec<String>);

impl PushbackValues {
    /// One value.
    pub fn one(value: String) -> Self {
        Self(vec![value])
    }

    /// Several values, in order (a profile holds at most [`MAX_PUSHBACK_VALUES`]).
    pub fn several(values: Vec<String>) -> Self {
        Self(values)
    }

    /// The values, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (refused in a profile).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for PushbackValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl Serialize for PushbackValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            several => several.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PushbackValues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PushbackValues;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a pushback value as text (\"100\"), or a list of them ([\"10\", \"20\"])",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PushbackValues, E> {
                Ok(PushbackValues::one(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<PushbackValues, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<String>()? {
                    if values.len() == MAX_PUSHBACK_VALUES {
                        return Err(serde::de::Error::custom(format!(
                            "at most {MAX_PUSHBACK_VALUES} pushback values in one step"
                        )));
                    }
                    values.push(v);
                }
                Ok(PushbackValues(values))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_or_several_round_trip() {
        #[derive(Deserialize, Serialize)]
        struct Step {
            pushback: PushbackValues,
        }
        for text in ["pushback = \"100\"\n", "pushback = [\"10\", \"soon\"]\n"] {
            let step: Step = toml::from_str(text).unwrap();
            assert_eq!(toml::to_string(&step).unwrap(), text);
        }
        let step: Step = toml::from_str("pushback = [\"10\", \"20\"]").unwrap();
        assert_eq!(step.pushback.iter().collect::<Vec<_>>(), ["10", "20"]);
        let five = "pushback = [\"1\", \"2\", \"3\", \"4\", \"5\"]";
        let e = toml::from_str::<Step>(five).err().unwrap().to_string();
        assert!(e.contains("at most 4 pushback values"), "{e}");
        assert!(toml::from_str::<Step>("pushback = 5").is_err());
    }
}
