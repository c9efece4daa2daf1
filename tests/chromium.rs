//! report.html opened in headless Chromium, as a reader would open it from disk: it renders
//! without console errors (a blocked resource or script would log one), every chart is in the
//! rendered DOM at a non-trivial size, and the screenshot is a real PNG.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without it the test says so and passes,
//! except under `CI` (set by CI systems), where a missing browser is a failure.
//! `RESILBENCH_REPORT_SCREENSHOT=docs/report.png cargo test chromium` keeps the screenshot.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::fixture;

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

/// `(width, height)` attributes of every `<svg` in `dom`.
fn svg_sizes(dom: &str) -> Vec<(u32, u32)> {
    let attr = |tag: &str, name: &str| -> u32 {
        let key = format!(" {name}=\"");
        let start = tag.find(&key).map(|i| i + key.len()).unwrap_or(tag.len());
        tag[start..]
            .split('"')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    dom.match_indices("<svg")
        .map(|(i, _)| {
            let tag = &dom[i..i + dom[i..].find('>').unwrap()];
            (attr(tag, "width"), attr(tag, "height"))
        })
        .collect()
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
    let sizes = svg_sizes(&dom);
    let charts = dom.matches("<figure class=\"chart\"").count();
    assert_eq!(sizes.len(), charts, "one svg per chart in the rendered DOM");
    assert_eq!(charts, 6);
    for (w, h) in sizes {
        assert!(w >= 600 && h >= 300, "chart of {w}x{h}");
    }

    let shot = dir.path().join("report.png");
    let out = chromium(
        &bin,
        &dir.path().join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,4300".into(),
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
    assert_eq!(width, 1280);
    assert!(
        png.len() > 50_000,
        "a screenshot with content: {} bytes",
        png.len()
    );
    if let Some(keep) = std::env::var_os("RESILBENCH_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
