//! `fairsend serve`: the axum server for the public unsubscribe pages, the RFC 8058 one-click
//! endpoint, the signup forms (`/s/…`), the `/admin` operations and compliance pages,
//! `/metrics` and `/healthz`. Handlers are thin: they check a token or a session, call library
//! functions and render a page. No state that matters is kept in memory; everything is in the
//! database (sessions and failed logins too). How clients are limited is in `limits`; the
//! connection layer in `server`.

pub mod admin;
mod campaign_page;
mod charts;
mod hooks;
pub mod limits;
mod pages;
mod server;
mod signup;
mod signup_pages;
mod unsubscribe;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::config::ConfigDir;
use crate::store::Store;
use crate::suppress::Secret;

pub use limits::{LoginLimits, ServeLimits};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub secret: Secret,
    pub config: Arc<ConfigDir>,
    /// `None`: the admin pages are disabled.
    pub admin_password: Option<admin::AdminPassword>,
    /// `Some`: `/metrics` is also served on the public listener, to requests bearing it.
    pub metrics_token: Option<admin::MetricsToken>,
    pub limits: Arc<ServeLimits>,
    /// Sends the confirmation messages of signup forms; `None` when no register has one.
    pub signup_mailer: Option<Arc<crate::app::signup::Mailer>>,
    /// The provider webhooks that are on (`[webhooks]`); none by default.
    pub webhooks: Arc<crate::app::webhooks::Webhooks>,
}

pub fn router(state: AppState) -> Router {
    let rate = limits::PublicRateState {
        rate: limits::PublicRate::new(state.limits.public_rate_per_second),
        trusted_proxies: Arc::new(state.limits.trusted_proxies.clone()),
    };
    let limited = || axum::middleware::from_fn_with_state(rate.clone(), limits::public_rate);
    // The pages anyone holding a link can reach are rate-limited per client, except the
    // opt-out itself: a mailbox provider sends every one-click request of its users from a
    // few addresses, and an opt-out refused for load would be an opt-out lost. (It writes once
    // per address; a repeat changes nothing.) The admin pages have their login limit, and the
    // health check comes from the load balancer.
    let public = Router::new()
        .route(
            "/u/{token}",
            get(unsubscribe::page)
                .route_layer(limited())
                .post(unsubscribe::confirm),
        )
        .route(
            "/u/{token}/erase",
            post(unsubscribe::erase).route_layer(limited()),
        )
        .route("/c/{token}", get(unsubscribe::click).route_layer(limited()))
        .route("/o/{token}", get(unsubscribe::open).route_layer(limited()));
    // Signup forms: a submission may send mail, so its own, lower limit per client.
    let signup_rate = limits::PublicRateState {
        rate: limits::PublicRate::per_minute(state.limits.signup_posts_per_minute),
        trusted_proxies: Arc::new(state.limits.trusted_proxies.clone()),
    };
    let signup_limited = axum::middleware::from_fn_with_state(signup_rate, limits::public_rate);
    let public = public
        .route(
            "/s/{register}",
            post(signup::submit)
                .route_layer(signup_limited)
                .merge(get(signup::form).route_layer(limited())),
        )
        .route(
            "/s/{register}/confirm/{token}",
            get(signup::confirm_page)
                .post(signup::confirm)
                .route_layer(limited()),
        );
    Router::new()
        .merge(public)
        .route("/healthz", get(healthz))
        .route("/hooks/{provider}", post(hooks::hook))
        .route("/metrics", get(admin::metrics_with_token))
        .route("/admin", get(admin::campaigns))
        .route("/admin/campaigns/{name}", get(admin::campaign))
        .route(
            "/admin/campaigns/{name}/{action}",
            post(admin::campaign_run_state),
        )
        .route("/admin/login", get(admin::login_page).post(admin::login))
        .route("/admin/logout", post(admin::logout))
        .route("/admin/bounces", get(admin::bounces))
        .route("/admin/bounces/{id}/reclassify", post(admin::reclassify))
        .route("/admin/bounces/{id}/{decision}", post(admin::decide))
        .route(
            "/admin/optouts",
            get(admin::optouts).post(admin::add_optout),
        )
        .route("/admin/erase", post(admin::erase))
        .route("/admin/review", get(admin::review_index))
        .route("/admin/review/{stem}", get(admin::review))
        .route("/admin/review/{stem}/approve", post(admin::approve))
        .fallback(unsubscribe::not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The router of the metrics listener: `/metrics` and `/healthz`, no authentication (the
/// listener's address is what protects it; loopback by default).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(admin::metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// For load balancers: 200 while the database answers, 503 otherwise (the instance itself
/// holds nothing that matters, so a healthy database means a healthy instance).
async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, &'static str) {
    match state.store.ping().await {
        Ok(()) => (axum::http::StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!(error = %e, "health check: the database does not answer");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable",
            )
        }
    }
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    response
}

/// Binds `listen` (and `metrics_listen`, if any), says where on stdout (the metrics address on
/// stderr), and serves until Ctrl-C or SIGTERM.
pub async fn serve(
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    state: AppState,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let metrics_listener = match metrics_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
        None => None,
    };
    println!("listening on http://{local}");
    tracing::info!(%local, "serving");
    if state.signup_mailer.is_some() {
        signup::use_case(&state).sweep_periodically();
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let limits = Arc::clone(&state.limits);
    let metrics = async {
        match metrics_listener {
            Some(listener) => {
                let local = listener.local_addr()?;
                eprintln!("metrics on http://{local}/metrics");
                tracing::info!(%local, "serving metrics");
                server::run(
                    listener,
                    metrics_router(state.clone()),
                    &limits,
                    until_stopped(stopped.clone()),
                )
                .await
            }
            None => Ok(()),
        }
    };
    let public = server::run(
        listener,
        router(state.clone()),
        &limits,
        until_stopped(stopped.clone()),
    );
    tokio::try_join!(public, metrics).map(|_| ())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
}
