//! `/admin`: the operations and compliance pages, behind a password from the environment
//! (`FAIRSEND_ADMIN_PASSWORD`, compared in constant time, attempts limited per client and
//! globally). A session is a random token in a cookie (HttpOnly, SameSite=Strict, Secure on
//! https) whose hash is kept in the database with the password it was opened under, so logout
//! and a password change end sessions on every `serve` process; every state-changing form
//! carries a CSRF token derived from the session. Also `/metrics`, on its own listener or
//! behind a bearer token. Handlers call the use cases of `app/` (the same functions as the
//! CLI, so both audit alike) and compliance functions.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Form, FromRequest, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::AppState;
use crate::app::bounces::{BounceFilter, BouncesError};
use crate::compliance::{FooterVariant, footer_variants};
use crate::config::Campaign;
use crate::model::{EmailAddress, RunState};
use crate::suppress::{mac_hex, verify_mac_hex};

const COOKIE: &str = "fs_admin";
const CSRF_PURPOSE: &str = "fairsend/admin-csrf/v1";
const PASSWORD_PURPOSE: &str = "fairsend/admin-password/v1";
/// Names the admin password a session was opened under, without storing the password.
const PASSWORD_TAG_PURPOSE: &str = "fairsend/admin-password-tag/v1";
const METRICS_PURPOSE: &str = "fairsend/metrics-token/v1";
const SESSION_HOURS: i64 = 8;

/// The admin password; never printed.
#[derive(Clone)]
pub struct AdminPassword(String);

impl AdminPassword {
    /// `None` when the variable is unset (the pages are then disabled); an error when it is
    /// too short to be a password.
    pub fn from_env(var: &str) -> Result<Option<Self>, String> {
        match std::env::var(var) {
            Ok(p) if p.chars().count() >= 12 => Ok(Some(Self(p))),
            Ok(p) if !p.is_empty() => Err(format!("{var} must be at least 12 characters")),
            _ => Ok(None),
        }
    }
}

impl std::fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminPassword(redacted)")
    }
}

/// A keyed hash of the admin password: sessions opened under another password are no sessions.
pub fn password_tag(secret: &crate::suppress::Secret, password: &AdminPassword) -> String {
    mac_hex(secret, PASSWORD_TAG_PURPOSE, password.0.as_bytes())
}

/// Ends the sessions opened under any other admin password, on every `serve` process sharing
/// the database; returns how many. Called when `serve` starts.
pub async fn end_sessions_of_other_passwords(
    store: &crate::store::Store,
    secret: &crate::suppress::Secret,
    password: &AdminPassword,
) -> Result<u64, crate::store::StoreError> {
    store
        .end_sessions_of_other_passwords(&password_tag(secret, password))
        .await
}

/// The bearer token that opens `/metrics` on the public listener; never printed.
#[derive(Clone)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// `None` when the variable is unset; an error when it is too short to be a secret.
    pub fn from_env(var: &str) -> Result<Option<Self>, String> {
        match std::env::var(var) {
            Ok(t) if t.len() >= 24 && t.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(Self(t))),
            Ok(t) if !t.is_empty() => Err(format!(
                "{var} must be at least 24 printable characters without spaces (for example `openssl rand -hex 16`)"
            )),
            _ => Ok(None),
        }
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(redacted)")
    }
}

/// An open session: its cookie value (from which the CSRF token derives).
struct Session(String);

impl Session {
    /// What the database keeps of it: a leaked database opens no session.
    fn hash(&self) -> String {
        use sha2::Digest;
        data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(self.0.as_bytes()))
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<Session> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")))
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|v| Session(v.to_string()))
}

/// The session of the request, if it is open; `Err` when the database cannot tell.
async fn session(app: &AppState, headers: &HeaderMap) -> Result<Option<Session>, Response> {
    let (Some(password), Some(s)) = (&app.admin_password, cookie_value(headers)) else {
        return Ok(None);
    };
    match app
        .store
        .session_is_open(
            &s.hash(),
            &password_tag(&app.secret, password),
            crate::now_millis(),
        )
        .await
    {
        Ok(true) => Ok(Some(s)),
        Ok(false) => Ok(None),
        Err(e) => Err(server_error(e)),
    }
}

