//! report.html from fixed results files: the sections a reader expects, one well-formed
//! `<svg>` per chart, every string escaped, figures newer builds add shown when present, and
//! what the charts draw: a line said dashed is dashed, and no line falls to 0 after the schedule.

use resilbench::document::ResultsDoc;
use resilbench::report;

use crate::common::{fixture, fixture_json, resilbench, stderr, stdout, write_json};

/// The charts of a run with no extra per-second figures.
const CHARTS: [&str; 6] = [
    "chart-latency",
    "chart-p99-time",
    "chart-goodput-time",
    "chart-amplification-time",
    "chart-attempts",
    "chart-lag",
];

fn render(json: &serde_json::Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(dir.path(), "results.json", json);
    report::render(&ResultsDoc::read(&path).unwrap())
}

/// Each `<svg>…</svg>` of a page.
pub fn svgs(html: &str) -> Vec<&str> {
    html.match_indices("<svg ")
        .map(|(start, _)| {
            let end = html[start..].find("</svg>").expect("every svg is closed") + start + 6;
            &html[start..end]
        })
        .collect()
}

#[test]
fn the_report_has_its_sections_in_order_and_one_svg_per_chart() {
    let html = render(&fixture_json("run-a.json"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    let order = [
        "id=\"trust\"",
        "id=\"verdict\"",
        "id=\"profile\"",
        "id=\"charts\"",
    ];
    let at: Vec<usize> = order.iter().map(|s| html.find(s).expect(s)).collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "sections in order: {at:?}"
    );
    for id in CHARTS {
        assert_eq!(html.matches(&format!("id=\"{id}\"")).count(), 1, "{id}");
    }
    let svgs = svgs(&html);
    assert_eq!(svgs.len(), CHARTS.len(), "one svg per chart");
    for svg in svgs {
        let doc = roxmltree::Document::parse(svg).expect("each chart is well-formed SVG");
        let root = doc.root_element();
        let (w, h): (u32, u32) = (
            root.attribute("width").unwrap().parse().unwrap(),
            root.attribute("height").unwrap().parse().unwrap(),
        );
        assert!(w >= 600 && h >= 300, "{w}x{h}");
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        // Title and axis descriptions with units; the legend is HTML below the plot.
        assert!(!texts.iter().any(|t| t.contains("patient")), "{texts:?}");
        assert!(
            texts
                .iter()
                .any(|t| t.contains("(ms") || t.contains("(s)") || t.contains("(%")),
            "an axis with a unit: {texts:?}"
        );
    }
    // Each chart's legend names the strategies, below the plot.
    assert_eq!(
        html.matches("<ul class=\"legend\">").count(),
        CHARTS.len(),
        "a legend per chart"
    );
    assert!(html.contains("</span>patient</li>"));
    // Nothing is loaded from anywhere: no script, no link, no remote URL outside SVG's xmlns.
    assert!(!html.contains("<script"));
    assert!(!html.contains("<link"));
    let stripped = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!stripped.contains("http://") && !stripped.contains("https://"));
    // The verdict marks best values, and the trustworthy run gets the all-clear.
    assert!(html.contains("class=\"best\""));
    assert!(html.contains("banner ok"));
    assert!(html.contains("lognormal, median 2ms, p99 40ms"));
}

#[test]
fn strings_from_the_results_file_are_escaped() {
    let evil = "<script>alert(1)</script>";
    let mut json = fixture_json("run-a.json");
    json["strategies"][0]["name"] = evil.into();
    json["profile"]["strategies"][0]["name"] = evil.into();
    json["profile"]["strategies"][0]["description"] = "<img src=x onerror=alert(2)>".into();
    json["profile"]["name"] = "<b>name</b>".into();
    json["warnings"] = serde_json::json!(["<i>warned</i>"]);
    let html = render(&json);
    assert!(!html.contains("<script"), "no script element");
    assert!(!html.contains("<img"), "no injected element");
    assert!(!html.contains("<b>name</b>") && !html.contains("<i>warned</i>"));
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name shows as text"
    );
    assert!(html.contains("&lt;i&gt;warned&lt;/i&gt;"));
    for svg in svgs(&html) {
        roxmltree::Document::parse(svg).expect("escaped legends keep the SVG well-formed");
    }
}

#[test]
fn an_untrustworthy_run_gets_a_warning_banner() {
    let mut json = fixture_json("run-a.json");
    json["strategies"][1]["generator"]["lag_ms"]["p99"] = 3.5.into();
    json["warnings"] = serde_json::json!(["tight: generator lag p99 was 3.50 ms"]);
    let html = render(&json);
    assert!(html.contains("This run is not trustworthy"));
    assert!(html.contains("tight: generator lag p99 was 3.50 ms"));
    assert!(!html.contains("banner ok"));
}

