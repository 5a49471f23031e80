//! The listener: accepted TCP connections as poem serves them, plus what lets a
//! WebSocket upgrade take its raw socket back.
//!
//! Every connection is served by poem (HTTP/1.1 and HTTP/2, the REST API, pages, the
//! upgrade request of `/ws`). The stream poem reads and writes is a [`NetIo`]: a thin
//! `&TcpStream` adapter that also enforces the handshake deadline (a peer that does not
//! finish its first request head in time is dropped); every socket has `TCP_NODELAY`
//! and, when configured, a capped kernel send buffer.
//! Each accepted stream is listed in [`Sockets`] under its peer address; after a
//! successful upgrade the session takes it from there, so the hub can write to the
//! socket directly (`try_write` from whichever thread has a frame) instead of through
//! poem's boxed stream.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Weak},
    task::{Context, Poll, ready},
    time::Duration,
};

use poem::{
    listener::{Acceptor, TcpAcceptor},
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// The accepted streams still open, by peer address. Weak handles: the map (whose
/// removed entries are freed later, by epoch) never keeps a stream open, and a taken
/// stream is owned by its session alone once poem lets go of it.
#[derive(Debug, Default)]
pub struct Sockets {
    open: papaya::HashMap<SocketAddr, Weak<TcpStream>>,
}

impl Sockets {
    /// Takes the stream of the connection from `peer`, for a WebSocket session. The HTTP
    /// side keeps its own handle until poem lets go of the connection.
    pub fn take(&self, peer: SocketAddr) -> Option<Arc<TcpStream>> {
        self.open.pin().remove(&peer).and_then(Weak::upgrade)
    }

    /// Number of connections listed (for tests and metrics).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no connection is listed.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// Accepts connections for poem with a handshake deadline and an optional send buffer
/// cap, listing each in [`Sockets`].
pub struct Listener {
    inner: TcpAcceptor,
    timeout: Duration,
    send_buffer: usize,
    sockets: Arc<Sockets>,
}

impl Listener {
    /// Wraps `inner`; `send_buffer` 0 leaves the kernel's autotuning alone.
    pub fn new(
        inner: TcpAcceptor,
        timeout: Duration,
        send_buffer: usize,
        sockets: Arc<Sockets>,
    ) -> Self {
        Listener {
            inner,
            timeout,
            send_buffer,
            sockets,
        }
    }
}

impl Acceptor for Listener {
    type Io = NetIo;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(NetIo, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (stream, local, remote, scheme) = self.inner.accept().await?;
        // No Nagle: a live event must leave now, not when the previous one is acked (the
        // peer's delayed ACK would hold it for up to 40 ms).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
        if self.send_buffer > 0
            && let Err(e) = socket2::SockRef::from(&stream).set_send_buffer_size(self.send_buffer)
        {
            tracing::warn!(error = %e, "cannot set SO_SNDBUF");
        }
        let peer = stream.peer_addr().ok();
        let stream = Arc::new(stream);
        if let Some(peer) = peer {
            self.sockets
                .open
                .pin()
                .insert(peer, Arc::downgrade(&stream));
        }
        let io = NetIo {
            stream,
            deadline: Some(Box::pin(tokio::time::sleep(self.timeout))),
            tail: 0,
            peer,
            sockets: self.sockets.clone(),
        };
        Ok((io, local, remote, scheme))
    }
}

/// A connection as poem reads and writes it. Reads fail once the deadline passes,
/// until the bytes read so far contain `\r\n\r\n` (the end of the first request head,
/// or of the HTTP/2 preface); after that it is a plain pass-through.
pub struct NetIo {
    stream: Arc<TcpStream>,
    /// `None` once the head is complete.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The last bytes seen, to find `\r\n\r\n` across reads.
    tail: u32,
    peer: Option<SocketAddr>,
    sockets: Arc<Sockets>,
}

impl NetIo {
    /// Feeds read bytes to the head detector; stops the clock when the head is complete.
    fn observe(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.tail = (self.tail << 8) | u32::from(b);
            if self.tail == u32::from_be_bytes(*b"\r\n\r\n") {
                self.deadline = None;
                return;
            }
        }
    }
}

impl Drop for NetIo {
    fn drop(&mut self) {
        if let Some(peer) = self.peer {
            // Only our own entry: a new connection may reuse the address at once.
            let _ = self.sockets.open.pin().remove_if(&peer, |_, s| {
                std::ptr::eq(s.as_ptr(), Arc::as_ptr(&self.stream))
            });
        }
    }
}

impl AsyncRead for NetIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(d) = this.deadline.as_mut()
            && d.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake timeout",
            )));
        }
        loop {
            ready!(this.stream.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match this.stream.try_read(unfilled) {
                Ok(n) => {
                    let before = buf.filled().len();
                    buf.advance(n);
                    if this.deadline.is_some() {
                        this.observe(&buf.filled()[before..]);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for NetIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing to do: dropping the last handle closes the socket, and after an
        // upgrade the session owns it (a shutdown here would cut the session off).
        Poll::Ready(Ok(()))
    }
}
