//! The state machine driven by bytes, with no socket: the server's frames go in, the stream
//! events and the client's frames come out.

use std::task::{Poll, Waker};

use bytes::{Bytes, BytesMut};

use super::super::frame::{
    CONTINUATION, DATA, END_HEADERS, END_STREAM, FLOW_CONTROL_ERROR, Fault, GOAWAY, HEADERS, Head,
    MAX_FRAME, MAX_WINDOW, PROTOCOL_ERROR, REFUSED_STREAM, RST_STREAM, SETTINGS, WINDOW_UPDATE,
};
use super::super::{CONNECTION_WINDOW, Connection, Event, Processed};
use super::{ClientWire, GRPC_OK, STATUS_200, frame, request};

/// A connection past its handshake, and everything it wrote, checked.
pub(super) struct Machine {
    pub conn: Connection,
    /// Server bytes not yet handled (a frame not yet whole).
    read: BytesMut,
    pub wire: ClientWire,
}

impl Machine {
    /// A connection whose server sent `settings` (identifier, value) as its first SETTINGS.
    pub fn with_settings(settings: &[(u16, u32)]) -> Self {
        let mut m = Self {
            conn: Connection::new(1),
            read: BytesMut::new(),
            wire: ClientWire::new(),
        };
        m.flush();
        let payload: Vec<u8> = settings
            .iter()
            .flat_map(|(k, v)| k.to_be_bytes().into_iter().chain(v.to_be_bytes()))
            .collect();
        m.receive(&frame(SETTINGS, 0, 0, &payload)).unwrap();
        assert!(m.conn.settled());
        m.flush();
        m
    }

    pub fn new() -> Self {
        Self::with_settings(&[])
    }

    /// The server's `bytes` arrive.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        self.read.extend_from_slice(bytes);
        self.conn.receive(&mut self.read)
    }

    /// The frames the client wrote since the last call (the socket task took them).
    pub fn flush(&mut self) -> Vec<(Head, Vec<u8>)> {
        let mut out = Vec::new();
        self.conn.take_output(&mut out);
        let before = self.wire.frames.len();
        self.wire.feed(&out).unwrap();
        self.wire.frames[before..].to_vec()
    }

    /// Opens a stream with `body`.
    pub fn open(&mut self, body: &'static [u8]) -> u32 {
        self.conn
            .open(request(b"/x", Bytes::from_static(body)))
            .unwrap()
    }

    /// The stream's events so far, up to its end if it has ended.
    pub fn events(&mut self, id: u32) -> Vec<Event> {
        let mut events = Vec::new();
        while let Poll::Ready(event) = self.conn.poll_event(id, Waker::noop()) {
            let end = event.ends();
            events.push(event);
            if end {
                break;
            }
        }
        events
    }
}

fn lost(event: &Event) -> Option<Processed> {
    match event {
        Event::Broken(lost) => Some(lost.processed),
        _ => None,
    }
}

/// A response split over HEADERS and CONTINUATION, DATA in two frames and the trailers comes
/// up as head, data and trailers; the client wrote its request as HEADERS then DATA.
#[test]
fn a_response_comes_up_as_head_data_and_trailers() {
    let mut m = Machine::new();
    let id = m.open(b"hello");
    let sent: Vec<u8> = m.flush().iter().map(|(h, _)| h.kind).collect();
    assert_eq!(sent, [HEADERS, DATA]);
    assert_eq!(m.wire.blocks[0].1[2], (b":path".to_vec(), b"/x".to_vec()));
    let mut server = frame(HEADERS, 0, id, &[]);
    server.extend(frame(CONTINUATION, END_HEADERS, id, STATUS_200));
    server.extend(frame(DATA, 0, id, b"ab"));
    server.extend(frame(DATA, 0, id, b"c"));
    server.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, GRPC_OK));
    // Byte by byte: frames are handled once whole, whatever the reads.
    for byte in server {
        m.receive(&[byte]).unwrap();
    }
    let events = m.events(id);
    let [
        Event::Head(head),
        Event::Data(data),
        Event::Trailers(trailers),
    ] = &events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(head.get(b":status"), Some(&b"200"[..]));
    assert_eq!(&data[..], b"abc");
    assert_eq!(trailers.get(b"grpc-status"), Some(&b"0"[..]));
    assert!(
        m.conn.streams.is_empty(),
        "the stream left the table with its end"
    );
    assert!(m.flush().is_empty());
}

