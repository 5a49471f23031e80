//! Reading client frames off the socket and assembling messages.
//!
//! Reads land in a per-thread scratch buffer, so an idle socket holds no read buffer at
//! all. Complete frames are handled straight from it; only bytes that must wait (the
//! start of a frame cut by the read, the fragments of a message, or frames that arrive
//! while an op is still running) are kept, in a buffer owned by the socket that is freed
//! once empty.

use std::{cell::RefCell, io};

use crate::frame::{self, Head, Malformed, deflate, opcode};

/// Size of each thread's scratch read buffer.
const SCRATCH: usize = 16 * 1024;

/// Largest read into a socket's own buffer at once.
const OWN_READ: usize = 16 * 1024;

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH]);
}

/// A message assembled from its frames.
#[derive(Debug)]
pub enum Message<'a> {
    /// A complete text message (inflated when it was compressed), UTF-8 checked.
    Text { text: &'a str, inflated: bool },
    /// A ping with its payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// The peer's close, with its code when it gave one.
    Close(Option<u16>),
}

/// What the handler of one message asks of the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next frame.
    Continue,
    /// Stop here and keep the rest for later (an op is running, or the socket closes).
    Pause,
}

/// A fragmented message being assembled.
#[derive(Debug)]
struct Fragments {
    compressed: bool,
    data: Vec<u8>,
}

/// What is kept between reads.
#[derive(Debug, Default)]
struct Kept {
    /// Unhandled bytes, from the start of a frame.
    bytes: Vec<u8>,
    /// A fragmented text message so far.
    fragments: Option<Fragments>,
}

/// The reading half of a session: nothing allocated while idle.
#[derive(Debug, Default)]
pub struct Reader {
    kept: Option<Box<Kept>>,
}

/// Limits and negotiated options of reading.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message (and frame) accepted, after inflating.
    pub max_message: usize,
    /// permessage-deflate is on: RSV1 marks a compressed message.
    pub deflate: bool,
}

/// The outcome of feeding bytes to the reader.
pub type Fed = Result<(), Malformed>;

impl Reader {
    /// Whether bytes wait to be handled (after an op finished, handle them before
    /// reading more).
    pub fn has_bytes(&self) -> bool {
        self.kept.as_ref().is_some_and(|k| !k.bytes.is_empty())
    }

