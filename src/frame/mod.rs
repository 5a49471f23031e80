//! The WebSocket wire format (RFC 6455 §5), both directions, at the bottom of the house.
//!
//! Server frames are unmasked, so one frame's bytes are valid on every socket: the hub
//! builds each room batch here once, header included, and shares the [`Bytes`]. Client
//! frames are masked; [`parse_head`] reads a frame head from the bytes received so far
//! and [`unmask`] decodes its payload in place. The session (`ws::session`) assembles
//! messages from frames; [`deflate`] compresses and inflates message payloads
//! (permessage-deflate, RFC 7692). The load generator (`bench`) uses the same code as a
//! client.

pub mod deflate;

use bytes::{BufMut, Bytes, BytesMut};

/// Frame opcodes (RFC 6455 §5.2).
pub mod opcode {
    /// A continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// A UTF-8 text message (the protocol's only data frame).
    pub const TEXT: u8 = 0x1;
    /// A binary message (refused with 1003).
    pub const BINARY: u8 = 0x2;
    /// A close frame: optional code and reason.
    pub const CLOSE: u8 = 0x8;
    /// A ping; the peer answers with a pong carrying the same payload.
    pub const PING: u8 = 0x9;
    /// A pong.
    pub const PONG: u8 = 0xA;
}

/// Longest payload of a control frame (ping, pong, close).
pub const MAX_CONTROL: usize = 125;

/// Longest frame head: 2 bytes, 8 of extended length, 4 of mask.
pub const MAX_HEAD: usize = 14;

/// Why a frame cannot be read: each maps to a close code (see `hub::conn::close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Broken framing (1002): reserved bits, unknown opcodes, a client frame without a
    /// mask, a fragmented or oversized control frame, a continuation out of place.
    Protocol(&'static str),
    /// A frame or message over the size cap (1009).
    TooBig,
    /// Text that is not UTF-8, or compressed data that does not inflate (1007).
    Payload(&'static str),
    /// A kind of message the protocol does not take: binary (1003).
    Unsupported,
}

/// A parsed frame head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The last frame of its message.
    pub fin: bool,
    /// RSV1: the message is compressed (permessage-deflate), on its first frame only.
    pub rsv1: bool,
    pub opcode: u8,
    /// The masking key, when the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Length of the head in bytes.
    pub head_len: usize,
    /// Length of the payload in bytes.
    pub len: u64,
}

impl Head {
    /// Whether the opcode is a control frame's.
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// Reads a frame head from the start of `buf`. `Ok(None)` means more bytes are needed.
/// `rsv1_allowed` is true when permessage-deflate was negotiated; `max_len` caps the
/// payload (checked here, before anything is buffered).
pub fn parse_head(buf: &[u8], rsv1_allowed: bool, max_len: u64) -> Result<Option<Head>, Malformed> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let fin = b0 & 0x80 != 0;
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 {
        return Err(Malformed::Protocol("reserved bits set"));
    }
    if rsv1 && !rsv1_allowed {
        return Err(Malformed::Protocol("RSV1 set without permessage-deflate"));
    }
    let opcode = b0 & 0x0f;
    if !matches!(opcode, 0x0..=0x2 | 0x8..=0xA) {
        return Err(Malformed::Protocol("unknown opcode"));
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(b);
            if len >> 63 != 0 {
                return Err(Malformed::Protocol("payload length has its top bit set"));
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    let head = Head {
        fin,
        rsv1,
        opcode,
        mask: None,
        head_len: at,
        len,
    };
    if head.is_control() {
        if !fin {
            return Err(Malformed::Protocol("fragmented control frame"));
        }
        if len > MAX_CONTROL as u64 {
            return Err(Malformed::Protocol("control frame over 125 bytes"));
        }
        if rsv1 {
            return Err(Malformed::Protocol("compressed control frame"));
        }
    } else if len > max_len {
        return Err(Malformed::TooBig);
    }
    let mask = if masked {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some(Head {
        mask,
        head_len: at,
        ..head
    }))
}

/// XORs `payload` with the mask (RFC 6455 §5.3), eight bytes at a time.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let wide = u64::from(word) | (u64::from(word) << 32);
    let mut chunks = payload.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Length of the head of an unmasked frame of `len` payload bytes.
pub fn head_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    }
}

