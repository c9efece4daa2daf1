//! Lists, packed lists, repeated messages and maps holding placeholders: the per-call bytes
//! decode to the message the rendered JSON parses to (prost-reflect `DynamicMessage`
//! equality), for a table of templates and for templates drawn at random.

use std::sync::LazyLock;

use proptest::prelude::*;
use prost_reflect::MessageDescriptor;

use super::super::request::{Encoding, JsonTemplate, RequestTemplate, normal, parse};
use super::{Fields, decoded};
use crate::template::Keys;

const PROTO: &str = r#"
syntax = "proto3";
package l;
import "google/protobuf/timestamp.proto";
enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; KIND_B = 2; }
message Item {
  string name = 1; int32 qty = 2; repeated string notes = 3; Item child = 4;
  map<string, int64> counts = 5; repeated int32 sizes = 6;
}
message Req {
  repeated string tags = 1; repeated int32 ints = 2; repeated sint64 zig = 3;
  repeated fixed32 fx = 4; repeated sfixed64 sfx = 5; repeated double ds = 6;
  repeated Kind kinds = 7; repeated bool flags = 8;
  repeated int64 loose = 9 [packed = false];
  repeated Item items = 10; map<string, string> labels = 11; map<int32, Item> by_id = 12;
  map<bool, string> by_flag = 13; Item one = 14; repeated bytes blobs = 15;
  repeated float fls = 16; string id = 17; repeated uint64 big = 18;
  repeated google.protobuf.Timestamp ats = 19; repeated sint32 zig32 = 20;
  repeated uint32 u32 = 21 [packed = false];
}
"#;

fn input() -> MessageDescriptor {
    static INPUT: LazyLock<MessageDescriptor> = LazyLock::new(compile);
    INPUT.clone()
}

fn compile() -> MessageDescriptor {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.proto");
    std::fs::write(&path, PROTO).unwrap();
    let pool = super::super::proto::compile(&[path], &[]).unwrap();
    pool.get_message_by_name("l.Req").unwrap()
}

/// The encoding chosen for `text`, after checking that every call in `calls` decodes to what
/// its rendered JSON parses to.
fn encodes_as_parsed(
    input: &MessageDescriptor,
    text: &str,
    calls: impl IntoIterator<Item = u64>,
) -> Result<Encoding, String> {
    let template = RequestTemplate::new(input, text, 7, 10_000).map_err(|e| e.0)?;
    let json = JsonTemplate::parse(text).unwrap();
    for call in calls {
        let framed = template.framed(call)?;
        let len = u32::from_be_bytes(framed[1..5].try_into().unwrap()) as usize;
        if len != framed.len() - 5 {
            return Err(format!("call {call}: prefix says {len} bytes"));
        }
        let got = decoded(input, &framed).ok_or("does not decode")?;
        let want = normal(&parse(input, &json.render(&Keys::new(7, call)))?);
        if got != want {
            return Err(format!("call {call} of {text}: {got} against {want}"));
        }
    }
    Ok(template.encoding())
}

fn calls() -> impl Iterator<Item = u64> {
    (0..200).chain([4_999, 9_999, 10_000])
}

/// Lists with placeholders at the start, middle and end, packed and not, of every number
/// type, repeated messages at any depth, map values: written per call by fields.
#[test]
fn placeholders_in_lists_and_map_values_are_encoded_by_fields() {
    let input = input();
    for text in [
        r#"{"tags": ["{{call}}", "b", "c"]}"#,
        r#"{"tags": ["a", "x-{{uuid}}-y", "c"], "id": "{{call}}"}"#,
        r#"{"tags": ["a", "b", "{{request_id}}"]}"#,
        r#"{"tags": ["{{choice p "q\"q" ""}}", "", "{{string 3}}", ""]}"#,
        r#"{"ints": [1, {{int -5 5}}, 3, {{call}}]}"#,
        r#"{"ints": [{{int 0 0}}], "zig": [{{int -1000 1000}}, -1], "zig32": [-3, "{{int -2 2}}"]}"#,
        r#"{"fx": [{{int 0 4294967295}}, 7], "sfx": [-9, {{int -9 9}}], "ds": [0.5, {{int -3 3}}]}"#,
        r#"{"kinds": ["KIND_A", "{{choice KIND_A KIND_B KIND_UNSPECIFIED}}"], "flags": [{{choice true false}}, true]}"#,
        r#"{"kinds": [{{choice 0 1 2}}, 2, 1]}"#,
        r#"{"big": [{{int 0 9223372036854775807}}, 18446744073709551615, {{call}}]}"#,
        r#"{"loose": [{{call}}, 5, {{int -3 3}}, 0], "u32": [{{int 0 1}}, 0, 1]}"#,
        r#"{"items": [{"name": "a"}, {"name": "{{call}}", "qty": {{int 0 9}}}, {}]}"#,
        r#"{"items": [{"child": {"notes": ["x", "{{uuid}}"]}, "counts": {"k": {{call}}, "j": 3}}, {"qty": 2}]}"#,
        r#"{"items": [{"sizes": [1, {{int 0 300}}, 100000]}, {"child": {"child": {"name": "{{call}}"}}}]}"#,
        r#"{"labels": {"a": "1", "b": "{{uuid}}", "c": "x-{{call}}", "d": ""}}"#,
        r#"{"byId": {"7": {"name": "{{call}}"}, "8": {"name": "c"}, "-1": {"qty": {{int 0 2}}}}}"#,
        r#"{"byFlag": {"true": "{{choice y n ""}}", "false": "f"}}"#,
        r#"{"one": {"notes": ["{{call}}"], "name": "n", "child": {"counts": {"z": {{int 0 1}}}}}}"#,
        r#"{"id": "{{call}}", "tags": ["a"], "ints": [{{call}}], "labels": {"k": "v"}, "one": {"sizes": [{{call}}]}}"#,
        r#"{"blobs": ["AAAA", "{{choice AAAA BBBB}}"], "fls": [1.5, {{choice 1.5 2.25 0}}]}"#,
        r#"{"tags": ["{{string 200}}", "{{call}}"], "items": [{"name": "{{string 300}}"}]}"#,
    ] {
        let encoding = encodes_as_parsed(&input, text, calls()).unwrap();
        assert_eq!(encoding, Encoding::Fields, "{text}");
    }
}

