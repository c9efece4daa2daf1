//! `load.order = "interleaved"`: which strategy each call of the one schedule goes to.
//!
//! Why a keyed draw and not turns (call i to strategy i mod n): turns line a strategy up with
//! the schedule's own rhythm (every n-th call of a constant schedule, a script's `every = n`,
//! a shard's calls), so one strategy could meet all of a periodic fault and another none. A
//! draw keyed by (seed, call) has no rhythm, is the same whatever the interleaving, the clock
//! or the sharding, and is independent of the backend's draws for the call (another purpose).
//! Over many calls each strategy gets close to 1/n of them; its offered rate is its share.

use crate::keyed::{KeyedStream, Purpose, call_key};

/// The strategy (of `lanes`) that call `id` of the schedule goes to, for the plan's `seed`.
pub fn lane(seed: u64, id: u64, lanes: usize) -> usize {
    if lanes <= 1 {
        return 0;
    }
    let bits = KeyedStream::new(seed, call_key(id), 0, Purpose::Order).next_u64();
    // Multiply-shift: uniform over 0..lanes, without the modulo's bias.
    ((u128::from(bits) * lanes as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draw is a function of the seed and the call alone, spreads the calls evenly, and
    /// changes with the seed.
    #[test]
    fn each_call_goes_to_one_lane_evenly_and_reproducibly() {
        let n = 3;
        let mut counts = [0u64; 3];
        for id in 0..30_000 {
            let l = lane(7, id, n);
            assert_eq!(l, lane(7, id, n));
            counts[l] += 1;
        }
        for c in counts {
            assert!((9_700..=10_300).contains(&c), "{counts:?}");
        }
        let differ = (0..1000)
            .filter(|&id| lane(7, id, n) != lane(8, id, n))
            .count();
        assert!(differ > 500, "{differ}");
        assert_eq!(lane(7, 5, 1), 0);
        // No rhythm: consecutive calls are not dealt out in turns.
        let turns = (0..3000)
            .filter(|&id| lane(7, id, n) == (id % 3) as usize)
            .count();
        assert!((900..=1100).contains(&turns), "{turns}");
    }
}
