//! `GET /u/{token}` shows what will happen; `POST /u/{token}` confirms it (from the page, or
//! as an RFC 8058 one-click request); `POST /u/{token}/erase` erases the person's data. A GET
//! never changes anything, because link scanners prefetch links.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::pages::{ConfirmPage, DonePage, ErasedPage, NotFoundPage, PageValues, masked, wording};
use crate::model::Locale;
use crate::model::OptOutSource;
use crate::store::UnsubscribeTarget;
use crate::suppress::{TokenPurpose, verify};

/// RFC 8058 §3.1: the body is `List-Unsubscribe=One-Click`, sent as
/// `application/x-www-form-urlencoded` or as a `multipart/form-data` field.
fn is_one_click(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        multipart_field_is(body, b"List-Unsubscribe", b"One-Click")
    } else {
        body.split(|b| *b == b'&')
            .any(|pair| pair.trim_ascii() == b"List-Unsubscribe=One-Click")
    }
}

/// Whether a multipart body has a part named `name` whose value is `value`.
fn multipart_field_is(body: &[u8], name: &[u8], value: &[u8]) -> bool {
    let marker = [b"name=\"".as_slice(), name, b"\"".as_slice()].concat();
    let mut rest = body;
    while let Some(at) = find(rest, &marker) {
        rest = &rest[at + marker.len()..];
        if let Some(start) = find(rest, b"\r\n\r\n") {
            let content = &rest[start + 4..];
            let end = find(content, b"\r\n").unwrap_or(content.len());
            if content[..end].trim_ascii() == value {
                return true;
            }
        }
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub async fn page(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    let target = match resolve(&app, &token).await {
        Ok(Some(t)) => t,
        Ok(None) => return not_found().await,
        Err(r) => return r,
    };
    let locale = locale_of(&app, &target);
    let sender = &app.config.settings.sender.legal_name;
    let email = masked(target.email.as_str());
    let w = match wording(
        locale,
        &PageValues {
            email: &email,
            sender,
        },
    ) {
        Ok(w) => w,
        Err(e) => return server_error(e),
    };
    render(ConfirmPage {
        lang: locale.as_str(),
        title: &w.confirm_title,
        w: &w,
        text: w.confirm_text.clone(),
        token: &token,
        sender,
    })
}

pub async fn confirm(
    State(app): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = match resolve(&app, &token).await {
        Ok(Some(t)) => t,
        Ok(None) => return not_found().await,
        Err(r) => return r,
    };
    let one_click = is_one_click(&headers, &body);
    if !one_click && !contains(&body, b"confirm=unsubscribe") {
        return (
            StatusCode::BAD_REQUEST,
            "confirm from the page, or send List-Unsubscribe=One-Click\n",
        )
            .into_response();
    }
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
    let sender = &app.config.settings.sender.legal_name;
    let email = masked(target.email.as_str());
    let w = match wording(
        locale,
        &PageValues {
            email: &email,
            sender,
        },
    ) {
        Ok(w) => w,
        Err(e) => return server_error(e),
    };
    render(DonePage {
        lang: locale.as_str(),
        title: &w.done_title,
        w: &w,
        text: w.done_text.clone(),
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
    let sender = &app.config.settings.sender.legal_name;
    let w = match wording(locale, &PageValues { email: "", sender }) {
        Ok(w) => w,
        Err(e) => return server_error(e),
    };
    render(ErasedPage {
        lang: locale.as_str(),
        title: &w.erased_title,
        w: &w,
        sender,
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
    find(haystack, needle).is_some()
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

/// `GET /c/{token}`: a tracked link. Redirects only to a link of the message's own campaign;
/// anything else is a 404.
pub async fn click(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(signed) = verify(&app.secret, TokenPurpose::Click, &token) else {
        return not_found().await;
    };
    let (outbox_id, link) = (signed.div_euclid(64), signed.rem_euclid(64));
    match app.store.link_target(outbox_id, link).await {
        Ok(Some(url)) => {
            if let Err(e) = app.store.record_event(outbox_id, "click", Some(link)).await {
                tracing::warn!(error = %e, "cannot record a click");
            }
            axum::response::Redirect::to(&url).into_response()
        }
        Ok(None) => not_found().await,
        Err(e) => server_error(e),
    }
}

/// `GET /o/{token}`: the open pixel (a 1×1 transparent GIF).
pub async fn open(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    if let Some(outbox_id) = verify(&app.secret, TokenPurpose::Open, &token)
        && let Err(e) = app.store.record_event(outbox_id, "open", None).await
    {
        tracing::warn!(error = %e, "cannot record an open");
    }
    ([(axum::http::header::CONTENT_TYPE, "image/gif")], GIF).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        h
    }

    #[test]
    fn one_click_bodies() {
        let form = headers("application/x-www-form-urlencoded");
        assert!(is_one_click(&form, b"List-Unsubscribe=One-Click"));
        assert!(!is_one_click(&form, b"confirm=unsubscribe"));
        assert!(!is_one_click(&form, b"List-Unsubscribe=One-Click-Not"));
        let multipart = headers("multipart/form-data; boundary=xyz");
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--xyz--\r\n";
        assert!(is_one_click(&multipart, body));
        let other = b"--xyz\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nNo\r\n--xyz--\r\n";
        assert!(!is_one_click(&multipart, other));
    }
}
