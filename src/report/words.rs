//! The profile in words: what load, against what backend, through which strategies.
//!
//! Read from the profile JSON of results.json, not from the typed plan, so a report of a newer
//! build's file (a layer kind or a backend setting this build does not know) still says
//! everything: known shapes get a sentence, anything else is listed as its keys and values.

use serde_json::Value;

use super::charts::short;
use super::html::{esc, name_cell};
use super::palette;

/// A JSON value as short text: strings bare, numbers as written, objects as `k v, k v`.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k} {}", plain(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|v| !v.is_null())
}

fn text(v: &Value, key: &str) -> String {
    get(v, key).map_or_else(|| "?".into(), plain)
}

/// A latency distribution in words: "lognormal, median 2ms, p99 40ms".
pub fn latency(v: &Value) -> String {
    let Some(dist) = v.get("dist").and_then(Value::as_str) else {
        return plain(v);
    };
    match dist {
        "fixed" => format!("fixed {}", text(v, "value")),
        "uniform" => format!("uniform from {} to {}", text(v, "min"), text(v, "max")),
        "normal" => format!("normal, mean {} ± {}", text(v, "mean"), text(v, "stddev")),
        "lognormal" => format!(
            "lognormal, median {}, p99 {}",
            text(v, "median"),
            text(v, "p99")
        ),
        "pareto" => format!(
            "Pareto, scale {}, shape {}",
            text(v, "scale"),
            text(v, "shape")
        ),
        "mixture" => {
            let parts = v
                .get("of")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total: f64 = parts.iter().filter_map(|p| p.get("weight")?.as_f64()).sum();
            let each: Vec<String> = parts
                .iter()
                .map(|p| {
                    let w = p.get("weight").and_then(Value::as_f64).unwrap_or(0.0);
                    let share = if total > 0.0 { 100.0 * w / total } else { 0.0 };
                    format!(
                        "{}% {}",
                        short(share),
                        latency(p.get("latency").unwrap_or(&Value::Null))
                    )
                })
                .collect();
            format!("a mixture: {}", each.join("; "))
        }
        "measured" => {
            let get = |k: &str| v.get(k).and_then(Value::as_str);
            let from = get("from").unwrap_or("the profile");
            let count = get("recorded")
                .and_then(|r| crate::hdr::Hist::decode(r).ok())
                .map_or(String::new(), |h| format!(", {} values", h.count()));
            if from.ends_with(".hlog") {
                format!("measured: the end-to-end seconds of {from}{count}")
            } else {
                format!(
                    "measured: the {} histogram of {} in {from}{count}",
                    get("histogram").unwrap_or("attempt"),
                    get("strategy").map_or("its strategy".into(), |s| format!("`{s}`"))
                )
            }
        }
        _ => plain(v),
    }
}

