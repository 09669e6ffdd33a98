use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::HashSet;

fn render(template: &Template, seq: u64, rng: &mut StdRng) -> serde_json::Value {
    let mut out = Vec::new();
    template.render(&mut RenderContext::new(seq, rng), &mut out);
    serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

fn field(template: &str, seq: u64) -> serde_json::Value {
    let template = Template::parse(template).expect("valid template");
    let mut rng = StdRng::seed_from_u64(seq);
    render(&template, seq, &mut rng)["v"].clone()
}

fn error(template: &str) -> String {
    Template::parse(template).expect_err("invalid template").to_string()
}

#[test]
fn text_without_placeholders_renders_unchanged() {
    assert_eq!(field(r#"{"v":"plain"}"#, 0), "plain");
}

#[test]
fn uuid_renders_distinct_v4_uuids() {
    let template = Template::parse(r#"{"v":"{{uuid}}"}"#).expect("valid");
    let mut rng = StdRng::seed_from_u64(1);
    let ids: HashSet<String> = (0..1000)
        .map(|i| render(&template, i, &mut rng)["v"].as_str().expect("string").to_owned())
        .collect();
    assert_eq!(ids.len(), 1000);
    for id in &ids {
        let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4, "{id}");
        assert_eq!(id.len(), 36);
    }
}

#[test]
fn int_stays_within_inclusive_bounds_and_reaches_both() {
    let template = Template::parse(r#"{"v":{{int -2 2}}}"#).expect("valid");
    let mut rng = StdRng::seed_from_u64(2);
    let seen: HashSet<i64> = (0..500)
        .map(|i| render(&template, i, &mut rng)["v"].as_i64().expect("integer"))
        .collect();
    assert_eq!(seen, HashSet::from([-2, -1, 0, 1, 2]));
}

#[test]
fn float_stays_within_bounds() {
    let template = Template::parse(r#"{"v":{{float 1.5 2.5}}}"#).expect("valid");
    let mut rng = StdRng::seed_from_u64(3);
    for i in 0..500 {
        let v = render(&template, i, &mut rng)["v"].as_f64().expect("number");
        assert!((1.5..=2.5).contains(&v), "{v}");
    }
}

#[test]
fn seq_renders_the_record_number() {
    assert_eq!(field(r#"{"v":{{seq}}}"#, 0), 0);
    assert_eq!(field(r#"{"v":{{ seq }}}"#, 123_456_789_012), 123_456_789_012u64);
}

#[test]
fn now_renders_rfc3339_utc_with_milliseconds() {
    let v = field(r#"{"v":"{{now}}"}"#, 0);
    let text = v.as_str().expect("string");
    let parsed = DateTime::parse_from_rfc3339(text).expect("RFC 3339");
    assert!(
        text.ends_with('Z') && text.len() == "2026-11-24T10:00:00.123Z".len(),
        "{text}"
    );
    let age = Utc::now().signed_duration_since(parsed);
    assert!(age.num_seconds().abs() < 60, "{text}");
}

#[test]
fn now_ms_renders_epoch_milliseconds() {
    let v = field(r#"{"v":{{now_ms}}}"#, 0).as_u64().expect("integer");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    assert!(now.abs_diff(v) < 60_000, "{v} vs {now}");
}

#[test]
fn choice_picks_every_word_and_only_those() {
    let template = Template::parse(r#"{"v":"{{choice a bb ccc}}"}"#).expect("valid");
    let mut rng = StdRng::seed_from_u64(4);
    let seen: HashSet<String> = (0..300)
        .map(|i| render(&template, i, &mut rng)["v"].as_str().expect("string").to_owned())
        .collect();
    assert_eq!(seen, HashSet::from(["a".into(), "bb".into(), "ccc".into()]));
}

#[test]
fn choice_can_render_unquoted_json_values() {
    let v = field(r#"{"v":{{choice 1 null "x"}}}"#, 0);
    assert!(v == 1 || v.is_null() || v == "x", "{v}");
}

#[test]
fn string_renders_n_alphanumeric_characters() {
    let v = field(r#"{"v":"{{string 40}}"}"#, 0);
    let s = v.as_str().expect("string");
    assert_eq!(s.len(), 40);
    assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()), "{s}");
    assert_eq!(field(r#"{"v":"{{string 0}}"}"#, 0), "");
}

#[test]
fn bool_renders_both_values() {
    let template = Template::parse(r#"{"v":{{bool}}}"#).expect("valid");
    let mut rng = StdRng::seed_from_u64(5);
    let seen: HashSet<bool> = (0..100)
        .map(|i| render(&template, i, &mut rng)["v"].as_bool().expect("bool"))
        .collect();
    assert_eq!(seen.len(), 2);
}

#[test]
fn all_generators_together_render_one_object() {
    let template = r#"{"id":"{{uuid}}","n":{{int 0 100}},"f":{{float 0 1}},"s":{{seq}},"ts":"{{now}}","ms":{{now_ms}},"kind":"{{choice a b c}}","pad":"{{string 8}}","ok":{{bool}}}"#;
    let template = Template::parse(template).expect("valid");
    let mut rng = StdRng::seed_from_u64(6);
    let v = render(&template, 7, &mut rng);
    assert_eq!(v.as_object().expect("object").len(), 9);
    assert_eq!(v["s"], 7);
}

#[test]
fn unknown_generator_is_named() {
    let e = error(r#"{"v":{{int 0 1}},"w":"{{uid}}"}"#);
    assert!(e.contains("`{{uid}}`") && e.contains("unknown generator"), "{e}");
    assert!(e.contains("at byte 22"), "{e}");
}

#[test]
fn bad_arguments_are_named() {
    for (template, needle) in [
        (r#"{"v":{{int 5}}}"#, "`{{int 5}}`"),
        (r#"{"v":{{int 5 1}}}"#, "lower bound"),
        (r#"{"v":{{int a 1}}}"#, "\"a\" is not a valid number"),
        (r#"{"v":{{float 1 nan}}}"#, "finite"),
        (r#"{"v":"{{string}}"}"#, "string needs one argument"),
        (r#"{"v":"{{string 99999999}}"}"#, "at most"),
        (r#"{"v":"{{uuid 4}}"}"#, "uuid takes no arguments"),
        (r#"{"v":"{{choice}}"}"#, "at least one word"),
        (r#"{"v":"{{ }}"}"#, "empty placeholder"),
    ] {
        let e = error(template);
        assert!(e.contains(needle), "{template}: {e}");
    }
}

#[test]
fn unclosed_placeholder_is_reported() {
    let e = error(r#"{"v":"{{uuid"}"#);
    assert!(e.contains("byte 6") && e.contains("not closed"), "{e}");
}

#[test]
fn template_that_is_not_json_is_rejected_with_a_sample() {
    let e = error(r#"{"v":{{uuid}}}"#);
    assert!(
        e.contains("does not render to JSON") && e.contains("a rendered sample"),
        "{e}"
    );
}

#[test]
fn template_that_is_not_an_object_is_rejected() {
    let e = error("[{{int 0 1}}]");
    assert!(e.contains("JSON array, not an object"), "{e}");
    let e = error("{{int 0 1}}");
    assert!(e.contains("JSON number"), "{e}");
}

#[test]
fn every_choice_word_is_validated() {
    // Only the third word breaks the JSON: a single random sample could miss it.
    let e = error(r#"{"v":{{choice 1 2 x}}}"#);
    assert!(e.contains("does not render to JSON"), "{e}");
}
