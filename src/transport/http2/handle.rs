//! The attempts' side of a connection: [`Handle`] opens streams, behind the server's limit of
//! concurrent streams; [`Exchange`] is one stream, polled for its events, reset with
//! RST_STREAM(CANCEL) when dropped before its end.
//!
//! Why apart from the state machine: this is where tasks wait (for a stream slot, for an
//! event) and where the socket task is woken to write. An attempt encodes its frames into the
//! connection's output buffer itself, under the connection's one lock, and only wakes the
//! socket task; nothing is handed from task to task per frame.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::conn::Connection;
use super::send::Request;
use super::stream::Event;

/// A handle on one connection, to open streams on.
#[derive(Clone)]
pub struct Handle {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// What the attempts and the socket task share.
pub(super) struct Shared {
    /// The connection, and what goes with it under the lock.
    state: Mutex<Locked>,
    /// One permit per stream the server allows at once.
    slots: Arc<Semaphore>,
    /// Told when no stream is opened any more, so that another connection can be opened
    /// while this one finishes its streams.
    going_away: Notify,
}

/// The connection's state and the bookkeeping of the tasks around it.
pub(super) struct Locked {
    /// The state machine.
    pub conn: Connection,
    /// The socket task, when it waits for frames to write.
    pub writer: Option<Waker>,
    /// The permits the semaphore stands for: the server's limit of streams, as applied.
    limit: usize,
    /// Permits still to take out of use after the server lowered its limit of streams while
    /// more were open than the new limit.
    owed: usize,
    /// The semaphore has been closed and the keeper told that no stream is opened any more.
    told: bool,
}

/// Permits for a limit of `streams` (all of them where tokio's semaphore allows).
#[inline]
fn permits(streams: u32) -> usize {
    (streams as usize).min(Semaphore::MAX_PERMITS)
}

impl Locked {
    /// Wakes the socket task if frames wait to be written.
    #[inline]
    pub fn wake_writer(&mut self) {
        if self.conn.has_output()
            && let Some(w) = self.writer.take()
        {
            w.wake();
        }
    }
}

impl Shared {
    /// A connection's shared state, for `conn`.
    pub fn new(conn: Connection) -> Arc<Self> {
        let limit = permits(conn.max_streams());
        Arc::new(Self {
            state: Mutex::new(Locked {
                conn,
                writer: None,
                limit,
                owed: 0,
                told: false,
            }),
            slots: Arc::new(Semaphore::new(limit)),
            going_away: Notify::new(),
        })
    }

    /// The lock (a panic elsewhere does not poison it for the others).
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, Locked> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies what the state machine decided to the tasks around it: the server's limit of
    /// streams to the semaphore, and the end of opening (GOAWAY, stream ids used up, closed):
    /// streams waiting for a slot fail and the connection's keeper is told.
    #[inline]
    pub fn settle(&self, s: &mut Locked) {
        let limit = permits(s.conn.max_streams());
        if limit > s.limit {
            let repaid = s.owed.min(limit - s.limit);
            s.owed -= repaid;
            self.slots.add_permits(limit - s.limit - repaid);
        } else if limit < s.limit {
            // Streams already open past a lowered limit run on (5.1.2); their permits are
            // taken out of use as they end.
            let forgotten = self.slots.forget_permits(s.limit - limit);
            s.owed += s.limit - limit - forgotten;
        }
        s.limit = limit;
        if !s.told && s.conn.refusal().is_some() {
            s.told = true;
            self.slots.close();
            self.going_away.notify_one();
        }
    }

    /// The connection has ended, because of `why`: every stream still going fails, and so do
    /// streams waiting for a slot; the keeper is told.
    pub fn end(&self, why: &str) {
        let mut s = self.lock();
        s.conn.close(why);
        self.settle(&mut s);
    }

    /// A stream left the table: its permit goes back, or out of use if owed.
    #[inline]
    fn release(s: &mut Locked, permit: Option<OwnedSemaphorePermit>) {
        if let Some(permit) = permit
            && s.owed > 0
        {
            s.owed -= 1;
            permit.forget();
        }
    }
}

impl Handle {
    /// Opens a stream and queues its request: waits while the server's limit of concurrent
    /// streams is reached; fails when the connection has ended or is going away.
    pub async fn open(&self, request: Request<'_>) -> Result<Exchange, Arc<str>> {
        self.open_telling(request, || {}).await
    }