/// A map key holding a placeholder (two entries could meet on one call), bytes or a float
/// by other placeholders, a well-known type in a list: parsed per call, the same message.
#[test]
fn other_placeholders_in_lists_and_maps_are_parsed_per_call() {
    let input = input();
    for text in [
        r#"{"labels": {"{{string 3}}": "v", "k": "w"}}"#,
        r#"{"byId": {"{{int 1 3}}": {"name": "a"}, "2": {}}}"#,
        r#"{"fls": [{{int 0 5}}]}"#,
        r#"{"ats": ["2026-01-0{{int 1 9}}T00:00:00Z"]}"#,
        r#"{"items": [{"child": {}}], "ats": ["2026-01-01T00:00:0{{int 1 9}}Z"]}"#,
    ] {
        let encoding = encodes_as_parsed(&input, text, calls()).unwrap();
        assert_eq!(encoding, Encoding::Parsed, "{text}");
    }
}

/// A mark character written in the template as a JSON escape (`\uE000`) is the template's
/// own text, never a placeholder: the fields are not written per call (were they, that text
/// would be sent as the call number, and a sample of calls may not show it), the message is
/// parsed per call as written.
#[test]
fn a_mark_written_as_an_escape_is_text_not_a_placeholder() {
    let input = input();
    for text in [
        r#"{"id": "{{call}}", "one": {"notes": ["\uE0000\uE001"]}}"#,
        r#"{"id": "{{call}}", "tags": ["\ue0000\ue001", "{{call}}"]}"#,
        r#"{"id": "a\ue001{{call}}"}"#,
    ] {
        let json = JsonTemplate::parse(text).unwrap();
        assert!(Fields::new(&input, &json).is_none(), "{text}");
        let encoding = encodes_as_parsed(&input, text, calls()).unwrap();
        assert_eq!(encoding, Encoding::Parsed, "{text}");
    }
}

/// A proto2 group (delimited by start and end tags, not a length) holding a placeholder is
/// left to the parse per call, whatever a sample of calls would show.
#[test]
fn a_group_is_parsed_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.proto");
    let proto = "syntax = \"proto2\";\npackage g;\nmessage Req {\n  optional group Part = 1 { optional string name = 2; }\n  repeated group Row = 3 { optional int32 n = 4; }\n}\n";
    std::fs::write(&path, proto).unwrap();
    let pool = super::super::proto::compile(&[path], &[]).unwrap();
    let input = pool.get_message_by_name("g.Req").unwrap();
    for text in [
        r#"{"part": {"name": "{{call}}"}}"#,
        r#"{"row": [{"n": 1}, {"n": {{int 0 9}}}]}"#,
    ] {
        let json = JsonTemplate::parse(text).unwrap();
        assert!(Fields::new(&input, &json).is_none(), "{text}");
        let encoding = encodes_as_parsed(&input, text, calls()).unwrap();
        assert_eq!(encoding, Encoding::Parsed, "{text}");
    }
}

