//! Settings a profile states that the run it describes will not apply, said before it runs.
//!
//! A silent no-op reads as a measurement: a user who points an outage profile at their own
//! service believes they ran an outage, and one who sets a cooldown on interleaved strategies
//! believes they waited. The faults of `[backend]` and `[[phases]]` live in resilbench's own
//! backend (`run` without a target, `serve`, `proxy`); a `[target]` without `control = true`
//! is the user's service, called directly, and none of them reaches it.

use super::backend::BackendPlan;
use super::plan::{Order, Plan};

impl Plan {
    /// One sentence per setting the run will not apply (printed when the profile loads, by
    /// `run` and `validate`).
    pub fn unapplied(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(target) = self.target.as_ref().filter(|t| !t.control) {
            let mut what = Vec::new();
            if self.backend != BackendPlan::default() {
                what.push("[backend]".to_string());
            }
            if !self.phases.is_empty() {
                what.push(format!("{} [[phases]]", self.phases.len()));
            }
            if !what.is_empty() {
                out.push(format!(
                    "{} shape resilbench's own backend, not your service: with [target] the calls \
                     go straight to {}, and no fault, latency or phase of the profile reaches \
                     it; to put them in front of it, run `resilbench proxy PROFILE --upstream {}` \
                     and point target.address at the proxy with target.control = true \
                     (docs/proxy.md)",
                    what.join(" and "),
                    target.address,
                    target.address
                ));
            }
        }
        if self.load.order == Order::Interleaved
            && self.load.cooldown.is_some_and(|c| !c.0.is_zero())
        {
            out.push(
                "load.cooldown does not apply to interleaved strategies: they run at the same \
                 time, with no pause between them"
                    .into(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::profile::{Overrides, parse};

    fn plan(extra: &str) -> crate::profile::Plan {
        let text = format!(
            "[load]\nrate = 10\nduration = \"2s\"\n{extra}\n[[strategies]]\nname = \"a\"\n"
        );
        parse(&text, "p.toml", "p", &Overrides::default()).expect("the profile is valid")
    }

    const TARGET: &str =
        "[target]\naddress = \"127.0.0.1:1\"\nreflection = true\nmethod = \"acme.v1.Echo/Say\"\n";

    #[test]
    fn faults_stated_for_ones_own_service_are_said_not_to_reach_it() {
        assert!(plan(TARGET).unapplied().is_empty());
        let w = plan(&format!(
            "{TARGET}[backend]\nlatency = \"5ms\"\n[[phases]]\nkind = \"outage\"\nstart = \"0s\"\nduration = \"1s\"\n"
        ))
        .unapplied();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("[backend] and 1 [[phases]] shape resilbench's own backend"));
        assert!(w[0].contains("resilbench proxy PROFILE --upstream 127.0.0.1:1"));
        // Through a proxy they do apply.
        let proxied = plan(&format!(
            "{}control = true\n[[phases]]\nkind = \"outage\"\nstart = \"0s\"\nduration = \"1s\"\n",
            TARGET
        ));
        assert!(proxied.unapplied().is_empty());
        // Without a target they are the embedded backend's.
        let own = plan("[[phases]]\nkind = \"outage\"\nstart = \"0s\"\nduration = \"1s\"\n");
        assert!(own.unapplied().is_empty());
    }

    #[test]
    fn a_cooldown_between_interleaved_strategies_is_said_not_to_apply() {
        let w = plan("order = \"interleaved\"\ncooldown = \"30s\"").unapplied();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("load.cooldown does not apply"));
        assert!(plan("cooldown = \"30s\"").unapplied().is_empty());
    }
}
