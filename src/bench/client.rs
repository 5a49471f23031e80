//! A lean WebSocket client for bench viewers: a raw TCP stream, the crate's own frame
//! code ([`crate::frame`]), permessage-deflate when asked, and a count of the bytes
//! that crossed the socket.
//!
//! Ten thousand viewers on the same two cores as the server must cost little: one
//! buffer per viewer, no per-message allocation for uncompressed frames, pings answered
//! in place. It is a client of any server speaking RFC 6455 (ours, the uWebSockets
//! reference peer, the test suite's fakes).

use std::io;

use std::sync::Arc;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::tcp::{OwnedReadHalf, OwnedWriteHalf},
    sync::Mutex,
};

use crate::frame::{self, deflate, opcode};

/// Initial read buffer; it grows for a larger frame.
const READ: usize = 8 * 1024;

/// Largest frame accepted from the server.
const MAX_FRAME: usize = 16 << 20;

/// The sending half of a client, shareable between tasks (a poster sends while its
/// reader task reads replies).
#[derive(Clone)]
pub struct Writer {
    half: Arc<Mutex<OwnedWriteHalf>>,
}

impl Writer {
    /// Sends a frame as it is.
    pub async fn send_raw(&self, bytes: &[u8]) -> io::Result<()> {
        self.half.lock().await.write_all(bytes).await
    }

    /// Sends one text message (masked, as clients must).
    pub async fn send_text(&self, text: &str) -> io::Result<()> {
        let f = frame::client_frame(opcode::TEXT, false, text.as_bytes(), rand::random());
        self.send_raw(&f).await
    }
}

/// A connected client.
pub struct Client {
    stream: OwnedReadHalf,
    writer: Writer,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// permessage-deflate was negotiated (the server agreed to no context takeover).
    pub deflate: bool,
    /// Bytes read from the socket after the handshake.
    pub wire_bytes: u64,
    /// Payload bytes of the text messages received, after inflating.
    pub payload_bytes: u64,
    /// The code of the server's close frame, once one arrived.
    pub close_code: Option<u16>,
    /// The server's handshake response head (status line and headers).
    pub response_head: String,
    mask_seed: u32,
}

/// The extension offer of a compressing viewer.
pub const DEFLATE_OFFER: &str =
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover";

/// Splits `ws://host:port/path?query` into an address and a request target.
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    Ok((host, path.to_string()))
}

impl Client {
    /// Connects and upgrades. `compress` offers permessage-deflate; `recv_buffer` shrinks
    /// the socket's receive buffer (stalled viewers).
    pub async fn connect(
        url: &str,
        compress: bool,
        recv_buffer: Option<u32>,
    ) -> Result<Client, String> {
        Self::connect_offering(url, compress.then_some(DEFLATE_OFFER), recv_buffer).await
    }

    /// [`Client::connect`] with any `Sec-WebSocket-Extensions` offer (tests send odd ones).
    pub async fn connect_offering(
        url: &str,
        offer: Option<&str>,
        recv_buffer: Option<u32>,
    ) -> Result<Client, String> {
        let (host, target) = split_url(url)?;
        let addr = tokio::net::lookup_host(host.as_str())
            .await
            .map_err(|e| format!("{host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}: no address"))?;
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(|e| e.to_string())?;
        if let Some(size) = recv_buffer {
            socket
                .set_recv_buffer_size(size)
                .map_err(|e| e.to_string())?;
        }
        let mut stream = socket
            .connect(addr)
            .await
            .map_err(|e| format!("connect {host}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let offer = offer
            .map(|o| format!("Sec-WebSocket-Extensions: {o}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
        );
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("handshake write: {e}"))?;
        let mut buf = vec![0u8; READ];
        let mut end = 0;
        let head_end = loop {
            if end == buf.len() {
                return Err("handshake: response head too large".into());
            }
            let n = stream
                .read(&mut buf[end..])
                .await
                .map_err(|e| format!("handshake read: {e}"))?;
            if n == 0 {
                return Err("handshake: connection closed".into());
            }
            end += n;
            if let Some(i) = buf[..end].windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let status = head.lines().next().unwrap_or_default();
        if !status.starts_with("HTTP/1.1 101") {
            let body = String::from_utf8_lossy(&buf[head_end..end]);
            return Err(format!("handshake refused: {status} {body}"));
        }
        let ext = head
            .lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with("sec-websocket-extensions:")
            })
            .map(|l| l.to_ascii_lowercase());
        let deflate = match ext {
            Some(e) if e.contains("permessage-deflate") => {
                if !e.contains("server_no_context_takeover") {
                    return Err("the server compresses with context takeover; bench viewers need server_no_context_takeover".into());
                }
                true
            }
            _ => false,
        };
        let (read, write) = stream.into_split();
        Ok(Client {
            stream: read,
            writer: Writer {
                half: Arc::new(Mutex::new(write)),
            },
            buf,
            start: head_end,
            end,
            deflate,
            wire_bytes: (end - head_end) as u64,
            payload_bytes: 0,
            close_code: None,
            response_head: head,
            mask_seed: rand::random(),
        })
    }

    /// Sends bytes as they are (a frame built by the caller, even a broken one).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.send_raw(bytes).await
    }