fn csrf(app: &AppState, s: &Session) -> String {
    mac_hex(&app.secret, CSRF_PURPOSE, s.0.as_bytes())
}

fn csrf_ok(app: &AppState, s: &Session, form: &HashMap<String, String>) -> bool {
    form.get("csrf")
        .is_some_and(|t| verify_mac_hex(&app.secret, CSRF_PURPOSE, s.0.as_bytes(), t))
}

/// Either the page for a logged-in operator, or why not.
enum Gate {
    Open(Session),
    Closed(Response),
}

async fn gate(app: &AppState, headers: &HeaderMap) -> Gate {
    if app.admin_password.is_none() {
        return Gate::Closed(disabled());
    }
    match session(app, headers).await {
        Ok(Some(s)) => Gate::Open(s),
        Ok(None) => Gate::Closed(Redirect::to("/admin/login").into_response()),
        Err(response) => Gate::Closed(response),
    }
}

macro_rules! open_or_return {
    ($app:expr, $headers:expr) => {
        match gate(&$app, &$headers).await {
            Gate::Open(s) => s,
            Gate::Closed(response) => return response,
        }
    };
}

fn disabled() -> Response {
    let page = DisabledPage.render().unwrap_or_default();
    (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response()
}

fn render(page: impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => server_error(e),
    }
}

fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "admin request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "the form is out of date or forged: reload the page and try again\n",
    )
        .into_response()
}

fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "admin/disabled.html")]
struct DisabledPage;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    failed: bool,
}

pub async fn login_page(State(app): State<AppState>) -> Response {
    if app.admin_password.is_none() {
        return disabled();
    }
    render(LoginPage { failed: false })
}

pub async fn login(State(app): State<AppState>, request: axum::extract::Request) -> Response {
    let Some(password) = &app.admin_password else {
        return disabled();
    };
    let client = match super::limits::client_ip(
        request.extensions(),
        request.headers(),
        &app.limits.trusted_proxies,
    ) {
        Some(ip) => ip.to_string(),
        None => "unknown".to_string(),
    };
    let Form(form) = match Form::<HashMap<String, String>>::from_request(request, &app).await {
        Ok(f) => f,
        Err(rejection) => return rejection.into_response(),
    };
    let now = crate::now_millis();
    let failures = match failures_unless_locked(&app, &client, now).await {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    let given = form.get("password").map(String::as_str).unwrap_or("");
    // Compare MACs of both, in constant time: neither length nor prefix leaks.
    let expected = mac_hex(&app.secret, PASSWORD_PURPOSE, password.0.as_bytes());
    if !verify_mac_hex(&app.secret, PASSWORD_PURPOSE, given.as_bytes(), &expected) {
        return wrong_password(&app, &client, now, failures.client_count).await;
    }
    open_session(&app, password, &client, now).await
}

/// The client's recent failed logins, or the refusal when it (or everyone) has too many.
async fn failures_unless_locked(
    app: &AppState,
    client: &str,
    now: i64,
) -> Result<crate::store::LoginFailures, Response> {
    let limits = &app.limits.login;
    let failures = match app.store.login_failures(client, limits.since(now)).await {
        Ok(f) => f,
        Err(e) => return Err(server_error(e)),
    };
    if let Some(locked) = limits.check(&failures, now) {
        tracing::warn!(
            client = %client,
            failures = locked.failures,
            global = locked.global,
            "admin login refused: too many failed attempts"
        );
        let wait = (locked.until - now).div_euclid(1000) + 1;
        return Err(super::limits::too_many_requests(
            u64::try_from(wait).unwrap_or(1),
        ));
    }
    Ok(failures)
}

/// Counts the failure and shows the form again.
async fn wrong_password(app: &AppState, client: &str, now: i64, earlier: i64) -> Response {
    let since = app.limits.login.since(now);
    if let Err(e) = app.store.record_login_failure(client, now, since).await {
        return server_error(e);
    }
    tracing::warn!(
        client = %client,
        failures = earlier + 1,
        "failed admin login"
    );
    (
        StatusCode::UNAUTHORIZED,
        Html(LoginPage { failed: true }.render().unwrap_or_default()),
    )
        .into_response()
}

/// A new session, its cookie, and the way to the admin pages.
async fn open_session(
    app: &AppState,
    password: &AdminPassword,
    client: &str,
    now: i64,
) -> Response {
    let mut token = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut token) {
        return server_error(e);
    }
    let session = Session(data_encoding::HEXLOWER.encode(&token));
    let expires = now + SESSION_HOURS * 3_600_000;
    let opened = async {
        app.store.clear_login_failures(client).await?;
        app.store
            .create_session(
                &session.hash(),
                &password_tag(&app.secret, password),
                now,
                expires,
            )
            .await
    }
    .await;
    if let Err(e) = opened {
        return server_error(e);
    }
    tracing::info!(client = %client, "admin login");
    let secure = if app.config.settings.public_base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        session.0,
        SESSION_HOURS * 3600
    );
    let mut response = Redirect::to("/admin").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

