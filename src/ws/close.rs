//! Why a session ends, and the closing handshake.
//!
//! A socket closed by the server sends what is still queued (unless it is being dropped
//! as slow: a slow reader gets nothing more), then its close frame with a documented
//! code, then waits briefly for the peer's close (closing a socket with unread input
//! makes the kernel send a reset, which can destroy the close frame before the peer
//! reads it). A frame cut short by the close is finished first; if it cannot be, the
//! socket hangs up without a close frame rather than corrupt the stream.

use std::{future::poll_fn, task::Poll, time::Duration};

use super::reader::{Limits, Message, Reader};
use crate::{
    frame::{self, Malformed},
    hub::conn::{Conn, close},
};

/// How long each step of the closing handshake may take.
const STEP: Duration = Duration::from_secs(1);

/// Why the session ends: the close code and reason to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: u16,
    pub reason: &'static str,
    /// The peer sent its close first: answer it, do not wait for another.
    pub peer: bool,
}

impl Exit {
    /// A close asked through the hub (shutdown, slow consumer, deadlines).
    pub fn requested(code: u16) -> Exit {
        Exit {
            code,
            reason: reason_of(code),
            peer: false,
        }
    }

    /// The peer closed with `code` (echoed back, RFC 6455 §5.5.1).
    pub fn peer(code: Option<u16>) -> Exit {
        Exit {
            code: code.unwrap_or(close::NORMAL),
            reason: "",
            peer: true,
        }
    }

    /// The peer went away without a close (end of stream, reset).
    pub fn gone() -> Exit {
        Exit {
            code: close::NORMAL,
            reason: "",
            peer: true,
        }
    }

    /// A write failed: nothing more can be sent.
    pub fn broken() -> Exit {
        Exit {
            code: close::ABNORMAL,
            reason: "",
            peer: true,
        }
    }

    /// Too many invalid ops (1008).
    pub fn policy() -> Exit {
        Exit::requested(close::POLICY)
    }

    /// A frame that cannot be read.
    pub fn malformed(bad: Malformed) -> Exit {
        let (code, reason) = match bad {
            Malformed::Protocol(why) => (close::PROTOCOL, why),
            Malformed::TooBig => (close::TOO_BIG, reason_of(close::TOO_BIG)),
            Malformed::Payload(why) => (close::INVALID_PAYLOAD, why),
            Malformed::Unsupported => (close::UNSUPPORTED, reason_of(close::UNSUPPORTED)),
        };
        Exit {
            code,
            reason,
            peer: false,
        }
    }
}

/// The reason text sent with each server-initiated close code.
pub fn reason_of(code: u16) -> &'static str {
    match code {
        close::GOING_AWAY => "server shutting down",
        close::SLOW => "slow consumer: outbox overflow",
        close::TOKEN_EXPIRED => "token expired",
        close::IDLE => "idle timeout",
        close::POLICY => "too many invalid frames",
        close::TOO_BIG => "message too big",
        close::INVALID_PAYLOAD => "text frame is not valid UTF-8",
        close::UNSUPPORTED => "binary frames are not supported",
        close::PROTOCOL => "protocol error",
        close::INTERNAL => "internal error",
        _ => "",
    }
}

/// Writes what is queued, waiting at most [`STEP`]. True when everything went out.
async fn drain(conn: &Conn) -> bool {
    matches!(
        tokio::time::timeout(STEP, poll_fn(|cx| conn.poll_drain(cx))).await,
        Ok(Ok(()))
    )
}

/// Runs the closing handshake on `conn`, reading the peer's close with the session's
/// `reader`; returns the exit as it was sent.
pub async fn close(conn: &Conn, reader: &mut Reader, limits: Limits, exit: Exit) -> Exit {
    // A close asked through the hub wins (it is what the queue was cut for).
    let code = conn.close_requested().unwrap_or(exit.code);
    let exit = if code == exit.code {
        exit
    } else {
        Exit::requested(code)
    };
    // From here on nobody else writes to the socket.
    conn.request_close(exit.code);
    if exit.code == close::ABNORMAL {
        return exit;
    }
    // The rest of a cut frame (and, unless the peer is slow, the frames queued before the
    // close: the replies to its last ops, above all) go out first.
    if !drain(conn).await && conn.mid_frame() {
        return exit;
    }
    let sent = conn.send_final(&frame::close(exit.code, exit.reason)) && drain(conn).await;
    if sent && !exit.peer {
        let _ = tokio::time::timeout(STEP, peer_close(conn, reader, limits)).await;
    }
    exit
}

/// Reads until the peer's close frame or the end of the stream, discarding the rest.
async fn peer_close(conn: &Conn, reader: &mut Reader, limits: Limits) {
    let mut closed = false;
    let _ = reader.handle_kept(limits, &mut |m| {
        closed |= matches!(m, Message::Close(_));
        super::reader::Flow::Continue
    });
    if closed {
        return;
    }
    poll_fn(|cx| {
        loop {
            match conn.stream().poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {}
            }
            let mut closed = false;
            let read = reader.read(conn.stream(), limits, &mut |m| {
                if matches!(m, Message::Close(_)) {
                    closed = true;
                    super::reader::Flow::Pause
                } else {
                    super::reader::Flow::Continue
                }
            });
            match read {
                Ok(Ok(true)) if !closed => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                _ => return Poll::Ready(()),
            }
        }
    })
    .await
}
