//! Clients of `serve` that connect from other loopback addresses (127.0.0.2, 127.0.0.3…), so
//! that a test can be several clients, as the per-client limits see them.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A connection to `url`'s host from the loopback address `source` (e.g. "127.0.0.2").
pub fn connect_from(source: &str, url: &str) -> TcpStream {
    let host = url
        .strip_prefix("http://")
        .expect("http URL")
        .split('/')
        .next()
        .expect("host");
    let target: SocketAddr = host.parse().expect("IP:PORT");
    let local: SocketAddr = format!("{source}:0").parse().expect("source address");
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.bind(&local.into()).expect("bind source address");
    socket
        .connect_timeout(&target.into(), Duration::from_secs(10))
        .expect("connect");
    socket.into()
}

/// [`super::http_with`] from the loopback address `source`.
pub fn http_from(
    source: &str,
    method: &str,
    url: &str,
    body: Option<(&str, &str)>,
    cookie: Option<&str>,
) -> (u16, String, String) {
    super::http_on(connect_from(source, url), method, url, body, cookie)
}

/// A free port on 127.0.0.1 (bound and released: another process could take it first, which
/// on a test machine does not happen in practice).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