pub async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = open_or_return!(app, headers);
    if !csrf_ok(&app, &s, &form) {
        return forbidden();
    }
    if let Err(e) = app.store.end_session(&s.hash()).await {
        return server_error(e);
    }
    let mut response = Redirect::to("/admin/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("fs_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

struct CampaignRow {
    name: String,
    queued: i64,
    sending: i64,
    sent: i64,
    deferred: i64,
    failed: i64,
    suppressed: i64,
    rate: i64,
    ab: String,
}

#[derive(Template)]
#[template(path = "admin/campaigns.html")]
struct CampaignsPage {
    title: &'static str,
    csrf: String,
    refresh: bool,
    campaigns: Vec<CampaignRow>,
}

/// `/admin/campaigns/NAME`: the campaign's results report with its charts.
pub async fn campaign(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    use crate::app::report::{ReportError, campaign_report};
    let s = open_or_return!(app, headers);
    let delivered_after = app.config.settings.delivered_after;
    let run_state = match app.store.find_campaign_id(&name).await {
        Ok(Some(id)) => app.store.run_state(id).await.unwrap_or(RunState::Active),
        _ => RunState::Active,
    };
    match campaign_report(&app.store, &name, delivered_after, crate::now_millis()).await {
        Ok(report) => match super::campaign_page::page(report, csrf(&app, &s), run_state) {
            Ok(page) => render(page),
            Err(e) => server_error(e),
        },
        Err(ReportError::UnknownCampaign(_)) => {
            (StatusCode::NOT_FOUND, "no such campaign\n").into_response()
        }
        Err(e) => server_error(e),
    }
}

/// `POST /admin/campaigns/NAME/{pause,resume,cancel}`: the same use case as the command line,
/// audited with the operator's name; a cancel must be confirmed (it cannot be undone).
pub async fn campaign_run_state(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    use crate::app::lifecycle::{Action, change};
    let s = open_or_return!(app, headers);
    if !csrf_ok(&app, &s, &form) {
        return forbidden();
    }
    let action = match action.as_str() {
        "pause" => Action::Pause,
        "resume" => Action::Resume,
        "cancel" => Action::Cancel,
        _ => return (StatusCode::NOT_FOUND, "no such action\n").into_response(),
    };
    let by = form.get("by").map(|b| b.trim()).unwrap_or("");
    if by.is_empty() || by.chars().any(char::is_control) || by.len() > 200 {
        return (StatusCode::BAD_REQUEST, "give your name\n").into_response();
    }
    if action == Action::Cancel && form.get("confirm").map(String::as_str) != Some("yes") {
        return (
            StatusCode::BAD_REQUEST,
            "tick the box to confirm: a cancel cannot be undone\n",
        )
            .into_response();
    }
    let actor = format!("admin: {by}");
    match change(&app.config, &app.store, &name, action, &actor).await {
        Ok(_) => Redirect::to(&format!("/admin/campaigns/{name}")).into_response(),
        Err(crate::app::AppError::BadInput(_)) => {
            (StatusCode::NOT_FOUND, "no such campaign\n").into_response()
        }
        Err(crate::app::AppError::Refused(why)) => {
            (StatusCode::CONFLICT, format!("{why}\n")).into_response()
        }
        Err(e) => server_error(e),
    }
}

pub async fn campaigns(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let s = open_or_return!(app, headers);
    let counts = match app.store.campaign_counts(None).await {
        Ok(c) => c,
        Err(e) => return server_error(e),
    };
    let minute_ago = crate::now_millis() - 60_000;
    let mut rows = Vec::new();
    for c in counts {
        use crate::store::OutboxState as S;
        let rate = app
            .store
            .sent_since(&c.campaign, minute_ago)
            .await
            .unwrap_or(0);
        // A GET that refreshes every few seconds only reads: the campaign exists already.
        let state = match app.store.find_campaign_id(&c.campaign).await {
            Ok(Some(id)) => app.store.ab_state(id).await,
            Ok(None) => Ok(Default::default()),
            Err(e) => Err(e),
        };
        let ab = match state {
            Ok(state) => match (state.decision, state.test_finished_at) {
                (Some((_, d)), _) => format!(
                    "variant {} won (z = {:.2}, p = {:.4}{})",
                    d.winner + 1,
                    d.statistic,
                    d.p_value_or_probability,
                    if d.fallback_used { ", fallback" } else { "" }
                ),
                (None, Some(_)) => "test sent; waiting to decide".into(),
                (None, None) => String::new(),
            },
            Err(e) => return server_error(e),
        };
        rows.push(CampaignRow {
            queued: c.count(S::Queued),
            sending: c.count(S::Sending),
            sent: c.count(S::Sent),
            deferred: c.count(S::Deferred),
            failed: c.count(S::Failed),
            suppressed: c.count(S::Suppressed),
            rate,
            ab,
            name: c.campaign,
        });
    }
    let refresh = rows.iter().any(|r| r.queued + r.sending > 0);
    render(CampaignsPage {
        title: "Campaigns",
        csrf: csrf(&app, &s),
        refresh,
        campaigns: rows,
    })
}

struct BounceRow {
    id: i64,
    at: String,
    recipient: String,
    campaign: String,
    kind: String,
    class: String,
    reason: String,
    status: String,
    diagnostic: String,
    action: String,
    /// proven, unverified, confirmed or dismissed
    verification: String,
}

#[derive(Template)]
#[template(path = "admin/bounces.html")]
struct BouncesPage {
    title: &'static str,
    csrf: String,
    refresh: bool,
    bounces: Vec<BounceRow>,
    reasons: Vec<&'static str>,
    filter_class: String,
    filter_reason: String,
    filter_campaign: String,
}

pub async fn bounces(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = open_or_return!(app, headers);
    let want = |key: &str| q.get(key).map(|v| v.trim().to_string()).unwrap_or_default();
    let filter = BounceFilter {
        class: want("class"),
        reason: want("reason"),
        campaign: want("campaign"),
    };
    let entries = match crate::app::bounces::list(&app.store, 500, &filter).await {
        Ok(b) => b,
        Err(e) => return server_error(e),
    };
    let rows = entries.into_iter().map(bounce_row).collect();
    render(BouncesPage {
        title: "Bounces",
        csrf: csrf(&app, &s),
        refresh: false,
        bounces: rows,
        reasons: crate::app::bounces::reasons(),
        filter_class: filter.class,
        filter_reason: filter.reason,
        filter_campaign: filter.campaign,
    })
}

fn bounce_row(b: crate::store::BounceEntry) -> BounceRow {
    BounceRow {
        id: b.id,
        at: format_time(b.at),
        recipient: b.recipient.unwrap_or_else(|| "(unknown)".into()),
        campaign: b.campaign.unwrap_or_default(),
        kind: b.kind,
        class: b.class.unwrap_or_default(),
        reason: b.reason,
        status: b.status.unwrap_or_default(),
        diagnostic: b.diagnostic.unwrap_or_default().chars().take(160).collect(),
        action: b.action,
        verification: b.verification,
    }
}

pub async fn reclassify(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = open_or_return!(app, headers);
    if !csrf_ok(&app, &s, &form) {
        return forbidden();
    }
    let class = form.get("class").map(String::as_str).unwrap_or("");
    let reason = form.get("reason").map(String::as_str).unwrap_or("");
    match crate::app::bounces::reclassify(&app.store, id, class, reason, "admin").await {
        Ok(()) => Redirect::to("/admin/bounces").into_response(),
        Err(e) => bounce_error(e),
    }
}

/// The answer to a refused bounce operation.
fn bounce_error(e: BouncesError) -> Response {
    let refused = |status, text: &'static str| (status, text).into_response();
    match e {
        BouncesError::UnknownReason(_) => refused(StatusCode::BAD_REQUEST, "unknown reason\n"),
        BouncesError::UnknownClass(_) => {
            refused(StatusCode::BAD_REQUEST, "class must be hard or soft\n")
        }
        BouncesError::NoSuchBounce(_) => refused(StatusCode::NOT_FOUND, "no such bounce\n"),
        BouncesError::NotUnverified(_) => refused(
            StatusCode::CONFLICT,
            "this bounce is not waiting for a decision\n",
        ),
        e => server_error(e),
    }
}

/// An operator's decision on an unverified bounce: `confirm` acts on it as on a proven one,
/// `dismiss` keeps it recorded and acts on nothing. Both are audited by the store.
pub async fn decide(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((id, decision)): Path<(i64, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    use crate::store::BounceDecision;
    let s = open_or_return!(app, headers);
    if !csrf_ok(&app, &s, &form) {
        return forbidden();
    }
    let decision = match decision.as_str() {
        "confirm" => BounceDecision::Confirm,
        "dismiss" => BounceDecision::Dismiss,
        _ => return (StatusCode::NOT_FOUND, "no such decision\n").into_response(),
    };
    let settings = &app.config.settings.bounces;
    match crate::app::bounces::decide(&app.store, settings, id, decision, "admin").await {
        Ok(_) => Redirect::to("/admin/bounces").into_response(),
        Err(e) => bounce_error(e),
    }
}

struct OptoutRow {
    at: String,
    email: String,
    source: &'static str,
    campaign: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/optouts.html")]
struct OptoutsPage {
    title: &'static str,
    csrf: String,
    refresh: bool,
    notice: Option<String>,
    optouts: Vec<OptoutRow>,
}

pub async fn optouts(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = open_or_return!(app, headers);
    let entries = match crate::app::optout::list(&app.store).await {
        Ok(o) => o,
        Err(e) => return server_error(e),
    };
    let rows = entries
        .into_iter()
        .map(|o| OptoutRow {
            at: format_time(o.at),
            email: o.email.unwrap_or_else(|| "(erased)".into()),
            source: o.source.as_str(),
            campaign: o.campaign.unwrap_or_default(),
            detail: o.detail.unwrap_or_default(),
        })
        .collect();
    let notice = q.get("done").map(|d| match d.as_str() {
        "erased" => "The person's data was erased.".to_string(),
        _ => "The opt-out was recorded.".to_string(),
    });
    render(OptoutsPage {
        title: "Opt-outs",
        csrf: csrf(&app, &s),
        refresh: false,
        notice,
        optouts: rows,
    })
}

pub async fn add_optout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = open_or_return!(app, headers);
    if !csrf_ok(&app, &s, &form) {
        return forbidden();
    }
    let Some(email) = form.get("email").and_then(|e| EmailAddress::parse(e).ok()) else {
        return (StatusCode::BAD_REQUEST, "not a valid email address\n").into_response();
    };
    let reason = form
        .get("reason")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty() && !r.chars().any(char::is_control));
    let result = crate::app::optout::add(&app.store, &app.secret, &email, reason, "admin").await;
    match result {
        Ok(_) => Redirect::to("/admin/optouts?done=optout").into_response(),
        Err(e) => server_error(e),
    }
}

pub async fn erase(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = open_or_return!(app, headers);
    if !csrf_ok(&app, &s, &form) {
        return forbidden();
    }
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return (StatusCode::BAD_REQUEST, "confirm the erasure\n").into_response();
    }
    let Some(email) = form.get("email").and_then(|e| EmailAddress::parse(e).ok()) else {
        return (StatusCode::BAD_REQUEST, "not a valid email address\n").into_response();
    };
    let result = crate::app::optout::erase(&app.store, &app.secret, &email, "admin").await;
    match result {
        Ok(_) => Redirect::to("/admin/optouts?done=erased").into_response(),
        Err(e) => server_error(e),
    }
}

