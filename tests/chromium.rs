//! report.html opened in headless Chromium, as a reader would open it from disk, at 1400 px
//! (a laptop) and 400 px (a phone): it renders without console errors (a blocked resource or
//! script would log one), every chart is in the rendered DOM, and the layout holds:
//!
//! - nothing overflows its box: at 1400 px no table or chart needs a scroll bar (the counts
//!   table was cut off); at 400 px the page itself never scrolls sideways (wide tables and
//!   charts scroll in their own frames);
//! - chart text stays readable on a phone (at least 9 px high; it was about 4 px);
//! - a best value and its ★ stay on one line;
//! - every strategy's series is in every chart that has one per strategy, in its colour, and
//!   named in the legend, which sits below the chart (never over its data); a line that lies
//!   on another is drawn dashed and the legend says so; the attempts chart draws the bars of
//!   calls that made no attempt (refused by a breaker).
//!
//! The measurements are taken by a small page of the test's own that holds the report in an
//! iframe and runs a script on it (the report itself forbids scripts). Needs Debian's
//! `chromium` (`.ci/run` installs it). Without it the test says so and passes, except under
//! `CI` (set by CI systems), where a missing browser is a failure.
//! `RESILBENCH_REPORT_SCREENSHOT=FILE cargo test chromium` keeps a screenshot.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{fixture, resilbench, stderr};

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

fn chromium(bin: &Path, profile: &Path, args: &[String]) -> std::process::Output {
    // `timeout` bounds a browser that hangs; the test never waits on a clock of its own.
    Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium starts")
}

/// The script that measures the report inside the iframe and writes what it found, as JSON,
/// into `<pre id="out">`.
const MEASURE: &str = r#"
document.getElementById('f').addEventListener('load', () => {
  const d = document.getElementById('f').contentWindow.document;
  const width = d.documentElement.clientWidth;
  const r = { width, scroll: d.documentElement.scrollWidth, cut: [], over: [], minText: 1e9, wraps: [] };
  const scrolls = 'div.wide, div.plot';
  for (const el of d.querySelectorAll(scrolls)) {
    if (el.scrollWidth > el.clientWidth + 1) r.cut.push(`${el.className} ${el.scrollWidth}>${el.clientWidth}`);
  }
  for (const el of d.querySelectorAll('body *')) {
    if (el.closest(scrolls)) continue;
    const b = el.getBoundingClientRect();
    if (b.right > width + 1) r.over.push(`${el.tagName}.${el.className} right ${Math.round(b.right)}: ${(el.textContent || '').slice(0, 40)}`);
  }
  for (const t of d.querySelectorAll('svg text')) {
    const h = t.getBoundingClientRect().height;
    if (h > 0 && t.textContent.trim() !== '') r.minText = Math.min(r.minText, h);
  }
  for (const td of d.querySelectorAll('td.best')) {
    const range = d.createRange();
    range.selectNodeContents(td);
    const tops = new Set([...range.getClientRects()].map(x => Math.round(x.top)));
    if (tops.size > 1) r.wraps.push(td.textContent);
  }
  document.getElementById('out').textContent = JSON.stringify(r);
});
"#;

/// Measures `page` laid out `width` px wide.
fn measure(bin: &Path, page: &Path, width: u32) -> serde_json::Value {
    let dir = page.parent().unwrap();
    let wrapper = dir.join(format!("measure-{width}.html"));
    let name = page.file_name().unwrap().to_string_lossy();
    std::fs::write(
        &wrapper,
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\"><iframe id=\"f\" src=\"{name}\" \
             style=\"border:0;width:{width}px;height:30000px\"></iframe><pre id=\"out\">pending</pre>\
             <script>{MEASURE}</script></body></html>"
        ),
    )
    .unwrap();
    let out = chromium(
        bin,
        &dir.join(format!("profile-measure-{width}")),
        &[
            "--allow-file-access-from-files".into(),
            "--virtual-time-budget=10000".into(),
            "--dump-dom".into(),
            format!("file://{}", wrapper.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"out\">").expect("the wrapper page") + 14;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:.300}"))
}

/// The layout checks at one width.
fn check_layout(bin: &Path, page: &Path, width: u32) {
    let m = measure(bin, page, width);
    let what = format!("{} at {width} px", page.display());
    let list = |k: &str| m[k].as_array().unwrap().clone();
    assert!(
        m["scroll"].as_u64().unwrap() <= m["width"].as_u64().unwrap(),
        "{what}: the page scrolls sideways: {m}"
    );
    assert!(
        list("over").is_empty(),
        "{what}: overflows: {:#?}",
        list("over")
    );
    assert!(
        list("wraps").is_empty(),
        "{what}: wrapped: {:?}",
        list("wraps")
    );
    if width >= 1400 {
        assert!(list("cut").is_empty(), "{what}: cut off: {:?}", list("cut"));
    }
    let min_text = m["minText"].as_f64().unwrap();
    assert!(min_text >= 9.0, "{what}: chart text {min_text:.1} px high");
}