    /// A handle that sends on this connection from another task.
    pub fn writer(&self) -> Writer {
        self.writer.clone()
    }

    /// Sends one text message compressed (RSV1), as a permessage-deflate client does.
    pub async fn send_compressed(&mut self, text: &str) -> io::Result<()> {
        let z = deflate::compress(text.as_bytes()).unwrap_or_else(|| text.as_bytes().to_vec());
        let compressed = z.len() < text.len();
        let body = if compressed { &z[..] } else { text.as_bytes() };
        self.mask_seed = self
            .mask_seed
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        let f = frame::client_frame(opcode::TEXT, compressed, body, self.mask_seed.to_ne_bytes());
        self.writer.send_raw(&f).await
    }

    /// Sends one text message (masked, as clients must).
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.mask_seed = self
            .mask_seed
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        let f = frame::client_frame(
            opcode::TEXT,
            false,
            text.as_bytes(),
            self.mask_seed.to_ne_bytes(),
        );
        self.writer.send_raw(&f).await
    }

    /// Reads frames until at least one text message was handed to `on_text` (each as
    /// its payload, inflated). Answers pings. `Ok(false)` when the server closed.
    pub async fn read_some(&mut self, on_text: &mut impl FnMut(&[u8])) -> io::Result<bool> {
        loop {
            let mut got = false;
            loop {
                let avail = &self.buf[self.start..self.end];
                let head = match frame::parse_head(avail, self.deflate, MAX_FRAME as u64) {
                    Ok(Some(h)) => h,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(io::Error::other(format!("bad frame from server: {e:?}")));
                    }
                };
                let len = head.head_len + head.len as usize;
                if avail.len() < len {
                    break;
                }
                let payload_at = self.start + head.head_len;
                self.start += len;
                match head.opcode {
                    opcode::TEXT => {
                        let payload = &self.buf[payload_at..payload_at + head.len as usize];
                        if head.rsv1 {
                            let inflated = deflate::inflate(payload, MAX_FRAME)
                                .map_err(|e| io::Error::other(format!("inflate: {e:?}")))?;
                            self.payload_bytes += inflated.len() as u64;
                            on_text(&inflated);
                        } else {
                            self.payload_bytes += payload.len() as u64;
                            on_text(payload);
                        }
                        got = true;
                    }
                    opcode::PING => {
                        let payload = self.buf[payload_at..payload_at + head.len as usize].to_vec();
                        self.mask_seed = self.mask_seed.wrapping_add(0x9e37_79b9);
                        let pong = frame::client_frame(
                            opcode::PONG,
                            false,
                            &payload,
                            self.mask_seed.to_ne_bytes(),
                        );
                        self.writer.send_raw(&pong).await?;
                    }
                    opcode::CLOSE => {
                        let p = &self.buf[payload_at..payload_at + head.len as usize];
                        self.close_code = Some(if p.len() >= 2 {
                            u16::from_be_bytes([p[0], p[1]])
                        } else {
                            1005
                        });
                        return Ok(false);
                    }
                    _ => {}
                }
            }
            if got {
                return Ok(true);
            }
            // Make room: move the unread tail to the front, grow for a large frame.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let want = (self.buf.len() * 2).min(MAX_FRAME + frame::MAX_HEAD);
                if want <= self.buf.len() {
                    return Err(io::Error::other("frame too large"));
                }
                self.buf.resize(want, 0);
            }
            let n = self.stream.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                return Ok(false);
            }
            self.end += n;
            self.wire_bytes += n as u64;
        }
    }

    /// Sends a close frame (best effort) and drops the connection.
    pub async fn close(self) {
        let f = frame::client_frame(opcode::CLOSE, false, &1000u16.to_be_bytes(), [7, 7, 7, 7]);
        let _ = self.writer.send_raw(&f).await;
    }
}
