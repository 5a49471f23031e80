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
//!
//! [`client_ip`] tells who the client of a request is when the node sits behind reverse
//! proxies (`server.trusted_proxies`); the WebSocket upgrade and the REST request span
//! both ask it, so the per-address caps and the logs agree.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Weak},
    task::{Context, Poll, ready},
    time::Duration,
};

use poem::{
    http::HeaderMap,
    listener::{Acceptor, TcpAcceptor},
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// The address of the client behind a request that came from the TCP peer `peer`.
///
/// `X-Forwarded-For` is a list that every proxy appends its own peer to, so only its
/// right end is written by proxies we run; anything further left came from whoever
/// connected to the first proxy and may be made up. Hence the standard walk: when `peer`
/// is one of `trusted`, read the entries right to left, skip those that are trusted
/// proxies themselves, and take the first one that is not. When every entry is trusted,
/// the left-most is the client (a request from inside the proxies' own network).
/// From a peer that is not trusted the header is ignored: anyone can send one.
///
/// An entry that is not an address (`unknown`, an RFC 7239 obfuscated name, garbage)
/// stops the walk: what lies left of it was not vouched for by a trusted hop, so the
/// nearest address to its right (a trusted proxy, or `peer`) is taken instead. Entries
/// may carry a port (`1.2.3.4:5678`, `[::1]:80`); several header lines count as one list
/// in order. IPv4-mapped IPv6 addresses count as IPv4, here and in `trusted`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[crate::config::Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
        let Some(ip) = forwarded_addr(entry) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry as an address: `1.2.3.4`, `2001:db8::1`, or either with
/// a port (`1.2.3.4:80`, `[2001:db8::1]:80`, also `[2001:db8::1]` alone).
fn forwarded_addr(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .or_else(|_| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .unwrap_or_default()
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(ip.to_canonical())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cidr;

    /// Headers holding one `X-Forwarded-For` line per item of `lines`.
    fn xff(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", l.parse().expect("header value"));
        }
        h
    }

    /// `trusted` parsed as the config parses it.
    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().expect("cidr")).collect()
    }

    /// The client `client_ip` finds for `peer` and the header lines.
    fn client(peer: &str, lines: &[&str], trusted: &[&str]) -> String {
        client_ip(peer.parse().expect("peer"), &xff(lines), &nets(trusted)).to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(client("203.0.113.5", &["198.51.100.1"], &[]), "203.0.113.5");
        assert_eq!(
            client("203.0.113.5", &["198.51.100.1"], &["10.0.0.0/8"]),
            "203.0.113.5"
        );
        assert_eq!(client("10.1.2.3", &[], &[]), "10.1.2.3");
    }

    #[test]
    fn the_right_most_untrusted_entry_wins() {
        let proxies = ["10.0.0.0/8", "192.168.0.0/16"];
        // The client made up the first entry; our proxies appended the real one.
        assert_eq!(
            client("10.0.0.1", &["1.1.1.1, 203.0.113.9, 192.168.1.1"], &proxies),
            "203.0.113.9"
        );
        // No header from a trusted peer: the peer itself.
        assert_eq!(client("10.0.0.1", &[], &proxies), "10.0.0.1");
        // Every hop trusted: the left-most is the client.
        assert_eq!(
            client("10.0.0.1", &["10.9.9.9, 192.168.1.1"], &proxies),
            "10.9.9.9"
        );
        // Several header lines are one list, in order.
        assert_eq!(
            client(
                "10.0.0.1",
                &["1.1.1.1", "203.0.113.9", "10.0.0.2"],
                &proxies
            ),
            "203.0.113.9"
        );
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let proxies = ["fd00::/8", "127.0.0.1"];
        assert_eq!(
            client("fd00::1", &["2001:db8::7, fd00::2"], &proxies),
            "2001:db8::7"
        );
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
        assert_eq!(
            client("::ffff:127.0.0.1", &["203.0.113.9"], &proxies),
            "203.0.113.9"
        );
        assert_eq!(client("::ffff:203.0.113.5", &[], &[]), "203.0.113.5");
        // Ports and brackets.
        assert_eq!(
            client(
                "fd00::1",
                &["[2001:db8::8]:443, 203.0.113.1:5000"],
                &proxies
            ),
            "203.0.113.1"
        );
        assert_eq!(
            client("fd00::1", &["[2001:db8::9]"], &proxies),
            "2001:db8::9"
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_nearest_vouched_address() {
        let proxies = ["10.0.0.0/8"];
        // The trusted peer itself wrote garbage: the peer is all we know.
        assert_eq!(
            client("10.0.0.1", &["1.1.1.1, unknown"], &proxies),
            "10.0.0.1"
        );
        // Garbage past a trusted hop: that hop.
        assert_eq!(
            client("10.0.0.1", &["1.1.1.1, _hidden, 10.0.0.7"], &proxies),
            "10.0.0.7"
        );
        // Garbage left of the client found does not matter.
        assert_eq!(
            client("10.0.0.1", &["%%%, 203.0.113.9, 10.0.0.7"], &proxies),
            "203.0.113.9"
        );
        assert_eq!(client("10.0.0.1", &[""], &proxies), "10.0.0.1");
        assert_eq!(client("10.0.0.1", &["1.1.1.1,,"], &proxies), "10.0.0.1");
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert!("10.0.0.0/8".parse::<Cidr>().is_ok());
        assert!("::1".parse::<Cidr>().is_ok());
        assert!("fd00::/8".parse::<Cidr>().is_ok());
        for bad in ["10.0.0.0/33", "10.0.0", "fd00::/129", "proxy.local", ""] {
            let e = bad.parse::<Cidr>().expect_err(bad);
            assert!(e.contains("not a CIDR network"), "{e}");
        }
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
    }
}