/// Each chart's `(id, svg, legend)` in a page.
fn charts(html: &str) -> Vec<(String, String, String)> {
    html.match_indices("<figure class=\"chart\" id=\"")
        .map(|(at, m)| {
            let rest = &html[at + m.len()..];
            let id = rest[..rest.find('"').unwrap()].to_string();
            let end = rest.find("</figure>").unwrap();
            let body = &rest[..end];
            let svg_end = body.find("</svg>").unwrap();
            let svg = body[..svg_end].to_string();
            let legend = body[svg_end..].to_string();
            (id, svg, legend)
        })
        .collect()
}

/// Every strategy is in every per-strategy chart, in its colour and in the legend below it,
/// and never named inside the plot.
fn check_series(page: &Path, strategies: &[&str]) {
    let html = std::fs::read_to_string(page).unwrap();
    let per_strategy = [
        "chart-latency",
        "chart-p99-time",
        "chart-goodput-time",
        "chart-amplification-time",
        "chart-lag",
    ];
    for (id, svg, legend) in charts(&html) {
        for (i, name) in strategies.iter().enumerate() {
            assert!(
                !svg.contains(&format!(">{name}<")),
                "{id}: `{name}` is written inside the plot (a legend over the data)"
            );
            if !per_strategy.contains(&id.as_str()) {
                continue;
            }
            let colour = resilbench::report::palette::css(i).to_uppercase();
            assert!(
                svg.contains(&format!("stroke=\"{colour}\"")),
                "{id}: no line of `{name}` ({colour})"
            );
            assert!(
                legend.contains(&format!("</span>{name}")),
                "{id}: legend lacks `{name}`"
            );
        }
    }
}

#[test]
fn the_report_renders_in_headless_chromium() {
    let Some(bin) = find_chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is not installed, and CI is set: .ci/run must install it");
        }
        eprintln!(
            "SKIPPED the_report_renders_in_headless_chromium: chromium is not installed \
             (apt-get install chromium); CI=true makes this a failure"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let doc = resilbench::document::ResultsDoc::read(&fixture("run-a.json")).unwrap();
    let page = dir.path().join("report.html");
    resilbench::report::write(&page, &doc).unwrap();
    let url = format!("file://{}", page.display());

    let out = chromium(
        &bin,
        &dir.path().join("profile-dom"),
        &["--dump-dom".into(), url.clone()],
    );
    let (dom, log) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "chromium failed:\n{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        dom.contains("id=\"verdict\""),
        "the page was rendered: {dom:.500}"
    );
    let charts = dom.matches("<figure class=\"chart\"").count();
    assert_eq!(dom.matches("<svg").count(), charts, "one svg per chart");
    assert_eq!(charts, 6);

    let shot = dir.path().join("report.png");
    let out = chromium(
        &bin,
        &dir.path().join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,4300".into(),
            "--hide-scrollbars".into(),
            url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1400);
    assert!(
        png.len() > 50_000,
        "a screenshot with content: {} bytes",
        png.len()
    );
    if let Some(keep) = std::env::var_os("RESILBENCH_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    for width in [1400, 400] {
        check_layout(&bin, &page, width);
    }
}

/// The two shipped profiles with the most to draw: retry-storm (five strategies, two pairs
/// whose lines coincide, a phase) and outage-breaker (breakers, calls with no attempt).
#[test]
fn shipped_reports_keep_their_layout_and_every_series_at_1400_and_400_px() {
    let Some(bin) = find_chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed, and CI is set: .ci/run must install it"
        );
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (profile, strategies) in [
        (
            "retry-storm",
            &[
                "no-retries",
                "naive",
                "grpc-a6",
                "grpc-a6-no-throttle",
                "budget-10%",
            ][..],
        ),
        (
            "outage-breaker",
            &["no-breaker", "pybreaker", "resilience4j"][..],
        ),
    ] {
        let out = resilbench(
            &["run", profile, "--clock", "virtual", "-q", "--out", profile],
            dir.path(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let page = dir.path().join(profile).join("report.html");
        check_series(&page, strategies);
        for width in [1400, 400] {
            check_layout(&bin, &page, width);
        }
    }
    // retry-storm: naive and grpc-a6-no-throttle behave alike; the later is drawn dashed over
    // the earlier, and the legend says so.
    let html = std::fs::read_to_string(dir.path().join("retry-storm/report.html")).unwrap();
    assert!(
        html.contains("grpc-a6-no-throttle <span class=\"same\">(identical to naive"),
        "the goodput lines of the two storms are identical"
    );
    // outage-breaker: each breaker's calls with 0 attempts have their bar, beside the 1s.
    let html = std::fs::read_to_string(dir.path().join("outage-breaker/report.html")).unwrap();
    let (_, svg, _) = charts(&html)
        .into_iter()
        .find(|(id, _, _)| id == "chart-attempts")
        .unwrap();
    for i in [1, 2] {
        let colour = resilbench::report::palette::css(i).to_uppercase();
        assert_eq!(
            svg.matches(&format!("fill=\"{colour}\"")).count(),
            2,
            "breaker {i}: a bar at 0 attempts and one at 1"
        );
    }
}