    /// [`Handle::open`], calling `waiting` once if the stream has to wait for a slot under the
    /// server's limit of concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS), as the wait
    /// begins: a wait that ends in a cancellation (a deadline, a hedge that won) is told too.
    pub async fn open_telling(
        &self,
        request: Request<'_>,
        waiting: impl FnOnce(),
    ) -> Result<Exchange, Arc<str>> {
        // Taken at once when a slot is free (tokio's semaphore hands released permits to the
        // waiters first, so this never passes one), else waited for.
        let slots = &self.shared.slots;
        let permit = match Arc::clone(slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => {
                waiting();
                Arc::clone(slots)
                    .acquire_owned()
                    .await
                    .map_err(|_| self.ended())?
            }
            Err(TryAcquireError::Closed) => return Err(self.ended()),
        };
        let mut s = self.shared.lock();
        let id = s.conn.open(request)?;
        self.shared.settle(&mut s);
        s.wake_writer();
        Ok(Exchange {
            shared: Arc::clone(&self.shared),
            id,
            permit: Some(permit),
        })
    }

    fn ended(&self) -> Arc<str> {
        let refusal = self.shared.lock().conn.refusal().cloned();
        refusal.unwrap_or_else(|| "the connection was closed".into())
    }

    /// Whether new streams may still be opened on this connection (no GOAWAY, ids left, not
    /// closed).
    pub fn opens_streams(&self) -> bool {
        self.shared.lock().conn.refusal().is_none()
    }

    /// The streams not yet ended on this connection, and whether a slot is free under the
    /// server's limit of streams (else a new stream waits); `None` when it opens no more.
    pub fn open_streams(&self) -> Option<(usize, bool)> {
        let s = self.shared.lock();
        let free = self.shared.slots.available_permits() > 0;
        s.conn.refusal().is_none().then_some((s.conn.active, free))
    }

    /// Completes when no stream is opened on this connection any more (GOAWAY, stream ids
    /// used up, or closed): the time to open another.
    pub async fn going_away(&self) {
        self.shared.going_away.notified().await;
    }
}

/// One stream's exchange, from the attempt's side. Dropped before its end, it resets the
/// stream with CANCEL.
pub struct Exchange {
    shared: Arc<Shared>,
    id: u32,
    /// The stream's slot under the server's limit, until the stream leaves the table.
    permit: Option<OwnedSemaphorePermit>,
}

impl Exchange {
    /// The next thing that happened on the stream.
    pub async fn next(&mut self) -> Event {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`Exchange::next`], polled: `cx` is woken when there may be more.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        if self.permit.is_none() {
            return Poll::Ready(Event::Broken("the stream has ended".into()));
        }
        let mut s = self.shared.lock();
        let event = s.conn.poll_event(self.id, cx.waker());
        if let Poll::Ready(event) = &event {
            if event.ends() {
                Shared::release(&mut s, self.permit.take());
            } else {
                // Taking data may have given window back.
                s.wake_writer();
            }
        }
        event
    }
}

impl Exchange {
    /// The writer of this stream's request body, for a request opened with
    /// [`Request::end`] false.
    pub fn writer(&self) -> BodyWriter {
        BodyWriter {
            shared: Arc::clone(&self.shared),
            id: self.id,
        }
    }
}

/// Gives a stream's request body in pieces, each once the one before has been written within
/// the windows (so a stream holds at most one piece beyond them: HTTP/2 flow control reaches
/// the body's source).
pub struct BodyWriter {
    shared: Arc<Shared>,
    id: u32,
}

impl std::fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyWriter").field("id", &self.id).finish()
    }
}

impl BodyWriter {
    /// Waits until the stream takes more of its body, then gives it what `piece` holds (the
    /// body's last bytes when `end`), leaving `piece` empty: `false` if the stream has ended
    /// (or its body was complete) and takes nothing more. Cancel-safe: `piece` keeps its bytes
    /// until they are taken.
    pub async fn send(&self, piece: &mut Option<Bytes>, end: bool) -> bool {
        poll_fn(|cx| {
            let mut s = self.shared.lock();
            match s.conn.body_ready(self.id, cx.waker()) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(false) => Poll::Ready(false),
                Poll::Ready(true) => {
                    let data = piece.take().unwrap_or_default();
                    let taken = s.conn.push_body(self.id, data, end);
                    s.wake_writer();
                    Poll::Ready(taken)
                }
            }
        })
        .await
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if self.permit.is_none() {
            return;
        }
        let mut s = self.shared.lock();
        if s.conn.cancel(self.id) {
            s.wake_writer();
            Shared::release(&mut s, self.permit.take());
        }
    }
}
