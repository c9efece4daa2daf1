//! The request template against a message of every field kind: encoded once, by fields or
//! parsed per call, always the message the JSON says; and its errors.

use prost_reflect::{DynamicMessage, MessageDescriptor, Value};

use super::fast::decoded;
use super::request::{Encoding, JsonTemplate, RequestTemplate, normal, parse};
use crate::template::Keys;

const PROTO: &str = r#"
syntax = "proto3";
package t;
import "google/protobuf/timestamp.proto";
enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; KIND_B = 2; }
message Inner { int32 depth = 1; string label = 2; Inner child = 3; }
message Req {
  string id = 1; int64 n = 2; int32 small = 3; uint32 u = 4; sint32 s = 5; sint64 s64 = 6;
  fixed32 f32 = 7; fixed64 f64 = 8; sfixed32 sf32 = 9; sfixed64 sf64 = 10;
  double d = 11; float fl = 12; bool flag = 13; Kind kind = 14; bytes blob = 15;
  Inner inner = 16; repeated string tags = 17; map<string, string> attrs = 18;
  google.protobuf.Timestamp at = 19; optional int32 opt = 20;
  oneof pick { string a = 21; int32 b = 22; }
  string user_name = 23;
}
"#;

fn input() -> MessageDescriptor {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.proto");
    std::fs::write(&path, PROTO).unwrap();
    let pool = super::proto::compile(&[path], &[]).unwrap();
    pool.get_message_by_name("t.Req").unwrap()
}

/// Every call's request, as encoded, is the message its rendered JSON parses to.
fn assert_encodes_as_parsed(input: &MessageDescriptor, text: &str, encoding: Encoding) {
    let template = RequestTemplate::new(input, text, 7, 10_000).unwrap();
    assert_eq!(template.encoding(), encoding, "{text}");
    let json = JsonTemplate::parse(text).unwrap();
    for call in (0..300).chain([9_999, 10_000]) {
        let framed = template.framed(call).unwrap();
        assert_eq!(
            u32::from_be_bytes(framed[1..5].try_into().unwrap()) as usize,
            framed.len() - 5
        );
        let got = decoded(input, &framed).unwrap();
        let want = normal(&parse(input, &json.render(&Keys::new(7, call))).unwrap());
        // Compared as values: a recursive message type's `Debug` does not end.
        assert!(got == want, "call {call} of {text}: {got} against {want}");
    }
}

#[test]
fn a_request_without_placeholders_is_encoded_once() {
    let input = input();
    let text = r#"{"id": "x", "inner": {"depth": 3}, "tags": ["a"], "kind": "KIND_B"}"#;
    assert_encodes_as_parsed(&input, text, Encoding::Once);
    let t = RequestTemplate::new(&input, text, 1, 10).unwrap();
    assert_eq!(t.framed(0).unwrap(), t.framed(99).unwrap());
}

/// Placeholders in singular plain fields, nested too, are written per call after the rest:
/// every integer encoding, double, enum and bool by choice, a default left out, presence kept.
#[test]
fn placeholders_in_singular_fields_are_encoded_by_fields() {
    let input = input();
    for text in [
        r#"{"id": "order-{{call}}-{{uuid}}", "n": {{call}}}"#,
        r#"{"id": "x", "small": "{{int -5 5}}", "u": {{int 0 9}}, "s": {{int -3 3}}}"#,
        r#"{"s64": {{int -9 9}}, "f32": {{int 0 7}}, "f64": {{int 0 7}}, "sf32": {{int -2 2}}}"#,
        r#"{"sf64": {{int -2 2}}, "d": {{int -100 100}}, "n": "{{int -9223372036854775808 9223372036854775807}}"}"#,
        r#"{"kind": "{{choice KIND_A KIND_B}}", "flag": {{choice true false}}}"#,
        r#"{"kind": {{choice 0 1 2}}, "d": {{choice 1.5 -2e3}}}"#,
        r#"{"inner": {"label": "{{request_id}}", "child": {"depth": {{int 0 3}}, "label": "c"}}, "tags": ["t"]}"#,
        r#"{"opt": {{int 0 1}}, "a": "{{choice "" x}}", "userName": "{{string 5}}"}"#,
        r#"{"id": "{{choice "q\"uote" "back\\slash"}}", "inner": {}}"#,
        r#"{"blob": "{{choice AAAA BBBB}}", "id": "{{call}}"}"#,
    ] {
        assert_encodes_as_parsed(&input, text, Encoding::Fields);
    }
}