/// Appends the head of a final frame: `opcode`, RSV1 when `compressed`, `len` payload
/// bytes, masked with `mask` when given (client frames).
pub fn put_head(
    buf: &mut impl BufMut,
    opcode: u8,
    compressed: bool,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    let b0 = 0x80 | if compressed { 0x40 } else { 0 } | (opcode & 0x0f);
    let m = if mask.is_some() { 0x80 } else { 0 };
    buf.put_u8(b0);
    match len {
        0..=125 => buf.put_u8(m | len as u8),
        126..=65_535 => {
            buf.put_u8(m | 126);
            buf.put_u16(len as u16);
        }
        _ => {
            buf.put_u8(m | 127);
            buf.put_u64(len as u64);
        }
    }
    if let Some(mask) = mask {
        buf.put_slice(&mask);
    }
}

/// A complete unmasked final frame in one allocation, ready to share across sockets.
pub fn server_frame(opcode: u8, compressed: bool, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(head_len(payload.len()) + payload.len());
    put_head(&mut buf, opcode, compressed, payload.len(), None);
    buf.put_slice(payload);
    buf.freeze()
}

/// An unmasked text frame holding `text`.
pub fn text(text: &[u8]) -> Bytes {
    server_frame(opcode::TEXT, false, text)
}

/// An unmasked text frame holding a JSON array of `items` (already JSON), or the one item
/// itself when there is one: the protocol allows a frame to carry several messages.
pub fn text_array<'a, I>(items: I) -> Bytes
where
    I: IntoIterator<Item = &'a [u8]> + Clone,
{
    let (count, bytes) = items
        .clone()
        .into_iter()
        .fold((0usize, 0usize), |(n, b), i| (n + 1, b + i.len()));
    let len = if count == 1 { bytes } else { bytes + count + 1 };
    let mut buf = BytesMut::with_capacity(head_len(len) + len);
    put_head(&mut buf, opcode::TEXT, false, len, None);
    if count != 1 {
        buf.put_u8(b'[');
    }
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        buf.put_slice(item);
    }
    if count != 1 {
        buf.put_u8(b']');
    }
    buf.freeze()
}

/// The payload of a frame built by [`server_frame`] (its bytes after the head).
pub fn payload_of(frame: &[u8]) -> &[u8] {
    match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => &frame[4.min(frame.len())..],
        Some(127) => &frame[10.min(frame.len())..],
        Some(_) => &frame[2..],
        None => &[],
    }
}

/// A close frame with `code` and a reason (cut to fit the 125-byte control limit at a
/// character boundary).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_CONTROL - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    server_frame(opcode::CLOSE, false, &payload)
}

/// The server's ping: an empty ping frame, the same bytes for every socket.
pub fn ping() -> Bytes {
    Bytes::from_static(&[0x89, 0x00])
}

/// A pong answering a ping with `payload` (at most 125 bytes, checked by the parser).
pub fn pong(payload: &[u8]) -> Bytes {
    server_frame(opcode::PONG, false, payload)
}

/// A masked client frame (for the load generator and tests): `payload` XORed with `mask`.
pub fn client_frame(opcode: u8, compressed: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(MAX_HEAD + payload.len());
    put_head(&mut buf, opcode, compressed, payload.len(), Some(mask));
    let at = buf.len();
    buf.extend_from_slice(payload);
    unmask(&mut buf[at..], mask);
    buf
}