/// The load, the backend and the strategies, as HTML.
pub fn profile(profile: &Value) -> String {
    let mut out = String::from("<dl class=\"profile\">\n");
    let mut item = |term: &str, html: String| {
        out.push_str(&format!("<dt>{term}</dt><dd>{html}</dd>\n"));
    };
    if let Some(load) = get(profile, "load") {
        let each = if get(load, "order").and_then(Value::as_str) == Some("interleaved") {
            "shared by the strategies, interleaved call by call"
        } else {
            "per strategy"
        };
        let mut s = format!(
            "{} calls/s, {} arrivals, for {} {each} (the first {} are warmup, left out of \
             every figure); each call's deadline {} from its intended start; at most {} calls \
             in flight",
            text(load, "rate"),
            text(load, "arrival"),
            text(load, "duration"),
            text(load, "warmup"),
            text(load, "deadline"),
            text(load, "max_in_flight"),
        );
        for step in get(load, "steps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            s.push_str(&format!(
                "; from {}: {} calls/s",
                text(step, "at"),
                text(step, "rate")
            ));
        }
        item("load", esc(&s));
    }
    if let Some(backend) = get(profile, "backend") {
        let mut parts = vec![format!(
            "service time {}",
            get(backend, "latency").map_or("?".into(), latency)
        )];
        let measured = get(backend, "errors_from")
            .and_then(|e| e.get("from"))
            .and_then(Value::as_str)
            .map_or(String::new(), |f| format!(" (as measured in {f})"));
        match get(backend, "errors").and_then(Value::as_object) {
            Some(errors) if !errors.is_empty() => parts.push(format!(
                "errors per attempt{measured}: {}",
                errors
                    .iter()
                    .map(|(code, p)| format!(
                        "{code} {}%",
                        short(p.as_f64().unwrap_or(0.0) * 100.0)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => parts.push("no injected errors".into()),
        }
        parts.push(match get(backend, "workers") {
            Some(w) => format!(
                "{} workers, queue {}",
                plain(w),
                get(backend, "queue").map_or("unlimited".into(), plain)
            ),
            None => "unlimited workers".into(),
        });
        let method = get(profile, "load").map_or("unary".into(), |l| text(l, "method"));
        parts.extend(backend_extras(backend, &method));
        item("backend", esc(&parts.join("; ")));
    }
    if let Some(list) = get(profile, "phases")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    {
        item(
            "phases",
            esc(&list.iter().map(phase).collect::<Vec<_>>().join("; ")),
        );
    }
    if let Some(seed) = get(profile, "seed") {
        item("seed", esc(&plain(seed)));
    }
    out.push_str("</dl>\n");
    out.push_str(&strategies(profile));
    out
}

/// The backend settings beyond latency, errors and capacity, in words; defaults are left out.
fn backend_extras(backend: &Value, method: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let nonempty = |k: &str| {
        get(backend, k).filter(|v| {
            !v.is_null()
                && v.as_array().is_none_or(|a| !a.is_empty())
                && v.as_object().is_none_or(|o| !o.is_empty())
        })
    };
    if let Some(by) = nonempty("latency_by_status").and_then(Value::as_object) {
        let each: Vec<String> = by
            .iter()
            .map(|(code, l)| format!("{code} in {}", latency(l)))
            .collect();
        parts.push(format!("answers {}", each.join(", ")));
    }
    if let Some(p) = nonempty("pushback") {
        match (get(p, "fixed"), get(p, "per_queued")) {
            (Some(f), _) if !f.is_null() => {
                parts.push(format!("pushback {} when the queue is full", plain(f)))
            }
            (_, Some(q)) if !q.is_null() => parts.push(format!(
                "pushback {} per queued request when the queue is full",
                plain(q)
            )),
            _ => {}
        }
    }
    if let Some(q) = nonempty("quota") {
        parts.push(format!(
            "quota {} requests/s (burst {}){}",
            text(q, "rate"),
            text(q, "burst"),
            if get(q, "pushback").and_then(Value::as_bool) == Some(true) {
                " with pushback"
            } else {
                ""
            }
        ));
    }
    if get(backend, "on_cancel").and_then(Value::as_str) == Some("stop") {
        parts.push("stops work its caller gave up on".into());
    } else {
        parts.push("works on when its caller gives up (wasted work)".into());
    }
    if let Some(scripts) = nonempty("scripts").and_then(Value::as_array) {
        let each: Vec<String> = scripts
            .iter()
            .map(|sc| {
                let who = match get(sc, "every").filter(|v| !v.is_null()) {
                    Some(n) => format!("every {}th call", plain(n)),
                    None => format!("ids {}", plain(get(sc, "ids").unwrap_or(&Value::Null))),
                };
                let steps: Vec<String> = get(sc, "steps")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|st| get(st, "status").map_or_else(|| plain(st), plain))
                    .collect();
                format!("{who}: {}", steps.join(" → "))
            })
            .collect();
        parts.push(format!("scripted: {}", each.join("; ")));
    }
    if method == "mutate"
        && let Some(m) = get(backend, "mutation")
    {
        let lost = get(m, "lost_response").filter(|v| !v.is_null()).map_or(
            "no lost responses".into(),
            |l| {
                format!(
                    "{}% of replies lost after the side effect ({})",
                    short(get(l, "rate").and_then(Value::as_f64).unwrap_or(0.0) * 100.0),
                    text(l, "fail")
                )
            },
        );
        let dedup = if get(m, "dedup").and_then(Value::as_bool) == Some(true) {
            format!(
                "deduplicated by idempotency key for {}",
                text(m, "dedup_ttl")
            )
        } else {
            "no deduplication".into()
        };
        parts.push(format!("mutations: {lost}, {dedup}"));
    }
    if method == "stream"
        && let Some(st) = get(backend, "stream")
    {
        parts.push(format!(
            "streams of {} messages, {} apart",
            text(st, "messages"),
            get(st, "interval").map_or("?".into(), latency)
        ));
    }
    if let Some(replicas) = nonempty("replicas").and_then(Value::as_array) {
        let names: Vec<String> = replicas.iter().map(|r| text(r, "name")).collect();
        parts.push(format!(
            "{} replicas behind round-robin ({})",
            replicas.len(),
            names.join(", ")
        ));
    }
    // Settings a newer build added, shown as they are written.
    if let Some(map) = backend.as_object() {
        const KNOWN: [&str; 13] = [
            "latency",
            "errors",
            "errors_from",
            "workers",
            "queue",
            "latency_by_status",
            "pushback",
            "quota",
            "on_cancel",
            "scripts",
            "mutation",
            "stream",
            "replicas",
        ];
        for (k, v) in map {
            if !KNOWN.contains(&k.as_str()) && !v.is_null() {
                parts.push(format!("{k}: {}", plain(v)));
            }
        }
    }
    parts
}

/// One phase in words: "outage of replica b from 10s for 2s (UNAVAILABLE)".
fn phase(p: &Value) -> String {
    let kind = text(p, "kind");
    let whom = get(p, "replica")
        .and_then(Value::as_str)
        .map(|r| format!(" of replica {r}"))
        .unwrap_or_default();
    let what = match kind.as_str() {
        "outage" => format!(" ({})", text(p, "status")),
        "brownout" => {
            let mut b = Vec::new();
            if let Some(k) = get(p, "latency_factor").filter(|v| !v.is_null()) {
                b.push(format!("latency ×{}", plain(k)));
            }
            if let Some(k) = get(p, "capacity_factor").filter(|v| !v.is_null()) {
                b.push(format!("workers ×{}", plain(k)));
            }
            format!(" ({})", b.join(", "))
        }
        "error_burst" => format!(" ({})", plain(get(p, "errors").unwrap_or(&Value::Null))),
        "load_spike" => format!(" (offered rate ×{})", text(p, "factor")),
        _ => String::new(),
    };
    format!(
        "{kind}{whom} from {} for {}{what}",
        text(p, "start"),
        text(p, "duration")
    )
}

fn strategies(profile: &Value) -> String {
    let list = get(profile, "strategies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = String::from(
        "<table>\n<thead><tr><th class=\"name\">strategy</th><th class=\"name\">what it is</th>\
         <th>deadline</th><th class=\"name\">layers, top to bottom</th></tr></thead>\n<tbody>\n",
    );
    for (i, s) in list.iter().enumerate() {
        // What the strategy adds to the call itself, before its layers.
        let mut call_notes = Vec::new();
        if let Some(margin) = get(s, "deadline_margin").and_then(Value::as_str)
            && margin != "0s"
        {
            call_notes.push(format!("the backend is told the deadline less {margin}"));
        }
        if get(s, "propagate_deadline").and_then(Value::as_bool) == Some(false) {
            call_notes.push("no deadline sent to the backend".to_string());
        }
        if get(s, "idempotency_keys").and_then(Value::as_bool) == Some(true) {
            call_notes.push("an idempotency key on each mutation".to_string());
        }
        let layers: Vec<String> = get(s, "layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|layer| {
                let kind = layer.get("kind").and_then(Value::as_str).unwrap_or("layer");
                let rest: Vec<String> = layer
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| {
                        k.as_str() != "kind" && v.as_array().is_none_or(|a| !a.is_empty())
                    })
                    .map(|(k, v)| format!("{k} {}", plain(v)))
                    .collect();
                format!("{kind} ({})", rest.join(", "))
            })
            .collect();
        let mut what = get(s, "description").map_or(String::new(), plain);
        if let Some(client) = client_words(s) {
            what = if what.is_empty() {
                client
            } else {
                format!("{what} {client}")
            };
        }
        out.push_str(&format!(
            "<tr>{}<td class=\"text\">{}</td><td>{}</td><td class=\"text\">{}</td></tr>\n",
            name_cell(&text(s, "name"), &palette::css(i)),
            esc(&what),
            esc(&text(s, "deadline")),
            esc(&{
                let layers = if layers.is_empty() {
                    "none: one attempt per call".to_string()
                } else {
                    layers.join(" → ")
                };
                if call_notes.is_empty() {
                    layers
                } else {
                    format!("{layers}; {}", call_notes.join("; "))
                }
            }),
        ));
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The client flavor of the strategy named `name` in a profile (`grpc-java@1.41`), if it is
/// not the A6 text: what the compare page shows beside the name.
pub fn client_of(profile: &Value, name: &str) -> Option<String> {
    get(profile, "strategies")?
        .as_array()?
        .iter()
        .find(|s| get(s, "name").and_then(Value::as_str) == Some(name))
        .and_then(|s| get(s, "client")?.as_str().map(str::to_string))
}

/// A strategy's client flavor in words, with what it ignores (a hedging policy, for a
/// library without hedging); `None` for the A6 text.
fn client_words(strategy: &Value) -> Option<String> {
    use crate::profile::client::Client;
    let written = get(strategy, "client")?.as_str()?;
    let Ok(client) = Client::parse(written) else {
        return Some(format!("Runs its gRPC policies as {written}."));
    };
    let mut words = format!(
        "Runs its gRPC policies as {written} ({}), with that library's departures from A6.",
        client.library.described()
    );
    let kinds: Vec<&str> = get(strategy, "layers")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|layer| layer.get("kind").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    if kinds.contains(&"grpc_hedge") && !client.flavor().hedging {
        let ignored = crate::profile::plan::hedging_ignored(&kinds);
        words.push_str(&format!(" That library has no hedging: {ignored}."));
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn latencies_read_as_people_say_them() {
        assert_eq!(
            latency(&json!({"dist": "lognormal", "median": "2ms", "p99": "40ms"})),
            "lognormal, median 2ms, p99 40ms"
        );
        let mix = json!({"dist": "mixture", "of": [
            {"weight": 99, "latency": {"dist": "fixed", "value": "2ms"}},
            {"weight": 1, "latency": {"dist": "fixed", "value": "200ms"}},
        ]});
        assert_eq!(latency(&mix), "a mixture: 99% fixed 2ms; 1% fixed 200ms");
        assert_eq!(latency(&json!({"dist": "new", "k": 1})), "dist new, k 1");
    }

    #[test]
    fn a_strategy_names_its_client_and_what_it_ignores() {
        let hedged = json!({"name": "c", "client": "c-core@1.85.1",
            "layers": [{"kind": "grpc_hedge", "max_attempts": 3}]});
        let words = client_words(&hedged).unwrap();
        assert!(
            words.contains("c-core@1.85.1 (gRPC C-core") && words.contains("ignored"),
            "{words}"
        );
        assert!(words.contains("each call is sent once"), "{words}");
        // Another layer still sends a call again: not one attempt per call.
        let retried = json!({"name": "r", "client": "c-core",
            "layers": [{"kind": "retry"}, {"kind": "grpc_hedge", "max_attempts": 3}]});
        let words = client_words(&retried).unwrap();
        assert!(
            words.contains("ignored")
                && words.contains("`retry`")
                && !words.contains("one attempt"),
            "{words}"
        );
        let java = json!({"name": "j", "client": "grpc-java@1.41",
            "layers": [{"kind": "grpc_hedge", "max_attempts": 3}]});
        assert!(!client_words(&java).unwrap().contains("ignored"));
        assert_eq!(client_words(&json!({"name": "a"})), None);
        let profile = json!({"strategies": [java, {"name": "a"}]});
        assert_eq!(client_of(&profile, "j").as_deref(), Some("grpc-java@1.41"));
        assert_eq!(client_of(&profile, "a"), None);
    }
}
