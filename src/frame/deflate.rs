//! permessage-deflate (RFC 7692): the negotiation, the shared compressor and the
//! bounded inflater.
//!
//! The server always answers with `server_no_context_takeover; client_no_context_takeover`:
//! each message is compressed on its own, in both directions. That is what lets the hub
//! compress a room batch **once** and send the same bytes to every compressing socket,
//! and it means no socket keeps a compression or decompression context (a zlib context
//! costs tens of kilobytes; a viewer costs about one). The compressor and the inflater
//! are per thread and reset for each message.
//!
//! A client offer with parameters we do not take (a smaller `server_max_window_bits`,
//! anything unknown, malformed or repeated) is declined and the next offer is tried; with
//! none left the socket simply runs uncompressed. Inflating stops at the message cap, so
//! a decompression bomb costs at most the cap.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension token.
pub const EXTENSION: &str = "permessage-deflate";

/// Our answer to an accepted offer.
pub const RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The tail that each compressed message had before the sender cut it (§7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compression level of room batches: zlib's 1–9 trade CPU for bytes; 6 is zlib's
/// default, measured in BENCHMARKS.md.
pub const LEVEL: u32 = 6;

/// Whether one extension offer (one comma-separated item of `Sec-WebSocket-Extensions`)
/// is a permessage-deflate offer we accept as is.
fn acceptable(offer: &str) -> bool {
    let mut parts = offer.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case(EXTENSION))
    {
        return false;
    }
    let mut seen: Vec<String> = Vec::new();
    for param in parts {
        if param.is_empty() {
            return false;
        }
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return false;
        }
        let bits_ok = |v: Option<&str>| {
            v.is_some_and(|v| {
                v.len() <= 2
                    && v.bytes().all(|b| b.is_ascii_digit())
                    && v.parse::<u8>().is_ok_and(|b| (8..=15).contains(&b))
            })
        };
        let ok = match name.as_str() {
            "server_no_context_takeover" | "client_no_context_takeover" => value.is_none(),
            // The client lets us pick its window; we leave it at its default.
            "client_max_window_bits" => value.is_none() || bits_ok(value),
            // A cap on our window: only 15 (no cap) keeps one shared compressed batch
            // valid for every socket.
            "server_max_window_bits" => bits_ok(value) && value == Some("15"),
            _ => false,
        };
        if !ok {
            return false;
        }
        seen.push(name);
    }
    true
}

/// Reads every `Sec-WebSocket-Extensions` value of a handshake and says whether
/// permessage-deflate is on for this socket (then the answer is [`RESPONSE`]).
pub fn negotiate<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .any(acceptable)
}

thread_local! {
    /// One compressor per thread, reset for each message (no context takeover).
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(LEVEL), false));
    /// One inflater per thread, reset for each message.
    static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Compresses one message payload for a frame with RSV1 set: raw deflate, flushed and
/// without its 4-byte tail. `None` when compression would not make it smaller (a client
/// accepts either form per message, so small messages go out as they are).
pub fn compress(payload: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        loop {
            let consumed = c.total_in() as usize;
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(256));
            }
            match c.compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync) {
                Ok(_) => {}
                Err(_) => return None,
            }
            // Done once all input is in and the sync flush fit (space was left over).
            if c.total_in() as usize == payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        (out.len() < payload.len()).then_some(out)
    })
}

/// Why a compressed message could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The inflated message would pass the cap (close 1009).
    TooBig,
    /// Not valid deflate data (close 1007).
    Corrupt,
}

/// Inflates one compressed message into at most `max` bytes. Output is made in small
/// steps and checked against the cap before it is kept, so a bomb is stopped after `max`
/// bytes of work and memory, not after its full size.
pub fn inflate(compressed: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    INFLATER.with(|d| {
        let mut d = d.borrow_mut();
        d.reset(false);
        let mut out = Vec::with_capacity((compressed.len() * 3).min(max));
        let mut chunk = [0u8; 8192];
        for input in [compressed, &TAIL[..]] {
            let mut pos = 0;
            loop {
                let (in0, out0) = (d.total_in(), d.total_out());
                let status = d
                    .decompress(&input[pos..], &mut chunk, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                let used = (d.total_in() - in0) as usize;
                let made = (d.total_out() - out0) as usize;
                pos += used;
                if out.len() + made > max {
                    return Err(InflateError::TooBig);
                }
                out.extend_from_slice(&chunk[..made]);
                if status == Status::StreamEnd {
                    // A final block (BFINAL) ends the message; nothing after it counts.
                    return Ok(out);
                }
                if pos == input.len() && made < chunk.len() {
                    break;
                }
                if used == 0 && made == 0 {
                    // No progress with input left: the data is not deflate.
                    return Err(InflateError::Corrupt);
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_taken_or_declined_as_a_whole() {
        assert!(negotiate(["permessage-deflate"]));
        assert!(negotiate(["permessage-deflate; client_max_window_bits"]));
        assert!(negotiate([
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover"
        ]));
        assert!(negotiate(["permessage-deflate; server_max_window_bits=15"]));
        assert!(!negotiate([
            "permessage-deflate; server_max_window_bits=10"
        ]));
        assert!(!negotiate([
            "permessage-deflate; client_max_window_bits=16"
        ]));
        assert!(!negotiate([
            "permessage-deflate; client_max_window_bits=abc"
        ]));
        assert!(!negotiate(["permessage-deflate; bogus"]));
        assert!(!negotiate([
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover"
        ]));
        assert!(!negotiate(["x-webkit-deflate-frame"]));
        assert!(!negotiate([""]));
        // The first acceptable offer wins; bad ones before it are skipped.
        assert!(negotiate([
            "permessage-deflate; server_max_window_bits=9, permessage-deflate"
        ]));
    }

    #[test]
    fn compress_then_inflate_round_trips() {
        let batch: String = (0..40)
            .map(|i| format!("{{\"type\":\"danmaku\",\"channel\":\"video:1\",\"seq\":{i},\"data\":{{\"text\":\"hello {i}\"}}}}"))
            .collect::<Vec<_>>()
            .join(",");
        let z = compress(batch.as_bytes()).expect("a batch compresses");
        assert!(z.len() * 3 < batch.len(), "{} -> {}", batch.len(), z.len());
        assert_eq!(inflate(&z, 1 << 20).unwrap(), batch.as_bytes());
        assert_eq!(compress(b"{}"), None, "tiny messages are not worth it");
    }

    #[test]
    fn a_bomb_stops_at_the_cap_and_garbage_is_corrupt() {
        let zeros = vec![0u8; 10 << 20];
        let z = compress(&zeros).unwrap();
        assert!(z.len() < 20_000);
        assert_eq!(inflate(&z, 16 * 1024), Err(InflateError::TooBig));
        assert_eq!(inflate(&z, 10 << 20).map(|v| v.len()), Ok(10 << 20));
        assert_eq!(
            inflate(&[0xff, 0xff, 0xff, 0x00, 0x12], 1024),
            Err(InflateError::Corrupt)
        );
    }
}
