//! Templates parsed, rendered and refused: the values keyed and in range, the errors naming
//! the placeholder.

use super::*;

fn render(text: &str, seed: u64, call: u64) -> String {
    Template::parse(text, 0)
        .unwrap()
        .to_text(&Keys::new(seed, call))
}

#[test]
fn text_without_placeholders_is_constant_and_kept() {
    let t = Template::parse(r#"{"a": {"b": 1}}"#, 0).unwrap();
    assert!(t.is_constant());
    assert_eq!(t.to_text(&Keys::new(1, 5)), r#"{"a": {"b": 1}}"#);
    assert_eq!(t.to_string(), r#"{"a": {"b": 1}}"#);
    assert!(!Template::parse("{{call}}", 0).unwrap().is_constant());
}

/// The call's values are the call's: the same for every placeholder of the call, keyed by
/// the seed and the call, another for another call or seed.
#[test]
fn call_values_are_the_calls_and_keyed() {
    assert_eq!(
        render("id-{{call}}/{{ .RequestNumber }}", 1, 42),
        "id-42/42"
    );
    let both = render("{{uuid}} {{.UUID}} {{request_id}} {{request_id}}", 7, 3);
    let parts: Vec<&str> = both.split(' ').collect();
    assert_eq!(parts[0], parts[1]);
    assert_eq!(parts[2], parts[3]);
    assert_eq!(parts[2].len(), 16);
    assert!(
        parts[2]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let uuid = parts[0];
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4", "version 4: {uuid}");
    assert!(
        matches!(&uuid[19..20], "8" | "9" | "a" | "b"),
        "variant: {uuid}"
    );
    assert_eq!(render("{{uuid}}", 7, 3), uuid);
    assert_ne!(render("{{uuid}}", 7, 4), uuid);
    assert_ne!(render("{{uuid}}", 8, 3), uuid);
    assert_ne!(render("{{request_id}}", 7, 4), parts[2]);
}

/// Each draw has its own stream: two placeholders differ (for some call), and each repeats
/// for the same call; the template's number separates templates too.
#[test]
fn draws_are_per_placeholder() {
    let differ = (0..50).any(|call| {
        let t = render("{{newUUID}} {{newUUID}}", 1, call);
        let (a, b) = t.split_once(' ').unwrap();
        a != b
    });
    assert!(differ);
    let a = Template::parse("{{int 0 1000000}}", 0).unwrap();
    let b = Template::parse("{{int 0 1000000}}", 1).unwrap();
    let keys = Keys::new(1, 9);
    assert_eq!(a.to_text(&keys), a.to_text(&keys));
    assert_ne!(a.to_text(&keys), b.to_text(&keys));
}

/// Integers stay in their range, both ends reached; ghz's randomInt leaves its upper bound
/// out; the whole i64 range works.
#[test]
fn integers_cover_their_range() {
    let mut seen = std::collections::BTreeSet::new();
    for call in 0..2000 {
        let v: i64 = render("{{int -2 3}}", 1, call).parse().unwrap();
        assert!((-2..=3).contains(&v));
        seen.insert(v);
        let g: i64 = render("{{randomInt 1 3}}", 1, call).parse().unwrap();
        assert!((1..3).contains(&g));
    }
    assert_eq!(seen.len(), 6);
    let wide = format!("{{{{int {} {}}}}}", i64::MIN, i64::MAX);
    for call in 0..10 {
        render(&wide, 1, call).parse::<i64>().unwrap();
    }
    let t = Template::parse("{{int 5 9}}", 0).unwrap();
    let Piece::Hole(h) = &t.pieces()[0] else {
        panic!()
    };
    assert_eq!(
        h.integer(&Keys::new(1, 2)).unwrap().to_string(),
        t.to_text(&Keys::new(1, 2))
    );
}

/// Choices: quoted (with JSON escapes, or `\"` as inside a JSON string) and bare, each
/// drawn; strings of letters and digits of the length asked.
#[test]
fn choices_and_strings() {
    let t = Template::parse(r#"{{choice "a b" \"c\" d "e\"f"}}"#, 0).unwrap();
    let Piece::Hole(h) = &t.pieces()[0] else {
        panic!()
    };
    assert_eq!(
        h.value,
        Value::Choice(vec!["a b".into(), "c".into(), "d".into(), "e\"f".into()])
    );
    let mut seen = std::collections::BTreeSet::new();
    for call in 0..200 {
        let keys = Keys::new(3, call);
        let v = t.to_text(&keys);
        assert_eq!(v, ["a b", "c", "d", "e\"f"][h.choice(&keys).unwrap()]);
        seen.insert(v);
    }
    assert_eq!(seen.len(), 4);
    let s = render("{{string 100}}", 1, 1);
    assert_eq!(s.len(), 100);
    assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(render("{{randomString 3}}", 1, 1).len(), 3);
}

#[test]
fn bad_placeholders_say_what_is_wrong() {
    let err = |t: &str| Template::parse(t, 0).unwrap_err().0;
    assert!(
        err("a {{call").contains("not closed"),
        "{}",
        err("a {{call")
    );
    assert!(
        err("{{cal}}").contains("did you mean `call`"),
        "{}",
        err("{{cal}}")
    );
    assert!(err("{{.TimestampUnix}}").contains("wall clock"));
    assert!(err("{{int 5 1}}").contains("empty"));
    assert!(err("{{int 1}}").contains("two integers"));
    assert!(err("{{int a 2}}").contains("`a` is not an integer"));
    assert!(err("{{randomInt 3 3}}").contains("left out"));
    assert!(err("{{call 1}}").contains("no arguments"));
    assert!(err("{{choice}}").contains("1 to"));
    assert!(err("{{string 0}}").contains("length"));
    assert!(err("{{choice \"a}}").contains("not closed"));
    assert!(err("{{}}").contains("empty"));
    assert!(err("{{ uuid 1 }}").starts_with("`{{ uuid 1 }}`"));
}
