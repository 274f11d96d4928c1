//! `/s/{register}`: the signup form (GET) and its submission (POST, rate-limited per client);
//! `/s/{register}/confirm/{token}`: the confirmation page (GET changes nothing, because link
//! scanners open links) and the confirmation (POST). Thin: the use case is `app::signup`.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::signup_pages::{ConfirmPage, FormPage, MessagePage, signup_wording};
use crate::app::signup::{self, LinkState, Signup, SignupError, SignupInput, Submitted};
use crate::compose::signup::fill;
use crate::config::Register;
use crate::model::Locale;

pub(super) fn use_case(app: &AppState) -> Signup {
    Signup {
        store: app.store.clone(),
        secret: app.secret.clone(),
        config: app.config.clone(),
        mailer: app.signup_mailer.clone(),
    }
}

pub async fn form(
    State(app): State<AppState>,
    Path(register): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(register) = signup::form_register(&app.config, &register) else {
        return super::unsubscribe::not_found().await;
    };
    let locale = pick_locale(&query, &headers, register);
    render_form(&app, register, locale, None, &SignupInput::default())
}

pub async fn submit(
    State(app): State<AppState>,
    Path(register): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(register) = signup::form_register(&app.config, &register) else {
        return super::unsubscribe::not_found().await;
    };
    let locale = pick_locale(&query, &headers, register);
    let value = |k: &str| form.get(k).cloned().unwrap_or_default();
    let input = SignupInput {
        email: value("email"),
        name: value("name"),
        company: value("company"),
        honeypot: value("homepage"),
        notice_sha256: value("notice"),
        client: super::limits::client_ip(&extensions, &headers, &app.limits.trusted_proxies),
    };
    let w = signup_wording(locale);
    match use_case(&app).submit(register, locale, &input).await {
        Ok(Submitted::Mailed | Submitted::NotMailed) => message(
            locale,
            w.sent_title,
            "sent",
            fill(
                w.sent_text,
                &[("hours", &signup::validity_hours(&app.config).to_string())],
            ),
            None,
        ),
        Ok(Submitted::NoticeChanged) => {
            render_form(&app, register, locale, Some(w.notice_changed), &input)
        }
        Err(SignupError::Address(_)) => bad_input(&app, register, locale, w.invalid_email, &input),
        Err(SignupError::Field { .. }) => {
            bad_input(&app, register, locale, w.invalid_field, &input)
        }
        Err(e) => server_error(e),
    }
}

pub async fn confirm_page(
    State(app): State<AppState>,
    Path((register, token)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(register) = signup::form_register(&app.config, &register) else {
        return super::unsubscribe::not_found().await;
    };
    match use_case(&app).link(register, &token).await {
        Ok(LinkState::Valid { locale }) => {
            let w = signup_wording(locale);
            render(ConfirmPage {
                lang: locale.as_str(),
                title: w.confirm_title,
                w,
                text: fill(
                    w.confirm_text,
                    &[
                        ("register", register.title_in(locale)),
                        ("sender", &app.config.settings.sender.legal_name),
                    ],
                ),
                action: format!("/s/{}/confirm/{token}", register.name),
            })
        }
        Ok(state) => link_result(&state, register, pick_locale(&query, &headers, register)),
        Err(e) => server_error(e),
    }
}

pub async fn confirm(
    State(app): State<AppState>,
    Path((register, token)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let Some(register) = signup::form_register(&app.config, &register) else {
        return super::unsubscribe::not_found().await;
    };
    let client = super::limits::client_ip(&extensions, &headers, &app.limits.trusted_proxies);
    match use_case(&app).confirm(register, &token, client).await {
        Ok(state) => link_result(&state, register, pick_locale(&query, &headers, register)),
        Err(e) => server_error(e),
    }
}

/// The page of a confirmed or invalid link (`fallback`: the language of an invalid one).
fn link_result(state: &LinkState, register: &Register, fallback: Locale) -> Response {
    match *state {
        LinkState::Confirmed { locale } | LinkState::Valid { locale } => {
            let w = signup_wording(locale);
            let text = fill(w.done_text, &[("register", register.title_in(locale))]);
            message(locale, w.done_title, "confirmed", text, None)
        }
        LinkState::Invalid => {
            let w = signup_wording(fallback);
            let link = (
                format!("/s/{}?lang={}", register.name, fallback.as_str()),
                w.form_link,
            );
            let mut response = message(
                fallback,
                w.invalid_title,
                "invalid",
                w.invalid_text.to_string(),
                Some(link),
            );
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

/// `?lang=`, else the best of Accept-Language, else the register's default locale.
fn pick_locale(
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    register: &Register,
) -> Locale {
    if let Some(locale) = query.get("lang").and_then(|l| Locale::parse(l)) {
        return locale;
    }
    let accepted = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    best_language(accepted).unwrap_or(register.default_locale)
}

/// The highest-weighted of fi, sv and en in an Accept-Language value (RFC 9110 §12.5.4).
fn best_language(accepted: &str) -> Option<Locale> {
    let mut best: Option<(f32, Locale)> = None;
    for item in accepted.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or("");
        let Some(locale) = Locale::parse(primary) else {
            continue;
        };
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, locale));
        }
    }
    best.map(|(_, l)| l)
}

fn render_form(
    app: &AppState,
    register: &Register,
    locale: Locale,
    error: Option<&str>,
    input: &SignupInput,
) -> Response {
    let notice = match signup::notice(&app.config, register, locale) {
        Ok(n) => n,
        Err(e) => return server_error(e),
    };
    let w = signup_wording(locale);
    let title = fill(w.form_title, &[("register", register.title_in(locale))]);
    render(FormPage {
        lang: locale.as_str(),
        title: &title,
        w,
        register: &register.name,
        intro: fill(w.form_intro, &[("register", register.title_in(locale))]),
        error,
        email: &input.email,
        name: &input.name,
        company: &input.company,
        notice_html: &notice.html,
        notice_sha256: &notice.sha256,
    })
}

fn bad_input(
    app: &AppState,
    register: &Register,
    locale: Locale,
    error: &str,
    input: &SignupInput,
) -> Response {
    let mut response = render_form(app, register, locale, Some(error), input);
    if response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

fn message(
    locale: Locale,
    title: &str,
    id: &str,
    text: String,
    form_link: Option<(String, &str)>,
) -> Response {
    render(MessagePage {
        lang: locale.as_str(),
        title,
        id,
        text,
        form_link,
    })
}

fn render(page: impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => server_error(e),
    }
}

fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "signup request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; please try again later\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(best_language("sv-FI,sv;q=0.9,en;q=0.8"), Some(Locale::Sv));
        assert_eq!(best_language("de-DE, en;q=0.5, fi;q=0.7"), Some(Locale::Fi));
        assert_eq!(best_language("de, fr"), None);
        assert_eq!(best_language("fi;q=0, en"), Some(Locale::En));
        assert_eq!(best_language(""), None);
    }
}
