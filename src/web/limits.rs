//! The limits `serve` applies to its clients: connection caps and timeouts (enforced by
//! [`super::server`] through hyper and tower-http), the request rate of the public endpoints
//! per client address (governor), and the admin login attempt limit with growing delays. Every
//! limit has a default here and a `serve` flag to change it.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::store::LoginFailures;

/// What `serve` allows its clients. The defaults fit a process under the usual limit of 1,024
/// open files: the connection cap leaves room for the database and the log.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Open connections at once; further clients wait in the listen queue until one closes.
    pub max_connections: usize,
    /// Open connections of one client address; more are closed at once.
    pub max_connections_per_client: usize,
    /// Time a client has to send a request's whole header, from connecting or from the end of
    /// the previous response on a kept-alive connection (hyper's header-read timeout).
    pub header_timeout: Duration,
    /// Time a client has to send a request's body, and the server to answer (tower-http).
    pub request_timeout: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Requests per second one client address may make to the public endpoints (`/u`, `/c`,
    /// `/o`; not the opt-out POST), with a burst of four times that; 0 turns the limit off.
    pub public_rate_per_second: u32,
    /// Signup form submissions (`POST /s/…`) one client address may make per minute (burst:
    /// the same number); 0 turns the limit off.
    pub signup_posts_per_minute: u32,
    pub login: LoginLimits,
    /// Reverse proxies whose `X-Forwarded-For` names the client (its last address); from any
    /// other peer the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 768,
            max_connections_per_client: 64,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            public_rate_per_second: 20,
            signup_posts_per_minute: 10,
            login: LoginLimits::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Failed admin logins: each client gets `free_per_client` failures within `window`, then must
/// wait 1 s, 2 s, 4 s… (at most `max_delay`) after its last failure before the next attempt;
/// all clients together get `free_global` failures, then the same growing delay applies to
/// everyone. An attempt made too early is refused with 429 without looking at the password.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    pub window: Duration,
    pub free_per_client: u32,
    pub free_global: u32,
    pub max_delay: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            free_per_client: 5,
            free_global: 100,
            max_delay: Duration::from_secs(15 * 60),
        }
    }
}

/// Why a login attempt is refused, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedOut {
    pub global: bool,
    /// Milliseconds since the epoch.
    pub until: i64,
    pub failures: i64,
}

impl LoginLimits {
    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// The first instant whose failures still count.
    pub fn since(&self, now: i64) -> i64 {
        now.saturating_sub(self.window_ms())
    }

    /// Whether an attempt at `now` must wait, given the failures of the window.
    pub fn check(&self, f: &LoginFailures, now: i64) -> Option<LockedOut> {
        let client = self.lock(f.client_count, f.client_last, self.free_per_client);
        let global = self.lock(f.global_count, f.global_last, self.free_global);
        [
            client.map(|until| LockedOut {
                global: false,
                until,
                failures: f.client_count,
            }),
            global.map(|until| LockedOut {
                global: true,
                until,
                failures: f.global_count,
            }),
        ]
        .into_iter()
        .flatten()
        .filter(|l| l.until > now)
        .max_by_key(|l| l.until)
    }

    /// Until when `count` failures, the last at `last`, lock attempts out.
    fn lock(&self, count: i64, last: Option<i64>, free: u32) -> Option<i64> {
        let over = count.checked_sub(i64::from(free))?;
        let last = last?;
        if over < 0 {
            return None;
        }
        let max_ms = i64::try_from(self.max_delay.as_millis()).unwrap_or(i64::MAX);
        let delay = 1000i64
            .checked_shl(u32::try_from(over).unwrap_or(u32::MAX).min(40))
            .unwrap_or(i64::MAX)
            .min(max_ms);
        Some(last.saturating_add(delay))
    }
}

/// Per-client request rate of the public endpoints.
#[derive(Clone)]
pub struct PublicRate(Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>);

/// Client addresses remembered at most before forgetting the idle ones.
const RATE_KEYS_KEPT: usize = 10_000;

impl PublicRate {
    pub fn new(per_second: u32) -> Self {
        Self(NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(4).unwrap_or(NonZeroU32::MIN));
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        }))
    }

    /// `per_minute` requests a minute, all of which may come at once; 0: no limit.
    pub fn per_minute(per_minute: u32) -> Self {
        Self(
            NonZeroU32::new(per_minute)
                .map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)))),
        )
    }

    /// `Err(wait)` when the client must slow down.
    fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        if limiter.len() > RATE_KEYS_KEPT {
            limiter.retain_recent();
        }
        limiter.check_key(&client).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()))
        })
    }
}

/// The client's address: the connection's peer, or, when the peer is a trusted reverse proxy,
/// the last address of the `X-Forwarded-For` it appended.
pub fn client_ip(
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    trusted_proxies: &[IpAddr],
) -> Option<IpAddr> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    // Only the entry the proxy itself appended: earlier ones are whatever the client sent.
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|a| a.trim().parse::<IpAddr>().ok());
    Some(forwarded.unwrap_or(peer))
}

/// State of [`public_rate`].
#[derive(Clone)]
pub struct PublicRateState {
    pub rate: PublicRate,
    pub trusted_proxies: Arc<Vec<IpAddr>>,
}

/// Middleware of the public endpoints: 429 with `Retry-After` past the client's rate.
pub async fn public_rate(
    State(state): State<PublicRateState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(ip) = client_ip(
        request.extensions(),
        request.headers(),
        &state.trusted_proxies,
    ) else {
        return next.run(request).await;
    };
    match state.rate.check(ip) {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many_requests(wait.as_secs().max(1)),
    }
}

pub fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests; try again later\n",
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(client: (i64, i64), global: (i64, i64)) -> LoginFailures {
        LoginFailures {
            client_count: client.0,
            client_last: Some(client.1),
            global_count: global.0,
            global_last: Some(global.1),
        }
    }

    #[test]
    fn delays_grow_after_the_free_attempts_and_are_capped() {
        let l = LoginLimits::default();
        assert_eq!(l.check(&failures((4, 0), (4, 0)), 1), None);
        let locked = l.check(&failures((5, 0), (5, 0)), 1).unwrap();
        assert_eq!((locked.until, locked.global), (1000, false));
        assert_eq!(l.check(&failures((7, 0), (7, 0)), 1).unwrap().until, 4000);
        assert_eq!(l.check(&failures((7, 0), (7, 0)), 4000), None);
        assert_eq!(
            l.check(&failures((80, 0), (80, 0)), 1).unwrap().until,
            900_000
        );
        // Many clients together: the global limit.
        let g = l.check(&failures((1, 0), (100, 0)), 1).unwrap();
        assert!(g.global);
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let mut extensions = axum::http::Extensions::new();
        let proxy: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        extensions.insert(ConnectInfo(proxy));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let trusted: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        assert_eq!(
            client_ip(&extensions, &headers, &trusted),
            Some("198.51.100.7".parse().unwrap()),
            "the address the proxy appended, not one the client wrote"
        );
        assert_eq!(
            client_ip(&extensions, &headers, &[]),
            Some(proxy.ip()),
            "an untrusted peer's header is ignored"
        );
    }
}
