//! How the verdict writes its numbers and names: percentages, milliseconds, "31x", and the
//! possessive of a strategy's name.

/// A share as a percentage: "99.02%".
pub(super) fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// Milliseconds as the tables show them.
pub(super) fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.1}")
    } else {
        crate::table::short(v)
    }
}

/// A percentage with one decimal under 10, none above.
pub(super) fn one_decimal(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// "retries'" and "plain's".
pub(super) fn possessive(name: &str) -> String {
    if name.ends_with('s') {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

/// How much lower `to` is than `from`: "31x" or "by 35%".
pub(super) fn cut_words(from: f64, to: f64) -> String {
    let r = from / to;
    if r >= 2.0 {
        format!("{r:.0}x")
    } else {
        format!("by {:.0}%", (1.0 - to / from) * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_and_names() {
        assert_eq!(cut_words(200.1, 6.42), "31x");
        assert_eq!(cut_words(100.0, 65.0), "by 35%");
        assert_eq!(possessive("retries"), "retries'");
        assert_eq!(possessive("plain"), "plain's");
    }
}