/// A placeholder in a map's key, bytes or float other than by choice, or a well-known type:
/// parsed per call. (Lists and map values: `fast::tests`.)
#[test]
fn other_placeholders_are_parsed_per_call() {
    let input = input();
    for text in [
        r#"{"attrs": {"{{string 3}}": "v"}}"#,
        r#"{"at": "2026-01-0{{int 1 9}}T00:00:00Z"}"#,
        r#"{"fl": {{int 0 5}}}"#,
        r#"{"blob": "QUJD{{choice QQ== Qg==}}"}"#,
    ] {
        assert_encodes_as_parsed(&input, text, Encoding::Parsed);
    }
    for text in [
        r#"{"tags": ["a", "{{call}}"]}"#,
        r#"{"attrs": {"k": "{{uuid}}"}}"#,
        r#"{"flag": {{choice true false}}, "tags": ["{{call}}"]}"#,
    ] {
        assert_encodes_as_parsed(&input, text, Encoding::Fields);
    }
}

fn error(text: &str) -> String {
    RequestTemplate::new(&input(), text, 1, 10_000)
        .unwrap_err()
        .0
}

/// A field the message does not have names the field, the message type, its fields and the
/// closest name; nested too.
#[test]
fn an_unknown_field_names_the_field_and_the_message_type() {
    let e = error(r#"{"idd": "x"}"#);
    assert!(
        e.starts_with("field `idd` is not in t.Req (did you mean `id`?); its fields: id, n,"),
        "{e}"
    );
    let e = error(r#"{"inner": {"depht": 1}}"#);
    assert!(e.starts_with("field `inner.depht` is not in t.Inner (did you mean `depth`?); its fields: depth, label, child"), "{e}");
}

/// A value of the wrong type names the field, its type and message; an enum lists its values;
/// a value only some placeholder values break names the placeholder and the value.
#[test]
fn a_value_of_the_wrong_type_names_the_field_and_its_type() {
    let e = error(r#"{"id": 5}"#);
    assert_eq!(
        e,
        "field `id` (string in t.Req): invalid type: integer `5`, expected a string"
    );
    let e = error(r#"{"inner": {"depth": "deep"}}"#);
    assert_eq!(
        e,
        "field `inner.depth` (int32 in t.Inner): invalid digit found in string"
    );
    let e = error(r#"{"kind": "KIND_C"}"#);
    assert!(e.contains("(enum t.Kind in t.Req): unrecognized enum value 'KIND_C'; its values: KIND_UNSPECIFIED, KIND_A, KIND_B"), "{e}");
    let e = error(r#"{"small": {{int 1 99999999999}}}"#);
    assert!(
        e.starts_with("with {{int 1 99999999999}} as 99999999999: field `small` (int32 in t.Req)"),
        "{e}"
    );
    let e = error(r#"{"kind": "{{choice KIND_A KIND_Z}}"}"#);
    assert!(
        e.starts_with("with {{choice KIND_A KIND_Z}} as KIND_Z: "),
        "{e}"
    );
    let e = error(r#"{"id": "x""#);
    assert!(
        e.starts_with("not valid JSON: EOF while parsing an object"),
        "{e}"
    );
    let e = error(r#"{"id": "x"} trailing"#);
    assert!(e.contains("after the message"), "{e}");
    let e = error(r#"{"id": "{{nope}}"}"#);
    assert!(e.contains("unknown placeholder `nope`"), "{e}");
}

/// The fast encoding's message, decoded, for a look at what a server receives.
#[test]
fn what_a_server_decodes() {
    let input = input();
    let t = RequestTemplate::new(
        &input,
        r#"{"id": "c-{{call}}", "inner": {"depth": {{call}}}}"#,
        1,
        100,
    )
    .unwrap();
    let m: DynamicMessage = decoded(&input, &t.framed(42).unwrap()).unwrap();
    assert_eq!(m.get_field_by_name("id").unwrap().as_str(), Some("c-42"));
    let inner = m.get_field_by_name("inner").unwrap();
    let Value::Message(inner) = inner.as_ref() else {
        panic!()
    };
    assert_eq!(inner.get_field_by_name("depth").unwrap().as_i32(), Some(42));
}
