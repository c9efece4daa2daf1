//! The socket task: one per connection, it reads the server's bytes into the state machine and
//! writes the frames the state machine and the attempts queued.
//!
//! Why one task doing both: each read takes every byte there is and each write every frame
//! queued at the time, so a busy connection costs a few system calls for many frames, and
//! nothing is handed from task to task per frame (docs/PERFORMANCE.md measured h2's connection
//! task, which this replaced, at 46% of the client's CPU).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::conn::Connection;
use super::frame::{self, ACK, Fault, Head, MAX_FRAME, SETTINGS};
use super::handle::{Handle, Shared};
use crate::transport::connection::Io;

/// Opens an HTTP/2 connection over `io`: sends the preface and settings, and waits for the
/// server's settings. The connection's task is the returned [`Driver`], to be polled until
/// it ends.
pub async fn handshake(io: Box<dyn Io>) -> Result<(Handle, Driver), String> {
    handshake_from(io, 1).await
}

/// [`handshake`], the first stream being `first_id`.
pub(super) async fn handshake_from(
    mut io: Box<dyn Io>,
    first_id: u32,
) -> Result<(Handle, Driver), String> {
    let mut conn = Connection::new(first_id);
    let mut hello = Vec::new();
    conn.take_output(&mut hello);
    io.write_all(&hello).await.map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())?;

    let mut read = BytesMut::with_capacity(64 * 1024);
    while !conn.settled() {
        let n = poll_fn(|cx| tokio_util::io::poll_read_buf(Pin::new(&mut io), cx, &mut read))
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection before its SETTINGS".into());
        }
        // A TLS record (alert or handshake, version 3.x): a TLS server read our preface.
        if crate::transport::tls::is_tls_record(&read) {
            return Err(crate::transport::tls::ANSWERED_WITH_TLS.into());
        }
        // Checked on the header alone: the reply of a server that is not HTTP/2 may be
        // shorter than the length its first bytes read as.
        if Head::parse(&read).is_some_and(|h| h.kind != SETTINGS || h.flags & ACK != 0) {
            return Err("the server's first frame was not SETTINGS (not an HTTP/2 server?)".into());
        }
        // The server's SETTINGS (and whatever came with it) apply before the first stream.
        conn.receive(&mut read).map_err(|f| f.why)?;
    }
    let shared = Shared::new(conn);
    {
        let mut s = shared.lock();
        shared.settle(&mut s);
    }
    let driver = Driver {
        io,
        shared: Arc::clone(&shared),
        read,
        writing: Vec::with_capacity(64 * 1024),
        written: 0,
        flush: false,
    };
    Ok((Handle { shared }, driver))
}

/// The connection's task: reads and handles the server's frames, writes the frames queued by
/// the streams. Ends when the connection breaks or closes, or when it is going away (GOAWAY,
/// stream ids used up) and its last stream has ended. Dropping it closes the connection and
/// fails the streams still going.
pub struct Driver {
    io: Box<dyn Io>,
    shared: Arc<Shared>,
    read: BytesMut,
    /// The frames being written, taken from the connection's output buffer.
    writing: Vec<u8>,
    /// How much of `writing` the socket has taken.
    written: usize,
    /// Bytes were written and not yet flushed (for transports that buffer).
    flush: bool,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let read = this.poll_read(cx);
            let wrote = this.poll_write(cx);
            let progress = match (read, wrote) {
                (Err(fault), _) | (_, Err(fault)) => {
                    this.fail(cx, fault);
                    return Poll::Ready(());
                }
                (Ok(r), Ok(w)) => r || w,
            };
            {
                let s = this.shared.lock();
                let drained = !s.conn.has_output() && this.writing.is_empty() && !this.flush;
                if s.conn.finished() && drained {
                    drop(s);
                    this.shared.end("the connection was closed (going away)");
                    return Poll::Ready(());
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shared.end("the connection was closed");
    }
}

impl Driver {
    /// Ends the connection on `fault`: every stream still going fails, and a GOAWAY with its
    /// code (RFC 9113 5.4.1) goes out if the socket takes it at once, after the rest of the
    /// frames being written (never inside one: the server would read it as that frame's bytes).
    fn fail(&mut self, cx: &mut Context<'_>, fault: Fault) {
        let mut goaway = Vec::new();
        {
            let mut s = self.shared.lock();
            s.conn.fail(&fault);
            s.conn.take_output(&mut goaway);
            self.shared.settle(&mut s);
        }
        if goaway.is_empty() {
            return;
        }
        self.writing.extend_from_slice(&goaway);
        while self.written < self.writing.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.writing[self.written..]) {
                Poll::Ready(Ok(n)) if n > 0 => self.written += n,
                _ => return,
            }
        }
        let _ = Pin::new(&mut self.io).poll_flush(cx);
    }

    /// Reads what is there and handles every whole frame; `true` if anything was read.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Result<bool, Fault> {
        if self.read.capacity() - self.read.len() < MAX_FRAME + frame::HEAD {
            self.read.reserve(64 * 1024);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read) {
            Poll::Pending => Ok(false),
            Poll::Ready(Ok(0)) => Err(Fault::io("the server closed the connection".into())),
            Poll::Ready(Ok(_)) => {
                let mut s = self.shared.lock();
                let received = s.conn.receive(&mut self.read);
                self.shared.settle(&mut s);
                received.map(|()| true)
            }
            Poll::Ready(Err(e)) => Err(Fault::io(format!("connection error: {e}"))),
        }
    }

    /// Writes queued frames until the socket takes no more or none are left, then flushes;
    /// `true` if anything was written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<bool, Fault> {
        let mut wrote = false;
        loop {
            if self.written == self.writing.len() {
                self.writing.clear();
                self.written = 0;
                let mut s = self.shared.lock();
                if !s.conn.has_output() {
                    if !s.writer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        s.writer = Some(cx.waker().clone());
                    }
                    drop(s);
                    // A transport that buffers sends what it holds (TCP does not buffer).
                    if self.flush {
                        match Pin::new(&mut self.io).poll_flush(cx) {
                            Poll::Ready(Ok(())) => self.flush = false,
                            Poll::Ready(Err(e)) => {
                                return Err(Fault::io(format!("connection error: {e}")));
                            }
                            Poll::Pending => {}
                        }
                    }
                    return Ok(wrote);
                }
                s.conn.take_output(&mut self.writing);
            }
            match Pin::new(&mut self.io).poll_write(cx, &self.writing[self.written..]) {
                Poll::Pending => return Ok(wrote),
                Poll::Ready(Ok(0)) => {
                    return Err(Fault::io("the connection would take no more bytes".into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.flush = true;
                    wrote = true;
                }
                Poll::Ready(Err(e)) => return Err(Fault::io(format!("connection error: {e}"))),
            }
        }
    }
}