/// An element out of its type's range on some call is refused before the run, as the parse
/// per call would refuse it.
#[test]
fn an_element_out_of_range_is_refused_before_the_run() {
    let e = RequestTemplate::new(&input(), r#"{"ints": [1, {{call}}]}"#, 7, 3_000_000_000)
        .unwrap_err()
        .0;
    assert!(e.starts_with("with {{call}} as 3000000000: "), "{e}");
}

/// A message field holding a placeholder is sent as two records of that field, its constant
/// part's and its placeholder's (docs/targets.md says so): not the whole message's bytes
/// reordered, the same message once a parser has merged them.
#[test]
fn a_message_field_holding_a_placeholder_is_two_records() {
    use prost::Message;
    let input = input();
    let text = r#"{"one": {"name": "{{call}}", "qty": 2}}"#;
    let template = RequestTemplate::new(&input, text, 7, 100).unwrap();
    let framed = template.framed(5).unwrap();
    // one (14, LEN) {qty (2) = 2}, then one {name (1) = "5"}.
    assert_eq!(
        &framed[5..],
        [0x72, 0x02, 0x10, 0x02, 0x72, 0x03, 0x0a, 0x01, b'5']
    );
    let json = JsonTemplate::parse(text).unwrap();
    let whole = parse(&input, &json.render(&Keys::new(7, 5))).unwrap();
    assert_eq!(
        whole.encode_to_vec(),
        [0x72, 0x05, 0x0a, 0x01, b'5', 0x10, 0x02]
    );
    assert_eq!(decoded(&input, &framed).unwrap(), whole);
}

/// One list element: a constant or a placeholder of the list's type, as JSON text.
fn element(kind: usize) -> BoxedStrategy<String> {
    let text = prop_oneof![
        "[a-z]{0,3}".prop_map(|s| format!("\"{s}\"")),
        Just("\"{{call}}\"".to_string()),
        Just("\"id-{{request_id}}\"".to_string()),
        Just("\"{{choice x y z}}\"".to_string()),
        (1u16..200).prop_map(|n| format!("\"{{{{string {n}}}}}\"")),
    ];
    let int = prop_oneof![
        (-70_000i64..70_000).prop_map(|n| n.to_string()),
        Just("{{call}}".to_string()),
        (-300i64..0, 0i64..300).prop_map(|(a, b)| format!("{{{{int {a} {b}}}}}")),
        Just("{{choice -1 0 1}}".to_string()),
    ];
    match kind {
        0 => text.boxed(),
        _ => int.boxed(),
    }
}

fn list(kind: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(element(kind), 0..6).prop_map(|v| format!("[{}]", v.join(", ")))
}

/// An `Item` (a message in a list, a map value or a singular field), to `depth` levels.
fn item(depth: u32) -> BoxedStrategy<String> {
    let leaf = (
        prop::option::of(element(0)),
        prop::option::of(list(0)),
        prop::option::of(list(1)),
        prop::option::of(element(1)),
    )
        .prop_map(|(name, notes, sizes, qty)| {
            let mut fields = Vec::new();
            if let Some(n) = name {
                fields.push(format!("\"name\": {n}"));
            }
            if let Some(n) = notes {
                fields.push(format!("\"notes\": {n}"));
            }
            if let Some(s) = sizes {
                fields.push(format!("\"sizes\": {s}"));
            }
            if let Some(q) = qty {
                fields.push(format!("\"counts\": {{\"k\": {q}, \"j\": 1}}"));
            }
            fields
        });
    if depth == 0 {
        return leaf.prop_map(|f| format!("{{{}}}", f.join(", "))).boxed();
    }
    (leaf, prop::option::of(item(depth - 1)))
        .prop_map(|(mut f, child)| {
            if let Some(c) = child {
                f.push(format!("\"child\": {c}"));
            }
            format!("{{{}}}", f.join(", "))
        })
        .boxed()
}

/// A request: any of its list, message and map fields, each holding placeholders or not.
fn request() -> impl Strategy<Value = String> {
    (
        prop::option::of(list(0)),
        prop::option::of(list(1)),
        prop::option::of(list(1)),
        prop::option::of(prop::collection::vec(item(2), 0..4)),
        prop::option::of(prop::collection::vec(element(0), 0..4)),
        prop::option::of(item(2)),
        prop::option::of(element(0)),
    )
        .prop_map(|(tags, ints, loose, items, labels, one, id)| {
            let mut fields = Vec::new();
            let mut add = |name: &str, v: Option<String>| {
                if let Some(v) = v {
                    fields.push(format!("\"{name}\": {v}"));
                }
            };
            add("tags", tags);
            add("zig", ints);
            add("loose", loose);
            add("items", items.map(|v| format!("[{}]", v.join(", "))));
            add(
                "labels",
                labels.map(|v| {
                    let entries: Vec<String> = v
                        .iter()
                        .enumerate()
                        .map(|(i, e)| format!("\"k{i}\": {e}"))
                        .collect();
                    format!("{{{}}}", entries.join(", "))
                }),
            );
            add("one", one);
            add("id", id);
            format!("{{{}}}", fields.join(", "))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any such request is encoded by fields, and decodes on every call to what the JSON
    /// parses to.
    #[test]
    fn random_templates_encode_as_parsed(text in request()) {
        let input = input();
        let encoding = encodes_as_parsed(&input, &text, (0..20).chain([9_999, 10_000]));
        prop_assert!(encoding.is_ok(), "{text}: {encoding:?}");
        let encoding = encoding.unwrap();
        prop_assert!(encoding != Encoding::Parsed, "{text}");
    }
}
