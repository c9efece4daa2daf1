//! [`Stack`]: a strategy stack with its type erased, what the driver and the layers above a
//! boxed stack call.
//!
//! Why not tower's `BoxCloneService`: it boxes every future its service returns, and every
//! layer here already answers with a boxed future ([`BoxFuture`], `call::call_service!`), so
//! each erased layer of a stack cost one more allocation and one more copy of the future per
//! call (three per call in the plainest stack: docs/PERFORMANCE.md, "Client CPU per call").
//! [`boxed`] keeps a future that is already a [`BoxFuture`] as it is and boxes any other.

use std::any::Any;
use std::future::Future;
use std::task::{Context, Poll};

use tower::Service;

use crate::call::{BoxFuture, Call, Failure, Outcome, Reply};

/// A strategy stack with its type erased: cloned and called like the service it wraps.
pub struct Stack(Box<dyn Erased>);

/// What a [`Stack`] needs of the service it wraps.
trait Erased: Send {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Failure>>;
    fn call(&mut self, call: Call) -> BoxFuture<Outcome>;
    fn clone_box(&self) -> Box<dyn Erased>;
}

impl<S> Erased for S
where
    S: Service<Call, Response = Reply, Error = Failure> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        Service::poll_ready(self, cx)
    }

    fn call(&mut self, call: Call) -> BoxFuture<Outcome> {
        boxed(Service::call(self, call))
    }

    fn clone_box(&self) -> Box<dyn Erased> {
        Box::new(self.clone())
    }
}

impl Stack {
    /// `service`, its type erased.
    pub fn new<S>(service: S) -> Self
    where
        S: Service<Call, Response = Reply, Error = Failure> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        Self(Box::new(service))
    }
}

impl Clone for Stack {
    fn clone(&self) -> Self {
        Self(self.0.clone_box())
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").finish_non_exhaustive()
    }
}

impl Service<Call> for Stack {
    type Response = Reply;
    type Error = Failure;
    type Future = BoxFuture<Outcome>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> BoxFuture<Outcome> {
        self.0.call(call)
    }
}

/// `future` as a [`BoxFuture`]: as it is if it is one already (no second box), boxed
/// otherwise. The check is on the type, decided when the function is compiled for it.
pub fn boxed<F>(future: F) -> BoxFuture<Outcome>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let mut slot = Some(future);
    if let Some(already) = (&mut slot as &mut dyn Any).downcast_mut::<Option<BoxFuture<Outcome>>>()
        && let Some(future) = already.take()
    {
        return future;
    }
    match slot {
        Some(future) => Box::pin(future),
        // Taken only above, where it returned.
        None => Box::pin(std::future::ready(Err(Failure::local(
            tonic::Code::Internal,
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A boxed future keeps its box (the same allocation); any other future is boxed; both
    /// answer what they would have.
    #[tokio::test]
    async fn a_boxed_future_is_not_boxed_again() {
        let reply = Reply {
            backend_attempt: 3,
            messages: 0,
            fallback: false,
        };
        let inner: BoxFuture<Outcome> = Box::pin(std::future::ready(Ok(reply.clone())));
        let address =
            std::ptr::from_ref::<dyn Future<Output = Outcome> + Send>(&*inner).cast::<u8>();
        let kept = boxed(inner);
        let kept_address =
            std::ptr::from_ref::<dyn Future<Output = Outcome> + Send>(&*kept).cast::<u8>();
        assert_eq!(address, kept_address, "the same box");
        assert_eq!(kept.await, Ok(reply.clone()));
        let other = boxed(async move { Ok(reply.clone()) });
        assert_eq!(other.await.unwrap().backend_attempt, 3);
    }

    /// A stack clones into a stack that calls the same service.
    #[tokio::test]
    async fn a_stack_clones_and_calls_its_service() {
        use tower::ServiceExt;
        let service = tower::service_fn(|call: Call| async move {
            Ok::<_, Failure>(Reply {
                backend_attempt: call.ordinal,
                messages: 0,
                fallback: false,
            })
        });
        let stack = Stack::new(service);
        let now = crate::clock::Clock::Tokio.now();
        let call = Call {
            id: 1,
            intended: now,
            deadline: now,
            previous_attempts: 0,
            ordinal: 0,
            kind: crate::call::AttemptKind::Original,
            warmup: false,
            payload_bytes: 0,
            method: crate::profile::Method::Unary,
            idempotency_key: false,
            sent_deadline: None,
            meter: std::sync::Arc::default(),
            commit: None,
            transparent: crate::profile::flavor::Transparent::A6,
        };
        let reply = stack.clone().oneshot(call).await.unwrap();
        assert_eq!(reply.backend_attempt, 0);
    }
}
