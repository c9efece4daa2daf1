//! Client-side round-robin over replicas: each attempt goes to the next replica in turn.
//!
//! This is the load balancing of a gRPC channel with the `round_robin` policy: it is what lets
//! a retry or a hedge land on a healthy replica when one of them is slow or failing. A hedge
//! skips the replicas its call has already used, when any is left (gRFC A6: "hedged requests
//! should be sent to distinct backends, if possible").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tower::Service;

use crate::call::BoxFuture;
use crate::call::{AttemptKind, Call, Failure, Outcome, Reply, call_service};

/// Round-robin over one transport per replica.
#[derive(Clone)]
pub struct RoundRobin<T> {
    /// Shared, so that cloning the stack for a call clones no list.
    replicas: Arc<[T]>,
    next: Arc<AtomicUsize>,
}

impl<T> RoundRobin<T> {
    /// Round-robin over `replicas` (at least one), starting with the first.
    pub fn new(replicas: Vec<T>) -> Self {
        assert!(
            !replicas.is_empty(),
            "round-robin needs at least one replica"
        );
        Self {
            replicas: replicas.into(),
            next: Arc::default(),
        }
    }
}

// The replica transports are always ready (they wait inside their calls).
call_service! {
    impl<T> for RoundRobin<T>, ready = always,
    where
        T: Service<Call, Response = Reply, Error = Failure, Future = BoxFuture<Outcome>> + Clone,
}

impl<T> RoundRobin<T>
where
    T: Service<Call, Response = Reply, Error = Failure, Future = BoxFuture<Outcome>> + Clone,
{
    /// Its work on one call (its `Service::call`).
    fn serve(&mut self, call: Call) -> BoxFuture<Outcome> {
        let n = self.replicas.len();
        let mut i = self.next.fetch_add(1, Ordering::Relaxed) % n;
        if call.kind == AttemptKind::Hedge {
            // gRFC A6: hedges go to backends the call has not used, if there are any.
            let tried = call.meter.replicas_tried();
            if let Some(free) = (0..n)
                .map(|k| (i + k) % n)
                .find(|r| tried & (1 << (r % 64)) == 0)
            {
                i = free;
            }
        }
        call.meter.tried_replica(i);
        self.replicas[i].clone().call(call)
    }
}
