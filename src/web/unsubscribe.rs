//! `GET /u/{token}` shows what will happen; `POST /u/{token}` confirms it (from the page, or
//! as an RFC 8058 one-click request); `POST /u/{token}/erase` erases the person's data. A GET
//! never changes anything, because link scanners prefetch links.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::pages::{ConfirmPage, DonePage, ErasedPage, NotFoundPage, fill, masked, wording};
use crate::config::Locale;
use crate::store::UnsubscribeTarget;
use crate::suppress::{OptOutSource, TokenPurpose, verify};

const ONE_CLICK: &[u8] = b"List-Unsubscribe=One-Click";

pub async fn page(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    let target = match resolve(&app, &token).await {
        Ok(Some(t)) => t,
        Ok(None) => return not_found().await,
        Err(r) => return r,
    };
    let locale = locale_of(&app, &target);
    let w = wording(locale);
    let sender = &app.config.settings.sender.legal_name;
    render(ConfirmPage {
        lang: locale.as_str(),
        title: w.confirm_title,
        w,
        text: fill(w.confirm_text, &masked(target.email.as_str()), sender),
        token: &token,
        sender,
    })
}

pub async fn confirm(
    State(app): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let target = match resolve(&app, &token).await {
        Ok(Some(t)) => t,
        Ok(None) => return not_found().await,
        Err(r) => return r,
    };
    let one_click = contains(&body, ONE_CLICK);
    let source = if one_click {
        OptOutSource::OneClick
    } else {
        OptOutSource::Page
    };
    if let Err(e) = crate::suppress::opt_out(
        &app.store,
        &app.secret,
        &target.email,
        source,
        Some(target.campaign_id),
        None,
    )
    .await
    {
        return server_error(e);
    }
    if one_click {
        return (StatusCode::OK, "unsubscribed\n").into_response();
    }
    let locale = locale_of(&app, &target);
    let w = wording(locale);
    let sender = &app.config.settings.sender.legal_name;
    render(DonePage {
        lang: locale.as_str(),
        title: w.done_title,
        w,
        text: fill(w.done_text, &masked(target.email.as_str()), sender),
        token: &token,
        sender,
    })
}

pub async fn erase(
    State(app): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let target = match resolve(&app, &token).await {
        Ok(Some(t)) => t,
        Ok(None) => return not_found().await,
        Err(r) => return r,
    };
    if !contains(&body, b"confirm=erase") {
        return (
            StatusCode::BAD_REQUEST,
            "confirm the erasure from the page\n",
        )
            .into_response();
    }
    let locale = locale_of(&app, &target);
    // Erasure implies the marketing ban too; record it first so the opt-out queue shows it.
    let result = async {
        crate::suppress::opt_out(
            &app.store,
            &app.secret,
            &target.email,
            OptOutSource::Page,
            Some(target.campaign_id),
            None,
        )
        .await?;
        crate::suppress::erase(&app.store, &app.secret, &target.email).await
    }
    .await;
    if let Err(e) = result {
        return server_error(e);
    }
    let w = wording(locale);
    render(ErasedPage {
        lang: locale.as_str(),
        title: w.erased_title,
        w,
        sender: &app.config.settings.sender.legal_name,
    })
}

pub async fn not_found() -> Response {
    let page = NotFoundPage {
        lang: "fi",
        title: "404",
    }
    .render()
    .unwrap_or_else(|_| "not found".into());
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

/// The target of a token; `Ok(None)` for an invalid, tampered or no longer existing one.
async fn resolve(app: &AppState, token: &str) -> Result<Option<UnsubscribeTarget>, Response> {
    let Some(outbox_id) = verify(&app.secret, TokenPurpose::Unsubscribe, token) else {
        return Ok(None);
    };
    app.store
        .unsubscribe_target(outbox_id)
        .await
        .map_err(server_error)
}

fn locale_of(app: &AppState, target: &UnsubscribeTarget) -> Locale {
    target
        .locale
        .or_else(|| {
            app.config
                .registers
                .get(&target.register)
                .map(|r| r.default_locale)
        })
        .unwrap_or(Locale::En)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn render(page: impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => server_error(e),
    }
}

fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; please try again later\n",
    )
        .into_response()
}