/// The campaign files of the configuration directory, by file stem.
fn campaign_files(app: &AppState) -> Vec<(String, Campaign)> {
    let dir = app.config.dir.join("campaigns");
    let mut out: Vec<(String, Campaign)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            app.config.load_campaign(&p).ok().map(|c| (stem, c))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[derive(Template)]
#[template(path = "admin/review_index.html")]
struct ReviewIndexPage {
    title: &'static str,
    csrf: String,
    refresh: bool,
    campaigns: Vec<(String, String)>,
}

pub async fn review_index(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let s = open_or_return!(app, headers);
    let campaigns = campaign_files(&app)
        .into_iter()
        .map(|(stem, c)| (c.name, stem))
        .collect();
    render(ReviewIndexPage {
        title: "Compliance review",
        csrf: csrf(&app, &s),
        refresh: false,
        campaigns,
    })
}

#[derive(Template)]
#[template(path = "admin/review.html")]
struct ReviewPage {
    title: &'static str,
    csrf: String,
    refresh: bool,
    campaign: String,
    stem: String,
    approval_state: String,
    variants: Vec<FooterVariant>,
}

async fn variants_of(
    app: &AppState,
    stem: &str,
) -> Result<Option<(Campaign, Vec<FooterVariant>)>, String> {
    let Some((_, campaign)) = campaign_files(app).into_iter().find(|(s, _)| s == stem) else {
        return Ok(None);
    };
    let variants = footer_variants(&app.config, &campaign, &app.store)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some((campaign, variants)))
}

