//! The check against the whole parse per value it replaces (kept here as the reference): the
//! same answer and the same error, word for word, for placeholders in every kind of place; and
//! what it reads, counted.

use prost_reflect::MessageDescriptor;

use super::{Reading, alternatives, check_reading, render};
use crate::schema::SchemaError;
use crate::schema::request::{JsonTemplate, MAX_TEXT, parse};
use crate::template::{Keys, MAX_HOLES};

const PROTO: &str = r#"
syntax = "proto3";
package c;
import "google/protobuf/struct.proto";
import "google/protobuf/any.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; KIND_B = 2; }
message Inner {
  int32 depth = 1; string label = 2; Inner child = 3;
  oneof o { string x = 4; int32 y = 5; }
}
message Req {
  string id = 1; int32 small = 2; int64 n = 3; double d = 4; bool flag = 5; Kind kind = 6;
  bytes blob = 7; Inner inner = 8; repeated int32 ints = 9; repeated string tags = 10;
  repeated Inner items = 11; map<string, string> attrs = 12; map<int32, Inner> by_id = 13;
  map<bool, int32> flags = 14;
  oneof pick { string a = 15; int32 b = 16; Inner c = 17; }
  google.protobuf.Struct s = 18; google.protobuf.Value v = 19; google.protobuf.ListValue lv = 20;
  google.protobuf.Any any = 21; google.protobuf.Timestamp at = 22; google.protobuf.Int32Value w = 23;
  repeated Kind kinds = 24; string user_name = 25; optional int32 opt = 26;
}
"#;

fn input() -> MessageDescriptor {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.proto");
    std::fs::write(&path, PROTO).unwrap();
    let pool = crate::schema::proto::compile(&[path], &[]).unwrap();
    pool.get_message_by_name("c.Req").unwrap()
}

/// The check as it was: the whole request parsed once per value.
fn whole_per_value(
    input: &MessageDescriptor,
    json: &JsonTemplate,
    seed: u64,
    last_call: u64,
) -> Result<(), SchemaError> {
    let keys = Keys::new(seed, 0);
    let alts: Vec<Vec<String>> = json
        .holes()
        .map(|(h, _)| alternatives(h, &keys, last_call))
        .collect();
    let base: Vec<String> = alts.iter().map(|a| a[0].clone()).collect();
    parse(input, &render(json, &base, None).0).map_err(|e| {
        let shown: Vec<String> = json
            .holes()
            .zip(&base)
            .take(3)
            .map(|((h, _), v)| format!("{} as {v}", h.written))
            .collect();
        if shown.is_empty() {
            SchemaError(e)
        } else {
            SchemaError(format!("with {}: {e}", shown.join(", ")))
        }
    })?;
    for (i, ((hole, _), alts)) in json.holes().zip(&alts).enumerate() {
        for alt in alts.iter().skip(1) {
            let text = render(json, &base, Some((i, alt))).0;
            parse(input, &text)
                .map_err(|e| SchemaError(format!("with {} as {alt}: {e}", hole.written)))?;
        }
    }
    Ok(())
}

/// The check's answer, the reference's, and what the check read.
fn both(
    input: &MessageDescriptor,
    text: &str,
) -> (Result<(), String>, Result<(), String>, Reading) {
    let json = JsonTemplate::parse(text).unwrap();
    let mut reading = Reading::default();
    let got = check_reading(input, &json, 3, 1_000, &mut reading).map_err(|e| e.0);
    let want = whole_per_value(input, &json, 3, 1_000).map_err(|e| e.0);
    (got, want, reading)
}