/// Reads the status code of a close frame's payload: `Ok(None)` when it has none, an
/// error for a one-byte payload, a code a peer may not send, or a reason that is not
/// UTF-8 (RFC 6455 §7.4).
pub fn close_code(payload: &[u8]) -> Result<Option<u16>, Malformed> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(Malformed::Protocol("a close payload of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !allowed {
                return Err(Malformed::Protocol("a close code a peer may not send"));
            }
            if simdutf8::basic::from_utf8(&payload[2..]).is_err() {
                return Err(Malformed::Payload("close reason is not UTF-8"));
            }
            Ok(Some(code))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_lengths_at_their_boundaries() {
        let h = |n: usize| {
            let mut b = Vec::new();
            put_head(&mut b, opcode::TEXT, false, n, None);
            b
        };
        assert_eq!(h(0), [0x81, 0]);
        assert_eq!(h(125), [0x81, 125]);
        assert_eq!(h(126), [0x81, 126, 0, 126]);
        assert_eq!(h(65_535), [0x81, 126, 0xff, 0xff]);
        assert_eq!(h(65_536), [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        for n in [0, 125, 126, 65_535, 65_536] {
            assert_eq!(h(n).len(), head_len(n));
        }
    }

    #[test]
    fn a_client_frame_parses_back_byte_by_byte() {
        let payload = b"{\"op\":\"ping\",\"id\":1} and some more text to pass 8 bytes";
        let frame = client_frame(opcode::TEXT, false, payload, [1, 2, 3, 4]);
        for cut in 0..frame.len() {
            let head = parse_head(&frame[..cut], false, 1 << 20).unwrap();
            if let Some(h) = head {
                assert!(cut >= h.head_len);
            }
        }
        let h = parse_head(&frame, false, 1 << 20).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.len),
            (true, opcode::TEXT, payload.len() as u64)
        );
        let mut body = frame[h.head_len..].to_vec();
        unmask(&mut body, h.mask.unwrap());
        assert_eq!(body, payload);
    }

    #[test]
    fn bad_heads_are_refused_with_their_reason() {
        let bad = |b: &[u8], rsv1| parse_head(b, rsv1, 100).unwrap_err();
        assert!(
            matches!(bad(&[0xa1, 0x80], false), Malformed::Protocol(_)),
            "RSV2"
        );
        assert!(
            matches!(bad(&[0xc1, 0x80], false), Malformed::Protocol(_)),
            "RSV1"
        );
        assert!(parse_head(&[0xc1, 0x80, 0, 0, 0, 0], true, 100).is_ok());
        assert!(
            matches!(bad(&[0x83, 0x80], false), Malformed::Protocol(_)),
            "opcode 3"
        );
        assert!(
            matches!(bad(&[0x09, 0x80], false), Malformed::Protocol(_)),
            "fragmented ping"
        );
        assert!(matches!(
            bad(&[0x89, 0xfe, 0, 126], false),
            Malformed::Protocol(_)
        ));
        assert_eq!(bad(&[0x81, 0xfe, 0, 101], false), Malformed::TooBig);
        assert!(matches!(
            bad(&[0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0], false),
            Malformed::Protocol(_)
        ));
    }

    #[test]
    fn arrays_and_single_items() {
        let one = text_array([&b"{\"a\":1}"[..]]);
        assert_eq!(payload_of(&one), b"{\"a\":1}");
        let two = text_array([&b"1"[..], &b"2"[..]]);
        assert_eq!(payload_of(&two), b"[1,2]");
        let big = vec![b'x'; 70_000];
        let f = text_array([&big[..]]);
        assert_eq!(payload_of(&f).len(), 70_000);
    }

    #[test]
    fn close_payloads() {
        assert_eq!(close_code(&[]), Ok(None));
        assert!(close_code(&[3]).is_err());
        assert_eq!(close_code(&1000u16.to_be_bytes()), Ok(Some(1000)));
        assert!(close_code(&1005u16.to_be_bytes()).is_err());
        assert!(close_code(&[0x03, 0xe8, 0xff]).is_err());
        let long = "é".repeat(100);
        let f = close(4008, &long);
        assert!(f.len() <= 2 + MAX_CONTROL);
        assert!(std::str::from_utf8(&payload_of(&f)[2..]).is_ok());
    }
}