    /// Reads once from `stream` and handles what arrived. `Ok(false)` at end of stream.
    pub fn read(
        &mut self,
        stream: &tokio::net::TcpStream,
        limits: Limits,
        on: &mut dyn FnMut(Message<'_>) -> Flow,
    ) -> io::Result<Result<bool, Malformed>> {
        if let Some(kept) = self.kept.as_mut()
            && !kept.bytes.is_empty()
        {
            // A frame is cut: read after it, in the socket's own buffer.
            let at = kept.bytes.len();
            kept.bytes.resize(at + OWN_READ, 0);
            let n = match stream.try_read(&mut kept.bytes[at..]) {
                Ok(n) => n,
                Err(e) => {
                    kept.bytes.truncate(at);
                    return Err(e);
                }
            };
            kept.bytes.truncate(at + n);
            if n == 0 {
                return Ok(Ok(false));
            }
            return Ok(self.handle_kept(limits, on).map(|()| true));
        }
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            let n = stream.try_read(&mut buf[..])?;
            if n == 0 {
                return Ok(Ok(false));
            }
            let fed = self.handle(&mut buf[..n], limits, on);
            Ok(fed.map(|()| true))
        })
    }

    /// Handles bytes fed directly (bytes that arrived with the handshake).
    pub fn feed(
        &mut self,
        bytes: &mut [u8],
        limits: Limits,
        on: &mut dyn FnMut(Message<'_>) -> Flow,
    ) -> Fed {
        if bytes.is_empty() {
            return Ok(());
        }
        self.handle(bytes, limits, on)
    }

    /// Handles the kept bytes (after an op finished, or after a read into them).
    pub fn handle_kept(&mut self, limits: Limits, on: &mut dyn FnMut(Message<'_>) -> Flow) -> Fed {
        let Some(mut kept) = self.kept.take() else {
            return Ok(());
        };
        let mut bytes = std::mem::take(&mut kept.bytes);
        self.kept = Some(kept);
        let fed = self.handle(&mut bytes, limits, on);
        // `handle` kept what it did not use in a fresh buffer; this one is spent.
        drop(bytes);
        fed
    }

    /// Handles frames from the start of `data`, keeping what cannot be handled now.
    fn handle(
        &mut self,
        data: &mut [u8],
        limits: Limits,
        on: &mut dyn FnMut(Message<'_>) -> Flow,
    ) -> Fed {
        let mut at = 0;
        while at < data.len() {
            let head =
                match frame::parse_head(&data[at..], limits.deflate, limits.max_message as u64)? {
                    Some(h) => h,
                    None => break,
                };
            let end = at + head.head_len + head.len as usize;
            if end > data.len() {
                break;
            }
            let Some(mask) = head.mask else {
                return Err(Malformed::Protocol("client frames must be masked"));
            };
            let payload = &mut data[at + head.head_len..end];
            frame::unmask(payload, mask);
            at = end;
            if self.frame(head, payload, limits, on)? == Flow::Pause {
                break;
            }
        }
        self.keep(&data[at..]);
        Ok(())
    }

    /// Keeps unhandled bytes (or frees the buffer when there are none).
    fn keep(&mut self, rest: &[u8]) {
        match self.kept.as_mut() {
            Some(k) => {
                k.bytes.clear();
                k.bytes.extend_from_slice(rest);
                if k.bytes.is_empty() {
                    k.bytes = Vec::new();
                    if k.fragments.is_none() {
                        self.kept = None;
                    }
                }
            }
            None if !rest.is_empty() => {
                self.kept = Some(Box::new(Kept {
                    bytes: rest.to_vec(),
                    fragments: None,
                }));
            }
            None => {}
        }
    }

    /// Handles one frame (its payload unmasked).
    fn frame(
        &mut self,
        head: Head,
        payload: &mut [u8],
        limits: Limits,
        on: &mut dyn FnMut(Message<'_>) -> Flow,
    ) -> Result<Flow, Malformed> {
        let fragmenting = self.kept.as_ref().is_some_and(|k| k.fragments.is_some());
        match head.opcode {
            opcode::PING => Ok(on(Message::Ping(payload))),
            opcode::PONG => Ok(on(Message::Pong)),
            opcode::CLOSE => Ok(on(Message::Close(frame::close_code(payload)?))),
            opcode::BINARY => Err(Malformed::Unsupported),
            opcode::TEXT if fragmenting => {
                Err(Malformed::Protocol("a new message inside a fragmented one"))
            }
            opcode::TEXT if head.fin => message(head.rsv1, payload, limits, on),
            opcode::TEXT => {
                let kept = self.kept.get_or_insert_with(Default::default);
                kept.fragments = Some(Fragments {
                    compressed: head.rsv1,
                    data: payload.to_vec(),
                });
                Ok(Flow::Continue)
            }
            opcode::CONTINUATION => {
                if head.rsv1 {
                    return Err(Malformed::Protocol("RSV1 on a continuation frame"));
                }
                let Some(kept) = self.kept.as_mut() else {
                    return Err(Malformed::Protocol("a continuation without a message"));
                };
                let Some(frags) = kept.fragments.as_mut() else {
                    return Err(Malformed::Protocol("a continuation without a message"));
                };
                if frags.data.len() + payload.len() > limits.max_message {
                    return Err(Malformed::TooBig);
                }
                frags.data.extend_from_slice(payload);
                if !head.fin {
                    return Ok(Flow::Continue);
                }
                let Fragments {
                    compressed,
                    mut data,
                } = kept.fragments.take().expect("checked above");
                message(compressed, &mut data, limits, on)
            }
            _ => Err(Malformed::Protocol("unknown opcode")),
        }
    }
}

/// Delivers one complete text message: inflated when compressed, UTF-8 checked.
fn message(
    compressed: bool,
    payload: &mut [u8],
    limits: Limits,
    on: &mut dyn FnMut(Message<'_>) -> Flow,
) -> Result<Flow, Malformed> {
    if compressed {
        let inflated = deflate::inflate(payload, limits.max_message).map_err(|e| match e {
            deflate::InflateError::TooBig => Malformed::TooBig,
            deflate::InflateError::Corrupt => Malformed::Payload("corrupt deflate data"),
        })?;
        let text = simdutf8::basic::from_utf8(&inflated)
            .map_err(|_| Malformed::Payload("text is not UTF-8"))?;
        return Ok(on(Message::Text {
            text,
            inflated: true,
        }));
    }
    let text =
        simdutf8::basic::from_utf8(payload).map_err(|_| Malformed::Payload("text is not UTF-8"))?;
    Ok(on(Message::Text {
        text,
        inflated: false,
    }))
}
