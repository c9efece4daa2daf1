//! Latency histograms, as the recorder keeps them: the HdrHistogram type and its encoding live
//! in [`crate::hdr`] (the vocabulary layer), so that a profile can read a recorded histogram
//! (`dist = "measured"`) without naming the recorder; they are re-exported here under the
//! names the recorder and the readers have always used.

pub use crate::hdr::{Hist, LatencySummary, MAX_COUNTS, MAX_TEXT, MAX_V2, SIGFIG, check_encoding};