pub async fn review(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(stem): Path<String>,
) -> Response {
    let s = open_or_return!(app, headers);
    let (campaign, variants) = match variants_of(&app, &stem).await {
        Ok(Some(found)) => found,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such campaign\n").into_response(),
        Err(e) => return server_error(e),
    };
    let approval_state = match app.store.latest_approval(&campaign.name).await {
        Ok(None) => "Not approved yet.".to_string(),
        Ok(Some(a)) => {
            let gaps = crate::compliance::review::approval_gaps(&a, &variants);
            if gaps.is_empty() {
                format!(
                    "Approved by {} on {}; the footers are unchanged since.",
                    a.approved_by,
                    format_time(a.approved_at)
                )
            } else {
                format!(
                    "Approved by {} on {}, but {} variant(s) changed or are new since: {}.",
                    a.approved_by,
                    format_time(a.approved_at),
                    gaps.len(),
                    gaps.iter()
                        .map(|(v, _)| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }
        Err(e) => return server_error(e),
    };
    render(ReviewPage {
        title: "Compliance review",
        csrf: csrf(&app, &s),
        refresh: false,
        campaign: campaign.name,
        stem,
        approval_state,
        variants,
    })
}

pub async fn approve(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(stem): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    use crate::app::approve::{ApproveError, approve, approver_name};
    let s = open_or_return!(app, headers);
    if !csrf_ok(&app, &s, &form) {
        return forbidden();
    }
    let approver = form.get("approver").map(String::as_str).unwrap_or("");
    if approver_name(approver).is_err() {
        return (StatusCode::BAD_REQUEST, "give the approver's name\n").into_response();
    }
    let Some((_, campaign)) = campaign_files(&app).into_iter().find(|(s, _)| *s == stem) else {
        return (StatusCode::NOT_FOUND, "no such campaign\n").into_response();
    };
    match approve(&app.config, &app.store, &campaign, approver).await {
        Ok(_) => Redirect::to(&format!("/admin/review/{stem}")).into_response(),
        Err(ApproveError::NothingToApprove) => (
            StatusCode::BAD_REQUEST,
            "nothing to approve: no eligible recipient\n",
        )
            .into_response(),
        Err(e) => server_error(e),
    }
}

/// `/metrics` on the public listener: only with `FAIRSEND_METRICS_TOKEN` set, and only to a
/// request bearing it (compared in constant time).
pub async fn metrics_with_token(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = &app.metrics_token else {
        return super::unsubscribe::not_found().await;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = mac_hex(&app.secret, METRICS_PURPOSE, token.0.as_bytes());
    if !verify_mac_hex(&app.secret, METRICS_PURPOSE, given.as_bytes(), &expected) {
        let mut response = (StatusCode::UNAUTHORIZED, "bearer token required\n").into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"fairsend metrics\""),
        );
        return response;
    }
    metrics(State(app)).await
}

/// Prometheus text exposition of what the database holds.
pub async fn metrics(State(app): State<AppState>) -> Response {
    let m = match app.store.metrics().await {
        Ok(m) => m,
        Err(e) => return server_error(e),
    };
    // Label values escape backslash, double quote and newline (exposition format 0.0.4).
    let esc = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out = String::new();
    out.push_str("# HELP fairsend_messages Outbox rows by campaign and state.\n# TYPE fairsend_messages gauge\n");
    for (campaign, state, n) in &m.messages {
        out.push_str(&format!(
            "fairsend_messages{{campaign=\"{}\",state=\"{}\"}} {n}\n",
            esc(campaign),
            esc(state)
        ));
    }
    out.push_str("# HELP fairsend_bounces Inbound reports by class (hard, soft) or kind (complaint, auto_reply, delivered).\n# TYPE fairsend_bounces gauge\n");
    for (class, n) in &m.bounces {
        out.push_str(&format!(
            "fairsend_bounces{{class=\"{}\"}} {n}\n",
            esc(class)
        ));
    }
    out.push_str("# HELP fairsend_optouts Opt-outs by source.\n# TYPE fairsend_optouts gauge\n");
    for (source, n) in &m.optouts {
        out.push_str(&format!(
            "fairsend_optouts{{source=\"{}\"}} {n}\n",
            esc(source)
        ));
    }
    out.push_str("# HELP fairsend_smtp_latency_seconds Duration of the SMTP transactions of sent messages.\n# TYPE fairsend_smtp_latency_seconds histogram\n");
    for (le, n) in crate::store::LATENCY_BUCKETS_MS
        .iter()
        .zip(&m.latency_buckets)
    {
        out.push_str(&format!(
            "fairsend_smtp_latency_seconds_bucket{{le=\"{}\"}} {n}\n",
            *le as f64 / 1000.0
        ));
    }
    out.push_str(&format!(
        "fairsend_smtp_latency_seconds_bucket{{le=\"+Inf\"}} {}\n",
        m.latency_count
    ));
    out.push_str(&format!(
        "fairsend_smtp_latency_seconds_sum {}\n",
        m.latency_sum_ms as f64 / 1000.0
    ));
    out.push_str(&format!(
        "fairsend_smtp_latency_seconds_count {}\n",
        m.latency_count
    ));
    out.push_str("# HELP fairsend_queue_depth Outbox rows waiting to be sent (queued or deferred).\n# TYPE fairsend_queue_depth gauge\n");
    out.push_str(&format!("fairsend_queue_depth {}\n", m.queue_depth));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
