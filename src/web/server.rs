//! The connection layer of `serve`: accepts connections under a global and a per-client cap and
//! serves each with hyper's HTTP/1 connection, whose header-read timeout drops clients that
//! send their request slowly; tower-http bounds the body's time and size and the whole
//! request's time. At the global cap, a new connection takes the place of the oldest one that
//! has not yet sent a whole request header (a real client sends it at once; a slow one holds a
//! slot for nothing). Slow or numerous clients therefore cost a bounded number of file
//! descriptors and bounded memory, and the public pages keep answering.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use super::limits::ServeLimits;

/// Largest request head hyper buffers (request line and headers).
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Open connections per client address.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// Holds one of a client's connection slots; gives it back when dropped.
struct ClientSlot {
    clients: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Connections that have not yet sent a whole request header, by age: the ones to close first
/// when the cap is reached.
#[derive(Default)]
struct Unproven {
    next_id: AtomicU64,
    waiting: Mutex<BTreeMap<u64, oneshot::Sender<()>>>,
}

impl Unproven {
    /// Registers a new connection: its id, and what tells it that it was evicted.
    fn add(&self) -> (u64, oneshot::Receiver<()>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (evict, evicted) = oneshot::channel();
        self.lock().insert(id, evict);
        (id, evicted)
    }

    fn proven(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes the oldest connection still without a request; whether there was one.
    fn evict_oldest(&self) -> bool {
        let oldest = self.lock().pop_first();
        oldest.is_some_and(|(_, evict)| evict.send(()).is_ok())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, oneshot::Sender<()>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: &ServeLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let app = tower::ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(RequestBodyTimeoutLayer::new(limits.request_timeout))
        .service(app);
    let http = http1_builder(limits);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(PerClient::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    let unproven = Arc::new(Unproven::default());
    while let Some((stream, peer)) = accept(&listener, &mut shutdown).await {
        let Some(slot) = clients.take(peer.ip(), limits.max_connections_per_client) else {
            tracing::debug!(client = %peer.ip(), "connection refused: too many from this client");
            continue;
        };
        let Some(permit) = admit(&connections, &unproven, &mut shutdown).await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let (id, evicted) = unproven.add();
        let app = app.clone();
        let first_request = Arc::new(AtomicBool::new(true));
        let on_request = Arc::clone(&unproven);
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            if first_request.swap(false, Ordering::Relaxed) {
                on_request.proven(id);
            }
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let unproven = Arc::clone(&unproven);
        tokio::spawn(async move {
            tokio::select! {
                result = connection => if let Err(e) = result {
                    tracing::debug!(client = %peer.ip(), error = %e, "connection ended");
                },
                Ok(()) = evicted => {
                    tracing::debug!(client = %peer.ip(), "closed to make room: no request yet");
                }
            }
            unproven.proven(id);
            drop((permit, slot));
        });
    }
    drop(listener);
    // Requests under way get the request timeout to finish.
    let _ = tokio::time::timeout(limits.request_timeout, graceful.shutdown()).await;
    Ok(())
}

/// hyper's HTTP/1 connection settings: the header-read timeout and the head size bound.
fn http1_builder(limits: &ServeLimits) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    http
}

/// The next connection, or `None` once `shutdown` completes.
async fn accept<S: std::future::Future<Output = ()>>(
    listener: &TcpListener,
    shutdown: &mut std::pin::Pin<&mut S>,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => return Some(a),
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: the
                    // listener itself is fine; wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = shutdown.as_mut() => return None,
        }
    }
}

/// A place under the global cap, or `None` once `shutdown` completes.
async fn admit<S: std::future::Future<Output = ()>>(
    connections: &Arc<Semaphore>,
    unproven: &Unproven,
    shutdown: &mut std::pin::Pin<&mut S>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if let Ok(p) = Arc::clone(connections).try_acquire_owned() {
        return Some(p);
    }
    // At the cap: make room by closing the oldest connection without a request, or, when
    // every connection is working, wait for one to end.
    if unproven.evict_oldest() {
        tracing::debug!("connection cap reached: closed the oldest idle connection");
    }
    tokio::select! {
        permit = Arc::clone(connections).acquire_owned() => permit.ok(),
        () = shutdown.as_mut() => None,
    }
}
