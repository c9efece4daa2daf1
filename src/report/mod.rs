//! `report.html`: one self-contained page per run, to compare the strategies.
//!
//! Top to bottom, in the order a reader needs them: a warning when the measurement cannot be
//! trusted; the verdict (strategies side by side, best values marked); the profile in words;
//! then the charts: latency by percentile, p99 and goodput over time with the backend's phases
//! shaded, attempts vs offered calls over time, attempts per call, any other per-second figure
//! the run recorded (breaker state, throttle tokens), and the generator's own lag.
//!
//! The page is self-contained (inline CSS and SVG, no script, nothing from the network) and
//! every string from the results file is escaped. `run` writes it beside results.json;
//! `resilbench report RESULTS` writes it again from any results file.

pub mod charts;
pub mod compare_page;
pub mod html;
pub mod palette;
pub mod phases;
pub mod verdict;
pub mod words;

use std::borrow::Cow;
use std::path::Path;

use charts::percentiles::{self, Dist};
use charts::{Chart, Shape};
use html::{esc, figure};

use crate::document::ResultsDoc;
use crate::record::histogram::Hist;
use crate::results::trust::{self, LAG_P99_LIMIT_MS};

/// The HTML report of a run.
pub fn render(doc: &ResultsDoc) -> String {
    let r = &doc.results;
    let name = doc.profile_name();
    let mut body = format!("<header>\n<h1>{}</h1>\n", esc(name));
    if let Some(d) = r.profile.get("description").and_then(|d| d.as_str())
        && !d.is_empty()
    {
        body.push_str(&format!("<p>{}</p>\n", esc(d)));
    }
    let e = &r.environment;
    body.push_str(&format!(
        "<p class=\"meta\">{} clock, {} transport, {} · {} · host {} ({}, {} cores) · \
         started {} · {}{}</p>\n</header>\n",
        esc(&e.clock),
        esc(&e.transport),
        esc(&doc.target_words()),
        esc(&doc.order_words()),
        esc(&e.host),
        esc(&e.os),
        e.cores,
        esc(&e.start_time),
        esc(&e.tool),
        if r.partial {
            " · INTERRUPTED: partial results"
        } else {
            ""
        },
    ));
    body.push_str(&banner(doc));
    body.push_str("<section id=\"verdict\">\n<h2>Verdict</h2>\n");
    body.push_str(&verdict::table(doc));
    body.push_str("<h3>Counts</h3>\n");
    body.push_str("<div class=\"wide\">\n");
    body.push_str(&verdict::details(doc));
    body.push_str("</div>\n<h3>Calls by final status</h3>\n<div class=\"wide\">\n");
    body.push_str(&verdict::statuses(doc));
    body.push_str("</div>\n");
    if let Some(table) = verdict::retries(doc) {
        body.push_str("<h3>Retries</h3>\n<div class=\"wide\">\n");
        body.push_str(&table);
        body.push_str("</div>\n");
    }
    if let Some(table) = verdict::layers(doc) {
        body.push_str("<h3>Hedges, breakers and fan-out</h3>\n<div class=\"wide\">\n");
        body.push_str(&table);
        body.push_str("</div>\n");
    }
    body.push_str("</section>\n<section id=\"profile\">\n<h2>The profile</h2>\n");
    let (profile, other) = described(doc);
    if let Some(other) = &other {
        body.push_str(&format!("<p class=\"note\">{}</p>\n", esc(other)));
    }
    body.push_str(&words::profile(&profile));
    body.push_str("</section>\n<section id=\"charts\">\n<h2>Charts</h2>\n");
    for (id, chart, caption) in charts(doc) {
        body.push_str(&chart_figure(id, &chart, &caption));
    }
    body.push_str("</section>\n");
    body.push_str(&format!(
        "<footer>Written by {} from results.json (schema {}). Every figure here is in that \
         file; the full histograms are there too, in HdrHistogram's V2 form.</footer>",
        esc(&e.tool),
        esc(&r.schema)
    ));
    html::page(&format!("resilbench: {name}"), &body)
}

