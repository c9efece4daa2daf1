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
    /// Entries with the generation they were created in.
    map: HashMap<K, (V, u64)>,
    /// Creation order; a record whose generation no longer matches its key's is stale (the key
    /// was removed, and perhaps created again) and is skipped.
    order: VecDeque<(Instant, K, u64)>,
    next_generation: u64,
    ttl: Duration,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Expiring<K, V> {
    /// Entries live `ttl`; at most `capacity` are kept.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Forgets the oldest record of `order`, and its entry if the record is current.
    fn pop_oldest(&mut self) {
        if let Some((_, key, generation)) = self.order.pop_front()
            && self.map.get(&key).is_some_and(|(_, g)| *g == generation)
        {
            self.map.remove(&key);
        }
    }

    /// Drops the entries older than `ttl` at `now`.
    fn expire(&mut self, now: Instant) {
        while self
            .order
            .front()
            .is_some_and(|(created, _, _)| now.saturating_duration_since(*created) >= self.ttl)
        {
            self.pop_oldest();
        }
    }

    /// The entry for `key`, created with `make` (at `now`) if absent.
    pub fn entry(&mut self, key: K, now: Instant, make: impl FnOnce() -> V) -> &mut V {
        self.expire(now);
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.capacity && !self.order.is_empty() {
                self.pop_oldest();
            }
            let generation = self.next_generation;
            self.next_generation += 1;
            self.order.push_back((now, key.clone(), generation));
            self.map.insert(key.clone(), (make(), generation));
        }
        &mut self.map.get_mut(&key).expect("present").0
    }

    /// The entry for `key`, if it is still remembered at `now`.
    pub fn get(&mut self, key: &K, now: Instant) -> Option<&mut V> {
        self.expire(now);
        self.map.get_mut(key).map(|(v, _)| v)
    }

    /// The entry for `key` as remembered, without expiring anything.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
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
    fn entries_expire_and_the_oldest_go_first_when_full() {
        // Any instant will do as a starting point.
        let t0 = crate::clock::Clock::Tokio.now();
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

    #[test]
    fn a_key_removed_and_created_again_lives_its_full_time() {
        // Any instant will do as a starting point.
        let t0 = crate::clock::Clock::Tokio.now();
        let s = Duration::from_secs;
        let mut m: Expiring<u32, u32> = Expiring::new(s(10), 10);
        m.entry(1, t0, || 1);
        m.remove(&1);
        m.entry(1, t0 + s(5), || 2);
        assert_eq!(
            m.get(&1, t0 + s(11)),
            Some(&mut 2),
            "created at 5 s: alive until 15 s"
        );
        assert!(m.get(&1, t0 + s(15)).is_none());
    }
}