#[test]
fn figures_newer_builds_add_appear_when_present() {
    let mut json = fixture_json("run-a.json");
    for (i, s) in json["strategies"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        s["backend"]["duplicate_side_effects"] = (i as u64 * 3).into();
        for row in s["timeline"].as_array_mut().unwrap() {
            row["throttle_tokens"] = (100 - i as u64 * 10).into();
        }
    }
    json["profile"]["phases"] =
        serde_json::json!([{ "kind": "outage", "start": "2s", "duration": "1s" }]);
    let html = render(&json);
    assert!(
        html.contains("<th>duplicate side effects</th>"),
        "a verdict column"
    );
    assert!(
        html.contains("id=\"chart-extra-0\""),
        "a chart of the new per-second figure"
    );
    assert!(html.contains("throttle tokens over time"));
    assert_eq!(svgs(&html).len(), CHARTS.len() + 1);
    assert!(
        html.contains("\noutage\n</text>"),
        "the phase is labelled in the charts"
    );
    assert!(html.contains("Shaded: the backend's phases."));
}

#[test]
fn the_report_command_writes_beside_the_results_and_run_writes_it_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("run-a.json"), dir.path().join("results.json")).unwrap();
    let out = resilbench(&["report", "results.json"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("report.html"));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(svgs(&html).len(), CHARTS.len());

    let out = resilbench(
        &[
            "run",
            fixture("gate.toml").to_str().unwrap(),
            "--clock",
            "virtual",
            "--duration",
            "2s",
            "--out",
            "run",
            "-q",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("report:  run/report.html"),
        "{}",
        stdout(&out)
    );
    let html = std::fs::read_to_string(dir.path().join("run/report.html")).unwrap();
    assert_eq!(svgs(&html).len(), CHARTS.len());
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");

    let out = resilbench(&["report", "missing.json"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.json"));
}

/// A run whose strategies retry gets a Retries table: retries, pushback waits, local
/// rejections, and the reasons attempts were not retried, one column each; a run without
/// retries has none, and its tokens chart appears only where a throttle ran.
#[test]
fn retries_and_their_denials_get_a_table_and_tokens_a_chart() {
    let p = crate::common::plan(
        r#"
seed = 3
[load]
rate = 2
duration = "10s"
[backend]
[[backend.scripts]]
every = 1
steps = ["UNAVAILABLE", "UNKNOWN"]
[[strategies]]
name = "a6"
[[strategies.layers]]
kind = "grpc_retry"
max_attempts = 3
initial_backoff = "10ms"
max_backoff = "10ms"
backoff_multiplier = 1
retryable_status_codes = ["UNAVAILABLE"]
throttle = { max_tokens = 10, token_ratio = 0.1 }
"#,
    );
    let doc = ResultsDoc::from_results(crate::common::run_virtual(&p));
    let html = report::render(&doc);
    let table = &html[html.find("<h3>Retries</h3>").expect("a Retries table")..];
    let table = &table[..table.find("</table>").unwrap()];
    assert!(
        table.contains("<th>not retried: not retryable</th>"),
        "{table}"
    );
    // 20 calls, none succeeds. Calls 0-3 are retried once (their UNAVAILABLE takes the
    // bucket from 10 to 9, 8, 7, 6), then UNKNOWN is not retryable; from call 4 on the first
    // failure leaves 5 tokens or fewer: throttled.
    assert!(
        table.contains("a6</td><td>4</td><td>0</td><td>0</td><td>4</td><td>16</td>"),
        "{table}"
    );
    assert!(html.contains("id=\"chart-tokens\""), "a tokens chart");

    let html = render(&fixture_json("run-a.json"));
    assert!(!html.contains("<h3>Retries</h3>"));
    assert!(!html.contains("chart-tokens"));
}

/// Hedging, breakers and fan-out get a table with one column group per kind of layer present
/// (a strategy without that layer shows dashes), and breakers a state chart; a run without
/// them has neither.
#[test]
fn hedges_breakers_and_fan_outs_get_a_table_and_breakers_a_chart() {
    let p = crate::common::plan(
        r#"
seed = 3
[load]
rate = 100
duration = "3s"
[backend]
latency = "1ms"
[[phases]]
kind = "outage"
start = "1s"
duration = "1s"
[[strategies]]
name = "plain"
[[strategies]]
name = "breaker"
layers = [{ kind = "pybreaker", fail_max = 5, reset_timeout = "500ms" }]
[[strategies]]
name = "hedged"
layers = [{ kind = "grpc_hedge", max_attempts = 2, hedging_delay = "0s" }]
[[strategies]]
name = "fan"
layers = [{ kind = "fan_out", n = 3 }]
"#,
    );
    let doc = ResultsDoc::from_results(crate::common::run_virtual(&p));
    let html = report::render(&doc);
    let start = html
        .find("<h3>Hedges, breakers and fan-out</h3>")
        .expect("a layers table");
    let table = &html[start..];
    let table = &table[..table.find("</table>").unwrap()];
    for th in ["hedges", "short-circuited", "sub-calls"] {
        assert!(table.contains(&format!("<th>{th}</th>")), "{table}");
    }
    // Every row has the name and 3 + 3 + 2 figures.
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 4, "{table}");
    for row in &rows {
        assert_eq!(row.matches("<td").count(), 9, "{row}");
    }
    let s = |name: &str| {
        doc.results
            .strategies
            .iter()
            .find(|s| s.name == name)
            .unwrap()
    };
    let b = s("breaker").breaker.as_ref().unwrap();
    assert!(b.short_circuited > 0);
    assert!(
        rows[1].contains(&format!(
            "<td>{}</td><td>0</td><td>{}</td>",
            b.short_circuited, b.opened
        )),
        "{}",
        rows[1]
    );
    let fan = s("fan").fan_out.as_ref().unwrap();
    assert!(fan.sub_calls > 0);
    assert!(
        rows[3].contains(&format!("<td>{}</td>", fan.sub_calls)),
        "{}",
        rows[3]
    );
    assert!(html.contains("id=\"chart-breaker\""), "a breaker chart");

    let html = render(&fixture_json("run-a.json"));
    assert!(!html.contains("Hedges, breakers and fan-out"));
    assert!(!html.contains("chart-breaker"));
}

/// A target without resilbench's Control service: the figures only a backend knows are
/// `null`, and the report and the summary say so in words, never as zeros or invented ratios
/// (and the verdict's cost is the load sent, not a "backend load" it cannot know).
#[test]
fn a_target_that_reports_nothing_is_said_to_report_nothing() {
    let mut json = fixture_json("run-a.json");
    for s in json["strategies"].as_array_mut().unwrap() {
        s["backend"] = serde_json::Value::Null;
        s["amplification"]["backend"] = serde_json::Value::Null;
        s["backend_gap"] = "no_control".into();
    }
    let words = "The target does not report what it received: it has no Control service";
    let html = render(&json);
    assert!(html.contains(words), "the report says it");
    assert!(
        !html.contains("backend load"),
        "no backend load is inferred"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(dir.path(), "results.json", &json);
    let doc = ResultsDoc::read(&path).unwrap();
    let mut summary = Vec::new();
    resilbench::summary::write_summary(&mut summary, &doc).unwrap();
    let summary = String::from_utf8(summary).unwrap();
    assert!(summary.contains(words), "{summary}");
    assert!(!summary.contains("backend load"), "{summary}");
    // With the figures, nothing is said.
    let whole = render(&fixture_json("run-a.json"));
    assert!(!whole.contains("does not report what it received"));
}

/// retry-storm's report, from the shipped profile on the virtual clock.
fn retry_storm_page() -> (ResultsDoc, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/retry-storm.toml");
    let plan = resilbench::profile::load(&path, &Default::default()).unwrap();
    let doc = ResultsDoc::from_results(crate::common::run_virtual(&plan));
    let html = report::render(&doc);
    (doc, html)
}

/// One chart's `<svg>` and the legend after it.
fn chart<'a>(html: &'a str, id: &str) -> (&'a str, &'a str) {
    let at = html
        .find(&format!("<figure class=\"chart\" id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id}"));
    let body = &html[at..at + html[at..].find("</figure>").unwrap()];
    body.split_at(body.find("</svg>").unwrap())
}

/// The points of every `<polyline>` drawn in `colour` (upper-case `#RRGGBB`), one list each.
fn polylines(svg: &str, colour: &str) -> Vec<Vec<(f64, f64)>> {
    svg.split("<polyline ")
        .skip(1)
        .filter(|p| p[..p.find('>').unwrap()].contains(&format!("stroke=\"{colour}\"")))
        .map(|p| {
            let pts = &p[p.find("points=\"").unwrap() + 8..];
            pts[..pts.find('"').unwrap()]
                .split_whitespace()
                .map(|xy| {
                    let (x, y) = xy.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// A line the legend calls "drawn dashed" is drawn dashed (many short pieces), and every
/// other strategy's line is one solid line: the legend's words are not the only evidence.
#[test]
fn a_line_that_lies_on_another_is_drawn_dashed_and_the_others_solid() {
    let (doc, html) = retry_storm_page();
    let mut dashed_seen = 0;
    for id in [
        "chart-latency",
        "chart-p99-time",
        "chart-goodput-time",
        "chart-amplification-time",
    ] {
        let (svg, legend) = chart(&html, id);
        for (i, s) in doc.results.strategies.iter().enumerate() {
            let item = legend
                .split("<li>")
                .find(|li| li.contains(&format!("</span>{}", s.name)))
                .unwrap_or_else(|| panic!("{id}: {} not in the legend", s.name));
            let colour = report::palette::css(i).to_uppercase();
            let pieces = polylines(svg, &colour);
            if item.contains("drawn dashed") {
                dashed_seen += 1;
                assert!(item.contains("class=\"key dashed\""), "{id}: {item}");
                assert!(
                    pieces.len() >= 10,
                    "{id}: {} is said dashed but drawn in {} pieces",
                    s.name,
                    pieces.len()
                );
            } else {
                assert_eq!(pieces.len(), 1, "{id}: {} is one solid line", s.name);
                assert!(pieces[0].len() > 10, "{id}: {} has its points", s.name);
            }
        }
    }
    assert!(dashed_seen >= 4, "retry-storm has lines that coincide");
}

/// Seconds after the schedule hold only late retries (offered 0, succeeded 0): they are not
/// drawn, so a line does not fall to 0 at the chart's right edge. retry-storm's throttled
/// strategies have such a second (t = 40 of a 40 s schedule) and succeed in second 39.
#[test]
fn lines_end_at_the_last_scheduled_second_without_a_fall_to_zero() {
    let (doc, html) = retry_storm_page();
    let duration = 40;
    let strategies = &doc.results.strategies;
    let late = strategies
        .iter()
        .filter(|s| s.timeline.iter().any(|r| r.t >= duration && r.offered == 0))
        .count();
    assert!(late >= 2, "the precondition: rows after the schedule");
    let succeeded = |s: &resilbench::results::StrategyResult, t| {
        s.timeline.iter().find(|r| r.t == t).unwrap().succeeded
    };
    let (svg, _) = chart(&html, "chart-goodput-time");
    let last_point = |i: usize| {
        polylines(svg, &report::palette::css(i).to_uppercase())
            .into_iter()
            .flatten()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap()
    };
    // naive succeeds in no late second: its last point is the chart's zero.
    let naive = strategies.iter().position(|s| s.name == "naive").unwrap();
    assert_eq!(succeeded(&strategies[naive], duration - 1), 0);
    let (x_end, y_zero) = last_point(naive);
    for (i, s) in strategies.iter().enumerate() {
        let (x, y) = last_point(i);
        // (A dashed line may end in a gap, a little before.)
        assert!(
            x <= x_end,
            "{}: drawn past second {} ({x} > {x_end})",
            s.name,
            duration - 1
        );
        if succeeded(s, duration - 1) > 0 {
            assert!(
                y < y_zero - 10.0,
                "{}: its last point is not at 0 ({y} vs {y_zero})",
                s.name
            );
        }
    }
}

/// What the calls went to, in the report's header and the summary's first line: the
/// embedded backend, a backend elsewhere (`serve`), or the user's own service.
#[test]
fn the_header_names_what_was_called() {
    use resilbench::document::ResultsDoc;
    let dir = tempfile::tempdir().unwrap();
    let mut json = fixture_json("run-a.json");
    let doc = |json: &serde_json::Value| {
        let path = write_json(dir.path(), "results.json", json);
        ResultsDoc::read(&path).unwrap()
    };
    let said = |d: &ResultsDoc| {
        let mut summary = Vec::new();
        resilbench::summary::write_summary(&mut summary, d).unwrap();
        let first = String::from_utf8(summary)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        (first, report::render(d))
    };
    let (first, html) = said(&doc(&json));
    assert!(first.contains("clock, embedded backend"), "{first}");
    assert!(html.contains("embedded backend ·"));
    json["environment"]["target"] = "10.0.0.5:50051".into();
    let (first, html) = said(&doc(&json));
    assert!(
        first.contains("clock, backend at 10.0.0.5:50051"),
        "{first}"
    );
    assert!(html.contains("backend at 10.0.0.5:50051 ·"));
    json["profile"]["target"] = serde_json::json!({"address": "10.0.0.5:50051", "method": "a.B/C"});
    let (first, html) = said(&doc(&json));
    assert!(
        first.contains("clock, your service at 10.0.0.5:50051"),
        "{first}"
    );
    assert!(!first.contains(" backend"), "{first}");
    assert!(html.contains("your service at 10.0.0.5:50051 ·"));
}