/// The profile as the page describes it: with a `--target` that reported the backend it
/// served (`crate::backend::served`), that backend (its seed, `[backend]` and `[[phases]]`) in
/// place of the profile's own, and a sentence saying where they differ.
fn described(doc: &ResultsDoc) -> (Cow<'_, serde_json::Value>, Option<String>) {
    let r = &doc.results;
    let Some(served) = r
        .strategies
        .iter()
        .find_map(|s| s.backend.as_ref()?.served.clone())
    else {
        return (Cow::Borrowed(&r.profile), None);
    };
    let parts = crate::backend::served::differences(&r.profile, &served);
    if parts.is_empty() {
        return (Cow::Borrowed(&r.profile), None);
    }
    // A copy only where the page shows another backend than the profile's.
    let mut profile = r.profile.clone();
    for k in ["seed", "backend", "phases"] {
        if let (Some(obj), Some(v)) = (profile.as_object_mut(), served.get(k)) {
            obj.insert(k.to_string(), v.clone());
        }
    }
    let said = format!(
        "The target {} served another backend than the profile's (it differs in: {}); below \
         is the backend it served, as its Control service reported it.",
        r.environment.target,
        parts.join(", ")
    );
    (Cow::Owned(profile), Some(said))
}

/// Renders a chart into its figure, or says why it could not be drawn.
pub fn chart_figure(id: String, chart: &Chart, caption: &str) -> String {
    match chart.svg() {
        Ok(svg) => figure(&id, &svg, &chart.legend_html(), caption),
        Err(why) => format!(
            "<p class=\"note\" id=\"{}\">This chart could not be drawn: {}</p>\n",
            esc(&id),
            esc(&why)
        ),
    }
}

/// Writes the report of `doc` to `path`, atomically.
pub fn write(path: &Path, doc: &ResultsDoc) -> std::io::Result<()> {
    crate::results::write_atomic(path, render(doc).as_bytes())
}

/// A strategy's histogram, or an empty one if it does not decode.
fn hist(text: &str) -> Hist {
    Hist::decode(text).unwrap_or_default()
}

/// Every chart with its id and caption, in page order.
fn charts(doc: &ResultsDoc) -> Vec<(String, Chart, String)> {
    let r = &doc.results;
    let bands = phases::bands(&described(doc).0);
    let shaded = if bands.is_empty() {
        ""
    } else {
        " Shaded: the backend's phases."
    };
    let dists = |pick: fn(&crate::results::Histograms) -> &String| -> Vec<Dist> {
        r.strategies
            .iter()
            .enumerate()
            .map(|(i, s)| Dist {
                label: s.name.clone(),
                colour: palette::colour(i),
                shape: Shape::Line,
                hist: hist(pick(&s.histograms)),
            })
            .collect()
    };
    let mut out = vec![
        (
            "chart-latency".to_string(),
            percentiles::chart(
                "Latency by percentile: successful calls, from their intended start",
                "latency",
                &dists(|h| &h.e2e_ok),
                None,
            ),
            "Read the tail on the right: each step right is ten times rarer (90%, 99%, 99.9%). \
             The last point of each line is its slowest call."
                .to_string(),
        ),
        (
            "chart-p99-time".into(),
            charts::timeline::p99(doc, &bands),
            format!(
                "The p99 of each second's calls (successes and failures), filed under the \
                 second they were due.{shaded}"
            ),
        ),
        (
            "chart-goodput-time".into(),
            charts::timeline::goodput(doc, &bands),
            format!(
                "Calls that succeeded, by the second they were due; the dashed line is the load \
                 offered.{shaded}"
            ),
        ),
        (
            "chart-amplification-time".into(),
            charts::timeline::attempts(doc, &bands),
            format!(
                "Attempts sent each second (first tries, retries and hedges) against calls \
                 offered: the gap is the extra load a strategy puts on the backend.{shaded}"
            ),
        ),
        (
            "chart-attempts".into(),
            charts::attempts::chart(doc),
            "How many attempts each completed call made (0: refused before any attempt, by \
             an open breaker or a client-side throttle)."
                .to_string(),
        ),
    ];
    if let Some(chart) = charts::timeline::breaker(doc, &bands) {
        out.push((
            "chart-breaker".into(),
            chart,
            "Each circuit breaker's state, at the exact times it changed (the transitions in \
             results.json). Open: calls fail at once without reaching the backend; half-open: \
             trial calls decide whether it closes or opens again. Lines are set slightly apart \
             where breakers agree."
                .to_string(),
        ));
    }
    for (n, key) in charts::timeline::extra_keys(doc).into_iter().enumerate() {
        let (id, caption) = match key.as_str() {
            "tokens" => (
                "chart-tokens".to_string(),
                "The retry throttle's token count: each failed attempt takes one, each \
                 successful call gives back tokenRatio, and retries are allowed only while \
                 more than half the bucket is left."
                    .to_string(),
            ),
            _ => (
                format!("chart-extra-{n}"),
                format!(
                    "<code>{}</code> per second, as recorded in the timeline of results.json.",
                    esc(&key)
                ),
            ),
        };
        out.push((id, charts::timeline::extra(doc, &key, &bands), caption));
    }
    out.push((
        "chart-lag".into(),
        percentiles::chart(
            "Generator lag by percentile: how late calls were sent",
            "lag",
            &dists(|h| &h.lag),
            Some((
                LAG_P99_LIMIT_MS,
                format!("trust limit: p99 ≤ {LAG_P99_LIMIT_MS} ms"),
            )),
        ),
        lag_caption(doc),
    ));
    out
}

