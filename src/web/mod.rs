//! `fairsend serve`: the axum server for the public unsubscribe pages, the RFC 8058 one-click
//! endpoint, the `/admin` operations and compliance pages, `/metrics` and `/healthz`. Handlers
//! are thin: they check a token or a session, call library functions and render a page. No
//! state that matters is kept in memory; everything is in the database.

pub mod admin;
mod pages;
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

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub secret: Secret,
    pub config: Arc<ConfigDir>,
    /// `None`: the admin pages are disabled.
    pub admin_password: Option<admin::AdminPassword>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/u/{token}",
            get(unsubscribe::page).post(unsubscribe::confirm),
        )
        .route("/u/{token}/erase", post(unsubscribe::erase))
        .route("/c/{token}", get(unsubscribe::click))
        .route("/o/{token}", get(unsubscribe::open))
        .route("/healthz", get(healthz))
        .route("/metrics", get(admin::metrics))
        .route("/admin", get(admin::campaigns))
        .route("/admin/login", get(admin::login_page).post(admin::login))
        .route("/admin/logout", post(admin::logout))
        .route("/admin/bounces", get(admin::bounces))
        .route("/admin/bounces/{id}/reclassify", post(admin::reclassify))
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

/// Binds `listen`, says where on stdout, and serves until Ctrl-C.
pub async fn serve(listen: SocketAddr, state: AppState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    println!("listening on http://{local}");
    tracing::info!(%local, "serving");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