/// RFC 9113 8.7 and 6.8: a stream refused with REFUSED_STREAM before any response, or above
/// a GOAWAY's last stream id, was not processed; a REFUSED_STREAM after the response head is
/// a reset like any other, and a stream lost with its connection may have been processed.
#[test]
fn refused_and_goaway_streams_are_told_apart_from_lost_ones() {
    let mut m = Machine::new();
    let ids: Vec<u32> = (0..4).map(|_| m.open(b"x")).collect();
    m.flush();
    let refused = REFUSED_STREAM.to_be_bytes();
    m.receive(&frame(RST_STREAM, 0, ids[0], &refused)).unwrap();
    let mut answered = frame(HEADERS, END_HEADERS, ids[1], STATUS_200);
    answered.extend(frame(RST_STREAM, 0, ids[1], &refused));
    m.receive(&answered).unwrap();
    let mut goaway = ids[2].to_be_bytes().to_vec();
    goaway.extend(0u32.to_be_bytes());
    m.receive(&frame(GOAWAY, 0, 0, &goaway)).unwrap();
    assert!(
        m.conn.refusal().is_some(),
        "no stream is opened after GOAWAY"
    );
    let first = m.events(ids[0]);
    assert_eq!(lost(&first[0]), Some(Processed::Refused), "{first:?}");
    let second = m.events(ids[1]);
    assert!(matches!(
        second[..],
        [Event::Head(_), Event::Reset(REFUSED_STREAM)]
    ));
    let fourth = m.events(ids[3]);
    assert_eq!(lost(&fourth[0]), Some(Processed::GoneAway), "{fourth:?}");
    assert!(matches!(&fourth[0], Event::Broken(lost) if lost.contains("GOAWAY")));
    assert!(
        m.events(ids[2]).is_empty(),
        "at or below the last id, the stream runs on"
    );
    m.conn.close("the server closed the connection");
    let third = m.events(ids[2]);
    assert_eq!(lost(&third[0]), Some(Processed::Maybe), "{third:?}");
    assert!(m.conn.finished());
}

/// A stream whose HEADERS were never handed to the socket never left the client: when the
/// connection ends (or a GOAWAY comes) it is not processed, and said to be never sent, apart
/// from the streams already written, which may have been.
#[test]
fn streams_never_written_are_told_apart_from_streams_sent() {
    let mut m = Machine::new();
    let written = m.open(b"x");
    m.flush();
    let waiting = m.open(b"y");
    m.conn.close("the server closed the connection");
    assert_eq!(lost(&m.events(written)[0]), Some(Processed::Maybe));
    let unsent = m.events(waiting);
    assert_eq!(lost(&unsent[0]), Some(Processed::Unsent), "{unsent:?}");
    assert!(matches!(&unsent[0], Event::Broken(l) if l.contains("before the call was sent")));

    // Above a GOAWAY's last id: gone away if written, never sent if still waiting.
    let mut m = Machine::new();
    let ids: Vec<u32> = (0..2).map(|_| m.open(b"x")).collect();
    m.flush();
    let late = m.open(b"z");
    let mut goaway = ids[0].to_be_bytes().to_vec();
    goaway.extend(0u32.to_be_bytes());
    m.receive(&frame(GOAWAY, 0, 0, &goaway)).unwrap();
    assert_eq!(lost(&m.events(ids[1])[0]), Some(Processed::GoneAway));
    assert_eq!(lost(&m.events(late)[0]), Some(Processed::Unsent));
    assert!(m.events(ids[0]).is_empty(), "at the last id it runs on");
    for p in [Processed::Unsent, Processed::Refused, Processed::GoneAway] {
        assert!(p.not_processed());
    }
    assert!(!Processed::Maybe.not_processed());
}

