//! A bounded map whose entries expire: the backend's memory of requests.
//!
//! The backend remembers some requests for a while: how many attempts a scripted request has
//! made, how many side effects a mutation has had, which idempotency keys it has answered. That
//! memory must not grow with the run: each entry lives `ttl` after it was created, and when the
//! map is full the oldest entry goes first. Both are O(1) per operation (a queue in creation
//! order beside the map).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// A map with a lifetime and a size bound.
#[derive(Debug)]
pub struct Expiring<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<(Instant, K)>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Expiring<K, V> {
    /// Entries live `ttl`; at most `capacity` are kept.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Drops the entries older than `ttl` at `now`.
    fn expire(&mut self, now: Instant) {
        while let Some((created, _)) = self.order.front() {
            if now.saturating_duration_since(*created) < self.ttl {
                break;
            }
            let (_, key) = self.order.pop_front().expect("front exists");
            self.map.remove(&key);
        }
    }

    /// The entry for `key`, created with `make` (at `now`) if absent.
    pub fn entry(&mut self, key: K, now: Instant, make: impl FnOnce() -> V) -> &mut V {
        self.expire(now);
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.capacity {
                let Some((_, old)) = self.order.pop_front() else {
                    break;
                };
                self.map.remove(&old);
            }
            self.order.push_back((now, key.clone()));
        }
        self.map.entry(key).or_insert_with(make)
    }

    /// The entry for `key`, if it is still remembered at `now`.
    pub fn get(&mut self, key: &K, now: Instant) -> Option<&mut V> {
        self.expire(now);
        self.map.get_mut(key)
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// Entries remembered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods, clippy::disallowed_types)] // any instant will do as a starting point
    fn entries_expire_and_the_oldest_go_first_when_full() {
        let t0 = Instant::from_std(std::time::Instant::now());
        let s = Duration::from_secs;
        let mut m: Expiring<u32, u32> = Expiring::new(s(10), 3);
        for k in 0..3 {
            *m.entry(k, t0 + s(u64::from(k)), || 0) += 1;
        }
        *m.entry(0, t0 + s(3), || 0) += 1;
        assert_eq!(m.get(&0, t0 + s(3)), Some(&mut 2));
        m.entry(3, t0 + s(4), || 7);
        assert!(m.get(&0, t0 + s(4)).is_none(), "full: the oldest went");
        assert_eq!(m.len(), 3);
        assert!(
            m.get(&1, t0 + s(11)).is_none(),
            "key 1 was created at 1 s: gone at 11 s"
        );
        assert_eq!(m.get(&3, t0 + s(13)), Some(&mut 7));
        assert!(m.get(&3, t0 + s(14)).is_none());
        assert!(m.is_empty());
    }
}
