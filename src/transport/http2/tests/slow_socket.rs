//! The socket task over a transport that takes writes a few bytes at a time, as a loaded TCP
//! socket does, so that a frame can be half-written when the connection fails.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

use super::super::driver::handshake_from;
use super::super::frame::{DATA, PROTOCOL_ERROR, SETTINGS, goaway as write_goaway};
use super::super::{Connection, Event};
use super::{ClientWire, frame, request};

/// What the client wrote, and how much more the socket takes.
#[derive(Default)]
struct Paced {
    written: Mutex<Vec<u8>>,
    /// Bytes the socket takes before it refuses (and parks the writer).
    budget: AtomicUsize,
    /// When set, every other write is refused, and the writer woken at once: as a socket
    /// whose buffer the kernel drains between two calls.
    alternate: std::sync::atomic::AtomicBool,
    refuse_next: std::sync::atomic::AtomicBool,
    parked: Mutex<Option<Waker>>,
}

impl Paced {
    /// Lets `bytes` more through and wakes the writer.
    fn allow(&self, bytes: usize) {
        self.budget.store(bytes, Ordering::SeqCst);
        if let Some(w) = self.parked.lock().unwrap().take() {
            w.wake();
        }
    }
}

/// A transport reading from a pipe and writing into [`Paced`].
struct Transport {
    read: DuplexStream,
    paced: Arc<Paced>,
}

impl AsyncRead for Transport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let p = &self.paced;
        let budget = p.budget.load(Ordering::SeqCst);
        if budget == 0 {
            *p.parked.lock().unwrap() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if p.alternate.load(Ordering::SeqCst) && p.refuse_next.swap(false, Ordering::SeqCst) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        p.refuse_next.store(true, Ordering::SeqCst);
        let n = buf.len().min(budget).min(7);
        p.budget.store(budget - n, Ordering::SeqCst);
        p.written.lock().unwrap().extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What the client means to write in the test below: its preface, the acknowledgement of
/// the server's (empty) SETTINGS, and the request.
fn intended(body: &Bytes) -> Vec<u8> {
    let mut conn = Connection::new(1);
    let mut all = Vec::new();
    conn.take_output(&mut all);
    conn.receive(&mut BytesMut::from(&frame(SETTINGS, 0, 0, &[])[..]))
        .unwrap();
    conn.open(request(b"/x", body.clone())).unwrap();
    let mut rest = Vec::new();
    conn.take_output(&mut rest);
    all.extend(rest);
    all
}

/// RFC 9113 5.4.1 and 4.1: a connection error is answered with a GOAWAY, but never inside a
/// frame half-written when the error came: the GOAWAY goes out after the frame's last byte, or
/// not at all. Here the server breaks the protocol while the socket has taken part of the
/// request's frames, and takes a few bytes again just as the error is handled.
#[tokio::test]
async fn a_goaway_is_never_written_inside_a_half_written_frame() {
    let body = Bytes::from(vec![0xab; 60_000]);
    let intended = intended(&body);
    let mut goaway = Vec::new();
    write_goaway(&mut goaway, PROTOCOL_ERROR);
    for takes_the_rest in [false, true] {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let paced = Arc::new(Paced::default());
        paced.allow(usize::MAX);
        server.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
        let io = Transport {
            read: client,
            paced: Arc::clone(&paced),
        };
        let (handle, driver) = handshake_from(Box::new(io), 1).await.unwrap();
        paced.budget.store(0, Ordering::SeqCst);
        paced.alternate.store(true, Ordering::SeqCst);
        tokio::spawn(driver);
        let mut exchange = handle.open(request(b"/x", body.clone())).await.unwrap();
        // The socket takes the acknowledgement and part of the request, then blocks.
        let hello = paced.written.lock().unwrap().len();
        paced.allow(200);
        while paced.written.lock().unwrap().len() < hello + 200 {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        if takes_the_rest {
            paced.alternate.store(false, Ordering::SeqCst);
        }
        paced.budget.store(usize::MAX, Ordering::SeqCst);
        // DATA on stream 0: a PROTOCOL_ERROR.
        server.write_all(&frame(DATA, 0, 0, b"x")).await.unwrap();
        assert!(matches!(exchange.next().await, Event::Broken(_)));
        let written = paced.written.lock().unwrap().clone();
        let (sent, goaway_sent) = match written.strip_suffix(&goaway[..]) {
            Some(before) => (before, true),
            None => (&written[..], false),
        };
        assert!(
            intended.starts_with(sent),
            "the client wrote bytes it did not mean to, at {} of {}: {:?}",
            sent.iter()
                .zip(&intended)
                .take_while(|(a, b)| a == b)
                .count(),
            sent.len(),
            &written[written.len().saturating_sub(24)..]
        );
        let mut wire = ClientWire::new();
        wire.feed(sent).unwrap();
        if goaway_sent {
            assert!(wire.whole(), "the GOAWAY follows a whole frame");
        }
        assert_eq!(
            goaway_sent, takes_the_rest,
            "a GOAWAY when the socket takes it"
        );
    }
}
