//! What a sweep's points say: the trade-off frontier, the load curves, the recommendation,
//! and the files that hold them (`sweep.json`, `sweep.html`).
//!
//! [`crate::sweep`] runs the points; this module reads them. As each point finishes its
//! results are summed up in a few figures per strategy ([`figures`]); those are all a sweep
//! keeps, in [`doc::SweepDoc`] (`sweep.json`), from which everything else is worked out:
//! the Pareto frontier of tail latency, cost and success ([`frontier`]), goodput against
//! offered load and the metastability test for a load sweep ([`load`]), the cheapest point
//! that meets the goal ([`goal`], [`verdict`]), the page ([`page`], `page_frontier.rs`, `page_load.rs`, [`charts`]) and the
//! terminal's summary ([`text`]). Shards of a sweep are joined by [`merge`].

pub mod charts;
pub mod doc;
pub mod figures;
pub mod frontier;
pub mod goal;
pub mod load;
pub mod merge;
pub mod page;
mod page_frontier;
mod page_load;
pub mod text;
pub mod verdict;

pub use doc::SweepDoc;
pub use goal::Goal;