/// Where a placeholder can sit (`H`), in every kind of place the check reads alone or not.
const PLACES: &[&str] = &[
    r#"{"id": "pre-H-post"}"#,
    r#"{"id": H}"#,
    r#"{"small": H}"#,
    r#"{"small": "H"}"#,
    r#"{"n": "1H"}"#,
    r#"{"d": H, "id": "x"}"#,
    r#"{"flag": H}"#,
    r#"{"kind": "H"}"#,
    r#"{"kind": H}"#,
    r#"{"blob": "H"}"#,
    r#"{"inner": {"depth": H, "label": "x"}}"#,
    r#"{"inner": {"x": "a", "y": H}}"#,
    r#"{"inner": {"y": H, "x": null}}"#,
    r#"{"inner": H}"#,
    r#"{"inner": {"child": {"child": {"label": "H"}}}}"#,
    r#"{"ints": [1, H, 3]}"#,
    r#"{"ints": [1H]}"#,
    r#"{"tags": ["a", "H"]}"#,
    r#"{"items": [{"depth": 1}, {"depth": H}]}"#,
    r#"{"attrs": {"H": "v", "k": "w"}}"#,
    r#"{"attrs": {"k": "H"}}"#,
    r#"{"attrs": {"k": H}}"#,
    r#"{"by_id": {"H": {}}}"#,
    r#"{"byId": {"1": {"depth": H}}}"#,
    r#"{"flags": {"H": 1}}"#,
    r#"{"a": "x", "b": H}"#,
    r#"{"b": H, "a": null}"#,
    r#"{"c": {"depth": 1}, "b": H}"#,
    r#"{"a": "x", "small": H}"#,
    r#"{"H": 1}"#,
    r#"{"H": "x", "a": "y"}"#,
    r#"{"userName": "x", "H": "y"}"#,
    r#"{"opt": 1, "H": 2}"#,
    r#"{"s": {"k": H}}"#,
    r#"{"s": {"H": 1}}"#,
    r#"{"s": {"k": [H, {"z": "H"}]}}"#,
    r#"{"v": H}"#,
    r#"{"v": "H"}"#,
    r#"{"lv": [1, H]}"#,
    r#"{"any": {"@type": "type.googleapis.com/c.Inner", "depth": H}}"#,
    r#"{"any": {"@type": "type.googleapis.com/c.H"}}"#,
    r#"{"at": "2026-01-0HT00:00:00Z"}"#,
    r#"{"w": H}"#,
    r#"{"kinds": [H, "KIND_A"]}"#,
    r#"{"small": 1 H}"#,
    r#"{"id": "x" H}"#,
    r#"{"id": "\H"}"#,
    r#"{"id": "\uD83DH"}"#,
    r#"{"id": "H\uDE00"}"#,
    r#"{"s": {"k": [[[[[[H]]]]]]}}"#,
    r#"{"inner": {"child": {"child": {"child": {"child": {"depth": H}}}}}}"#,
    r#"H"#,
    r#"{"id": "x"}H"#,
];

/// What a placeholder can be (`{{...}}`): values of every shape, in a string or bare.
const HOLES: &[&str] = &[
    r#"{{choice 1 2}}"#,
    r#"{{choice 1 "\"x\""}}"#,
    r#"{{choice null 1}}"#,
    r#"{{choice 1 null}}"#,
    r#"{{choice "[1]" "{}" 1}}"#,
    r#"{{choice 1 "1, \"small\": 2"}}"#,
    r#"{{choice 1 "1, \"a\": \"z\""}}"#,
    r#"{{choice 1 "1], \"tags\": [\"x\""}}"#,
    r#"{{choice x "y\\z" "\"q\""}}"#,
    r#"{{choice "" "\\n" "n"}}"#,
    r#"{{choice a "\\u00e9" "\\ude00" "\\ud83d"}}"#,
    r#"{{choice KIND_A KIND_B 1 KIND_C}}"#,
    r#"{{int 0 99999999999}}"#,
    r#"{{int 1 9}}"#,
    r#"{{call}}"#,
    r#"{{choice depth label nope}}"#,
    r#"{{choice id small userName user_name a b}}"#,
    r#"{{choice true false 0}}"#,
    r#"{{choice 1 "[[[[[[[[[[[[[[1]]]]]]]]]]]]]]"}}"#,
    r#"{{choice 1 "}"}}"#,
    r#"{{choice 1 1 1 "\"x\""}}"#,
    r#"{{choice QUJD QQ== "QUJ"}}"#,
    r#"{{choice 1 "{\"depth\": 2}" "{\"x\": \"a\"}"}}"#,
    r#"{{choice Inner Req Nope}}"#,
    r#"{{choice 1 "1e999" "-0" "01"}}"#,
];

