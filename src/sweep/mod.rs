//! Sweeps: one profile run at many settings, to choose the settings to ship.
//!
//! A sweep is a layer above the runner, not a second runner. Its grid ([`grid`]) is a set of
//! keys of the profile's resolved plan ([`key`]), each with a list or range of values
//! ([`values`], `range.rs`); every combination of values is a point, and every point is an ordinary plan,
//! checked by the profile's own rules before anything runs. The points run ([`run`]) through
//! [`crate::runner::execute`], in parallel on a virtual clock, and each is written as an
//! ordinary run folder that `report`, `compare` and `check` read. What the points say (the
//! trade-off frontier, the load curves, the recommendation, `sweep.json` and `sweep.html`) is
//! read from them by [`crate::choose`].
//!
//! ```text
//! profile + [sweep] / --vary ──▶ spec ──▶ grid (keys × values, each point's plan checked)
//!                                            │ point i: base plan with its values set
//!                                            ▼
//!                      run: jobs threads × runner::execute on a paused runtime each
//!                                            │ points/NNNN/results.json as each finishes
//!                                            ▼
//!                      choose: figures per point → frontier, load curves, verdict
//! ```

pub mod grid;
pub mod key;
pub mod output;
pub mod progress;
mod range;
pub mod run;
pub mod spec;
pub mod values;

pub use grid::Grid;
pub use spec::Spec;