/// RFC 9113 6.9: a request larger than the windows goes out as WINDOW_UPDATEs open them,
/// never past either window, and a SETTINGS_INITIAL_WINDOW_SIZE change applies to open
/// streams.
#[test]
fn a_request_goes_out_as_the_windows_open() {
    let mut m = Machine::new();
    static BODY: [u8; 100_000] = [7; 100_000];
    let id = m.open(&BODY);
    let data = |frames: &[(Head, Vec<u8>)]| -> usize {
        frames
            .iter()
            .filter(|(h, _)| h.kind == DATA)
            .map(|(h, _)| h.len)
            .sum()
    };
    assert_eq!(data(&m.flush()), 65_535);
    m.receive(&frame(WINDOW_UPDATE, 0, 0, &10_000u32.to_be_bytes()))
        .unwrap();
    assert_eq!(data(&m.flush()), 0, "the stream's window is still closed");
    m.receive(&frame(WINDOW_UPDATE, 0, id, &50_000u32.to_be_bytes()))
        .unwrap();
    assert_eq!(
        data(&m.flush()),
        10_000,
        "the connection's window bounds it"
    );
    let raise = [0, 4, 0, 1, 0, 0]; // SETTINGS_INITIAL_WINDOW_SIZE 65,536: one more byte
    m.receive(&frame(SETTINGS, 0, 0, &raise)).unwrap();
    m.receive(&frame(WINDOW_UPDATE, 0, 0, &100_000u32.to_be_bytes()))
        .unwrap();
    let last = m.flush();
    assert_eq!(data(&last), 100_000 - 75_535, "the rest");
    assert!(last.iter().any(|(h, _)| h.flags & END_STREAM != 0));
}

/// RFC 9113 6.5.2: "A client MUST treat receipt of a SETTINGS frame with
/// SETTINGS_ENABLE_PUSH set to 1 as a connection error of type PROTOCOL_ERROR" (and any
/// value other than 0 or 1 is one too); 0 is accepted.
#[test]
fn enable_push_from_a_server_is_a_protocol_error() {
    for value in [1u32, 2] {
        let mut m = Machine::new();
        m.receive(&frame(SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 0]))
            .unwrap();
        let mut push = vec![0, 2];
        push.extend(value.to_be_bytes());
        let fault = m.receive(&frame(SETTINGS, 0, 0, &push)).unwrap_err();
        assert_eq!(fault.code, Some(PROTOCOL_ERROR), "{}", fault.why);
    }
}

/// RFC 9113 6.9.2: "An endpoint MUST treat a change to SETTINGS_INITIAL_WINDOW_SIZE that
/// causes any flow-control window to exceed the maximum size as a connection error of type
/// FLOW_CONTROL_ERROR." A stream's window opened to 2^31-1 by WINDOW_UPDATE may be lowered by
/// a new initial size, not raised.
#[test]
fn an_initial_window_size_that_overflows_an_open_stream_is_a_flow_control_error() {
    let mut m = Machine::new();
    let id = m.open(b"");
    let to_max = (MAX_WINDOW - 65_535) as u32;
    m.receive(&frame(WINDOW_UPDATE, 0, id, &to_max.to_be_bytes()))
        .unwrap();
    let initial = |value: u32| {
        let mut payload = vec![0, 4];
        payload.extend(value.to_be_bytes());
        frame(SETTINGS, 0, 0, &payload)
    };
    m.receive(&initial(65_534)).unwrap();
    m.receive(&initial(65_535)).unwrap();
    let fault = m.receive(&initial(65_536)).unwrap_err();
    assert_eq!(fault.code, Some(FLOW_CONTROL_ERROR), "{}", fault.why);
}

/// RFC 9113 6.9.1: "A sender MUST NOT send a flow-controlled frame with a length that exceeds
/// the space available in either of the flow-control windows advertised by the receiver." The
/// connection's window is 16 MiB, given back in WINDOW_UPDATEs as data arrives; a server
/// that sends past it before the client has written any WINDOW_UPDATE gets a connection error
/// FLOW_CONTROL_ERROR. Once the client has written its WINDOW_UPDATEs, the server may go on.
#[test]
fn data_past_the_connection_window_is_a_flow_control_error() {
    let chunk = frame(DATA, 0, 1, &[0; MAX_FRAME]);
    let window = CONNECTION_WINDOW as usize / MAX_FRAME;
    for written in [false, true] {
        let mut m = Machine::new();
        let id = m.open(b"x");
        m.receive(&frame(HEADERS, END_HEADERS, id, STATUS_200))
            .unwrap();
        // The stream is reset at 2 MiB (its attempt takes nothing); the connection counts on.
        m.receive(&chunk.repeat(window)).unwrap();
        if written {
            let updates = m.flush();
            assert!(
                updates
                    .iter()
                    .any(|(h, _)| h.kind == WINDOW_UPDATE && h.id == 0)
            );
            m.receive(&chunk.repeat(window)).unwrap();
        } else {
            let fault = m.receive(&frame(DATA, 0, id, b"x")).unwrap_err();
            assert_eq!(fault.code, Some(FLOW_CONTROL_ERROR), "{}", fault.why);
        }
    }
}
