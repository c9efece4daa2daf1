//! What a stream receives: its header blocks and DATA from the server, handed to its entry of
//! the stream table, and taken from there by its attempt ([`Connection::poll_event`]).
//!
//! Why apart from `conn.rs`: receive-side flow control lives here with the data it counts.
//! The connection's window is given back as data arrives, a stream's as its attempt takes the
//! data, so a stream that is not read stops its own sender only; a stream sent more than its
//! window is reset with FLOW_CONTROL_ERROR (5.2, 6.9). The connection's window is enforced
//! too: what it gives back counts once the socket task has taken the WINDOW_UPDATE to write
//! (before that the server cannot know of it), and DATA past it is a connection error.

use std::task::{Poll, Waker};

use bytes::BytesMut;

use super::conn::{CONNECTION_WINDOW, Connection, STREAM_WINDOW};
use super::frame::{self, Fault};
use super::headers::Block;
use super::stream::Event;

impl Connection {
    /// DATA (6.1): within the connection's window, whatever its stream (6.9.1).
    #[inline]
    pub(super) fn data(
        &mut self,
        id: u32,
        end_stream: bool,
        data: BytesMut,
        flow: u32,
    ) -> Result<(), Fault> {
        self.recv_window -= i64::from(flow);
        if self.recv_window < 0 {
            return Err(Fault::flow_control("DATA past the connection's window"));
        }
        self.unacked += flow;
        if self.unacked >= CONNECTION_WINDOW / 2 {
            let n = std::mem::take(&mut self.unacked);
            frame::window_update(&mut self.out, 0, n);
            self.granted += n;
        }
        let code = match self.streams.get_mut(&id) {
            // Before the response headers (8.1).
            Some(st) if st.tail.is_none() && !st.got_head => frame::PROTOCOL_ERROR,
            Some(st) if st.tail.is_none() => {
                st.held += flow;
                st.returnable += flow - data.len() as u32;
                if st.held > STREAM_WINDOW {
                    frame::FLOW_CONTROL_ERROR
                } else {
                    // The first bytes are kept as they came (a view of the read buffer,
                    // no copy); more are appended to them.
                    if st.data.is_empty() {
                        st.data = data;
                    } else {
                        st.data.extend_from_slice(&data);
                    }
                    if end_stream {
                        self.end_stream(id, Event::End);
                    } else {
                        st.wake();
                    }
                    return Ok(());
                }
            }
            _ => return Ok(()),
        };
        self.reset(id, code);
        Ok(())
    }

    /// HEADERS (6.2): a header block starts, and may end here.
    #[inline]
    pub(super) fn headers(
        &mut self,
        id: u32,
        end_stream: bool,
        end_headers: bool,
        fragment: BytesMut,
    ) -> Result<(), Fault> {
        let block = Block {
            id,
            end_stream,
            fragment,
        };
        if end_headers {
            self.header_block(block)
        } else {
            self.block = Some(block);
            Ok(())
        }
    }

    /// CONTINUATION (6.10): a header block goes on, and may end here.
    pub(super) fn continuation(
        &mut self,
        id: u32,
        end_headers: bool,
        fragment: &[u8],
    ) -> Result<(), Fault> {
        let Some(block) = self.block.as_mut().filter(|b| b.id == id) else {
            return Err(Fault::protocol("CONTINUATION outside a header block"));
        };
        block.extend(fragment)?;
        if end_headers {
            let block = self.block.take().expect("checked above");
            self.header_block(block)?;
        }
        Ok(())
    }

    /// A whole header block: decoded whichever stream it is for (the decoder's table must
    /// follow every block), then given to its stream: the response head, informational
    /// (skipped), or the trailers.
    fn header_block(&mut self, block: Block) -> Result<(), Fault> {
        self.decoder.decode(&block.fragment)?;
        let got_head = match self.streams.get(&block.id) {
            Some(st) if st.tail.is_none() => st.got_head,
            _ => return Ok(()),
        };
        if !self.decoder.within_limit() {
            self.reset(block.id, frame::PROTOCOL_ERROR);
            return Ok(());
        }
        if got_head {
            if block.end_stream {
                let trailers = self.decoder.block();
                self.end_stream(block.id, Event::Trailers(trailers));
            } else {
                // A second header block must end the stream (8.1).
                self.reset(block.id, frame::PROTOCOL_ERROR);
            }
            return Ok(());
        }
        if self.decoder.informational() && !block.end_stream {
            return Ok(()); // informational (8.1)
        }
        let head = self.decoder.block();
        let st = self.streams.get_mut(&block.id).expect("looked up above");
        st.got_head = true;
        st.head = Some(head);
        if block.end_stream {
            self.end_stream(block.id, Event::End);
        } else {
            st.wake();
        }
        Ok(())
    }

    /// The next event of stream `id`, or `Pending` with `waker` kept to be woken when there
    /// is one. Taking data gives its window back once half a window is due; taking the end
    /// takes the stream out of the table. A stream not in the table has ended.
    #[inline]
    pub fn poll_event(&mut self, id: u32, waker: &Waker) -> Poll<Event> {
        let Some(st) = self.streams.get_mut(&id) else {
            return Poll::Ready(Event::Broken("the stream has ended".into()));
        };
        if let Some(head) = st.head.take() {
            return Poll::Ready(Event::Head(head));
        }
        if !st.data.is_empty() {
            // All of it, the buffer moved out (splitting it would allocate its sharing).
            let data = std::mem::take(&mut st.data);
            st.returnable += data.len() as u32;
            if st.returnable >= STREAM_WINDOW / 2 && st.tail.is_none() {
                let n = std::mem::take(&mut st.returnable);
                st.held -= n;
                frame::window_update(&mut self.out, id, n);
            }
            return Poll::Ready(Event::Data(data));
        }
        if let Some(tail) = st.tail.take() {
            self.streams.remove(&id);
            return Poll::Ready(tail);
        }
        if !st.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            st.waker = Some(waker.clone());
        }
        Poll::Pending
    }
}