/// Every place with every kind of placeholder: the check answers as the whole parse per value
/// does, error for error.
#[test]
fn every_place_and_value_answers_as_the_whole_parse() {
    let input = input();
    let (mut passed, mut failed) = (0, 0);
    for place in PLACES {
        for hole in HOLES {
            let text = place.replace('H', hole);
            let Ok(json) = JsonTemplate::parse(&text) else {
                continue;
            };
            drop(json);
            let (got, want, _) = both(&input, &text);
            assert_eq!(got, want, "{text}");
            if got.is_ok() {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    // Both answers are well represented (the cases are not all one way).
    assert!(
        passed > 150 && failed > 300,
        "{passed} passed, {failed} failed"
    );
}

/// Two placeholders at once, each in the other's place: still the same answers.
#[test]
fn placeholders_together_answer_as_the_whole_parse() {
    let input = input();
    for text in [
        r#"{"a": {{choice null "\"x\""}}, "b": {{choice null 1}}}"#,
        r#"{"{{choice a b}}": {{choice null 1}}, "b": null}"#,
        r#"{"{{choice a id}}": "x", "{{choice b small}}": 1}"#,
        r#"{"opt": {{choice null 1}}, "opt": {{choice null 2}}}"#,
        r#"{"inner": {"x": "{{call}}", "y": {{choice null 1}}}, "c": {"y": {{choice null 2}}}}"#,
        r#"{"attrs": {"{{choice k j}}": "1", "{{choice j k}}": "{{call}}"}}"#,
        r#"{"id": "{{choice "\\" a}}{{choice "\\" b}}"}"#,
        r#"{"s": {"{{choice k j}}": {{choice 1 "{}"}}, "j": [{{call}}]}}"#,
        r#"{"ints": [{{int 0 99999999999}}, {{call}}], "tags": ["{{call}}", {{choice "\"a\"" 1}}]}"#,
    ] {
        let (got, want, _) = both(&input, text);
        assert_eq!(got, want, "{text}");
    }
}

/// A value nested deeper than the one it replaces, near a nesting limit (serde_json's 128
/// levels of JSON; prost's 100 levels of messages, met by a `Struct` read back): read whole,
/// since alone it would read.
#[test]
fn a_value_nested_deeper_near_a_limit_is_read_whole() {
    let input = input();
    let deep = |open: &str, close: &str, n| (open.repeat(n), close.repeat(n));
    // No `}}` inside a placeholder: its values' braces apart.
    let (open, close) = deep(r#"{"child": "#, " }", 10);
    let alt = format!("{open}{{ }}{close}").replace('"', r#"\""#);
    for (levels, limit) in [(118, true), (100, false)] {
        let (open, close) = deep(r#"{"child": "#, "}", levels);
        let text = format!(r#"{{"inner": {open}{{{{choice "{{ }}" "{alt}"}}}}{close}}}"#);
        let (got, want, _) = both(&input, &text);
        assert_eq!(got, want);
        assert_eq!(got.is_err(), limit, "{got:?}");
    }
    for (levels, limit) in [(44, true), (30, false)] {
        let (open, close) = deep("[", "]", levels);
        let text =
            format!(r#"{{"s": {{"k": {open}{{{{choice 1 "[[[[[[[[[[1]]]]]]]]]]"}}}}{close}}}}}"#);
        let (got, want, _) = both(&input, &text);
        assert_eq!(got, want);
        assert_eq!(got.is_err(), limit, "{got:?}");
        if limit {
            assert!(got.unwrap_err().contains("recursion limit"));
        }
    }
}

/// A request of the largest size with the most placeholders, each of many values: read whole
/// once, the rest in parts of a few bytes (the whole parse per value would read it 86,017
/// times); an error in the last value of the last placeholder found, with the whole parse's
/// words.
#[test]
fn the_largest_request_with_the_most_placeholders_is_read_once() {
    let input = input();
    let hole = r#"{{choice 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22}}"#;
    let holes: Vec<&str> = vec![hole; MAX_HOLES];
    let lists = holes.join(", ");
    let filler = MAX_TEXT - lists.len() - 64;
    let text = format!(r#"{{"id": "{}", "ints": [{lists}]}}"#, "x".repeat(filler));
    assert!(text.len() <= MAX_TEXT);
    let json = JsonTemplate::parse(&text).unwrap();
    let mut reading = Reading::default();
    check_reading(&input, &json, 1, 10, &mut reading).unwrap();
    assert_eq!(reading.whole, 1, "{reading:?}");
    assert!(reading.bytes < 3 * text.len(), "{reading:?}");

    // The same with the last value of the last placeholder not an integer.
    let bad = text.replacen("21 22}}]", r#"21 "\"x\""}}]"#, 1);
    assert_ne!(bad, text);
    let json = JsonTemplate::parse(&bad).unwrap();
    let mut reading = Reading::default();
    let e = check_reading(&input, &json, 1, 10, &mut reading)
        .unwrap_err()
        .0;
    assert_eq!(reading.whole, 2, "{reading:?}");
    assert_eq!(
        e,
        format!(
            "with {} as \"x\": field `ints[4095]` (int32 in c.Req): invalid digit found in \
             string",
            hole.replace("21 22}}", r#"21 "\"x\""}}"#)
        )
    );
}

/// A large string any string fits, with many placeholders in it: each value read alone (not
/// the string again).
#[test]
fn placeholders_in_a_large_string_are_read_alone() {
    let input = input();
    let parts: Vec<String> = (0..1000)
        .map(|_| format!("{}{{{{choice a \"\\\"b\" c}}}}", "y".repeat(1000)))
        .collect();
    let text = format!(
        r#"{{"id": "{}", "attrs": {{"k": "{}"}}}}"#,
        parts.join(""),
        parts[0]
    );
    let (got, want, reading) = both(&input, &text);
    assert_eq!(got, want);
    assert!(got.is_ok());
    assert_eq!(reading.whole, 1);
    assert!(reading.bytes < 3 * text.len(), "{reading:?}");
}
