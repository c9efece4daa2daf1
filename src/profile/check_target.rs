//! `[target]` against its schema, when the schema is on disk: the `.proto` files compile (or
//! the protoset reads), the method is there and is unary or server streaming, the request
//! fits its message for every value its placeholders can take. So a profile that `validate`
//! passes does not fail on these when it runs. A schema fetched by reflection is checked the
//! same way when the run starts (`runner`), before any load.
//!
//! The plan's `load.method` follows the method: `stream` for server streaming (each message
//! counted), `unary` otherwise.

use std::path::PathBuf;

use super::plan::{Arrival, Method, Plan};
use super::settle_target::request_field;
use super::target::TargetPlan;
use super::validate::{Invalid, invalid};
use crate::schema::{self, DescriptorPool, RequestTemplate, SchemaError};

/// The schema of `target` when it is on disk (`proto`, `protoset`); `None` for reflection.
/// The error names the key it concerns.
pub fn schema_on_disk(
    target: &TargetPlan,
) -> Result<Option<DescriptorPool>, (&'static str, SchemaError)> {
    if let Some(path) = &target.protoset {
        return schema::proto::protoset(&PathBuf::from(path))
            .map(Some)
            .map_err(|e| ("target.protoset", e));
    }
    if target.proto.is_empty() {
        return Ok(None);
    }
    let files: Vec<PathBuf> = target.proto.iter().map(PathBuf::from).collect();
    let imports: Vec<PathBuf> = target.import_paths.iter().map(PathBuf::from).collect();
    schema::proto::compile(&files, &imports)
        .map(Some)
        .map_err(|e| ("target.proto", e))
}

/// The method and request of `target` checked against `pool`: the request template, and
/// the load's method for the method's kind. Errors name the key.
pub fn resolve(
    target: &TargetPlan,
    pool: &DescriptorPool,
    seed: u64,
    last_call: u64,
) -> Result<(schema::Called, RequestTemplate, Method), (&'static str, SchemaError)> {
    let called = schema::find_method(pool, &target.method).map_err(|e| ("target.method", e))?;
    let request = RequestTemplate::new(&called.input(), target.request_text(), seed, last_call)
        .map_err(|e| (request_field(target), e))?;
    let method = if called.streaming() {
        Method::Stream
    } else {
        Method::Unary
    };
    Ok((called, request, method))
}

/// Checks the plan's target against its schema on disk; sets `load.method` from it.
pub fn with_schema(plan: &mut Plan) -> Result<(), Invalid> {
    let Some(target) = &plan.target else {
        return Ok(());
    };
    let pool = match schema_on_disk(target) {
        Ok(Some(pool)) => pool,
        Ok(None) => return Ok(()),
        Err((field, e)) => return invalid(field, e.0),
    };
    match resolve(target, &pool, plan.seed, last_call(plan)) {
        Ok((_, _, method)) => {
            plan.load.method = method;
            Ok(())
        }
        Err((field, e)) => invalid(field, e.0),
    }
}

/// The index of the last call the schedule offers (rate steps and load spikes included):
/// what a `{{call}}` can reach. Constant arrivals offer call k while the rate's integral is
/// above k, so the last is ⌈expected⌉ − 1, exactly (`driver::schedule`). A Poisson schedule's
/// count is a Poisson draw around the expected λ: the bound is λ + 8√λ + 24, which Bernstein's
/// inequality (P(N ≥ λ + a) ≤ exp(−a² / 2(λ + a/3))) puts beyond reach with probability
/// below e⁻³², for every λ.
pub fn last_call(plan: &Plan) -> u64 {
    let segments = plan.load.segments(&plan.phases);
    let mut calls = 0.0;
    for (i, (start, rate)) in segments.iter().enumerate() {
        let end = segments.get(i + 1).map_or(plan.load.duration, |s| s.0);
        calls += rate * end.saturating_sub(*start).as_secs_f64();
    }
    let count = match plan.load.arrival {
        Arrival::Constant => calls.ceil(),
        Arrival::Poisson => calls + 8.0 * calls.sqrt() + 24.0,
    };
    (count - 1.0).clamp(0.0, u64::MAX as f64 / 2.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(load: &str) -> Plan {
        let text = format!("[load]\n{load}\n[[strategies]]\nname = \"a\"\n");
        crate::profile::parse(&text, "t.toml", "t", &crate::profile::Overrides::default()).unwrap()
    }

    /// Constant arrivals: the schedule's own last index (2,000,000,000 calls end at
    /// 1,999,999,999, inside an int32). (Poisson's bound is checked against the schedule in
    /// tests/open_loop.rs: the driver is a layer above.)
    #[test]
    fn the_last_call_is_the_schedules() {
        let p = plan("rate = 1000000\nduration = \"2000s\"");
        assert_eq!(last_call(&p), 1_999_999_999);
        let p = plan("rate = 7\nduration = \"1s\"");
        assert_eq!(last_call(&p), 6);
        // 10/s for 0.5s then 20/s: 15 calls.
        let p = plan("rate = 10\nduration = \"1s\"\n[[load.steps]]\nat = \"0.5s\"\nrate = 20");
        assert_eq!(last_call(&p), 14);
    }
}