fn lag_caption(doc: &ResultsDoc) -> String {
    let g = &doc.results.generator;
    let virtual_note = if doc.results.environment.clock == "virtual" {
        " On a virtual clock calls are sent exactly on time: the lines lie on the floor."
    } else {
        ""
    };
    let intervals = g.interval_error_ms.map_or(String::new(), |e| {
        format!(
            " The gaps between consecutive sends were off their intended gaps by p50 {} ms, \
             p99 {} ms, max {} ms.",
            charts::short(e.p50),
            charts::short(e.p99),
            charts::short(e.max),
        )
    });
    let floor = doc.results.environment.timer.map_or(String::new(), |t| {
        format!(
            " This machine woke a sleeping thread p50 {} ms, p99 {} ms, max {} ms late ({} \
             wake-ups calibrated before the run), and calls due within the driver's {} ms \
             quantum leave together: a lag p99 up to {} ms is this machine's floor, not the \
             generator falling behind.",
            charts::short(t.wake_overshoot_ms.p50),
            charts::short(t.wake_overshoot_ms.p99),
            charts::short(t.wake_overshoot_ms.max),
            t.samples,
            charts::short(t.wake_quantum_ms),
            charts::short(t.lag_floor_ms()),
        )
    });
    format!(
        "The load generator's own lateness, over all strategies: p50 {} ms, p99 {} ms, max {} ms; \
         achieved {:.1} of {:.1} calls/s offered.{intervals}{floor} Above the dashed line at p99, \
         the generator (not the system) shaped the latencies.{virtual_note}",
        charts::short(g.lag_ms.p50),
        charts::short(g.lag_ms.p99),
        charts::short(g.lag_ms.max),
        g.achieved_rate,
        g.offered_rate,
    )
}

/// The trust banner: a warning when the run cannot be fully trusted, a short all-clear if it can.
fn banner(doc: &ResultsDoc) -> String {
    let failed = trust::failures(&doc.results);
    let mut warnings = doc.results.warnings.clone();
    warnings.extend(described(doc).1);
    let warnings = &warnings;
    if failed.is_empty() && warnings.is_empty() {
        let g = &doc.results.generator;
        return format!(
            "<div class=\"banner ok\" id=\"trust\">The generator kept its schedule: lag p99 {} ms \
             (limit {LAG_P99_LIMIT_MS} ms), {:.1} of {:.1} calls/s achieved, run complete.</div>\n",
            charts::short(g.lag_ms.p99),
            g.achieved_rate,
            g.offered_rate,
        );
    }
    // An interrupted run is the user's stop, not the generator's fault: say which.
    let generator = failed.iter().any(|t| t.rule != trust::Rule::Partial);
    let heading = if generator {
        "This run is not trustworthy: the generator shaped these figures"
    } else if !failed.is_empty() && doc.results.stopped == Some(trust::Stopped::TargetLost) {
        "This run stopped early: the target was lost"
    } else if !failed.is_empty() {
        "This run was interrupted"
    } else {
        "Warnings"
    };
    let mut out = format!("<div class=\"banner\" id=\"trust\">\n<h2>⚠ {heading}</h2>\n<ul>\n");
    if let Some(missing) = crate::answer::interrupted::missing(&doc.results) {
        out.push_str(&format!("<li>{}</li>\n", esc(&missing)));
    }
    for w in warnings {
        out.push_str(&format!("<li>{}</li>\n", esc(w)));
    }
    // The run's warnings already say what its trust checks found; the checks speak only for a
    // file whose warnings are empty (written by hand, or by an older build).
    let shown = if warnings.is_empty() {
        &failed[..]
    } else {
        &[]
    };
    for t in shown {
        out.push_str(&format!(
            "<li>{}: <code>{}</code> is {}, limit {}</li>\n",
            esc(&t.strategy),
            esc(t.figure),
            esc(&t.value),
            esc(&t.limit)
        ));
    }
    out.push_str("</ul>\n</div>\n");
    out
}
