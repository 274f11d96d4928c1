//! `POST /hooks/{ses,sendgrid,mailgun,postmark}`: provider callbacks. Thin: the request's
//! headers and body go to `app::webhooks::receive`, which verifies before it records; a refusal
//! becomes 400/401/403/503 with a short reason, a provider that is not on is 404.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::app::webhooks::{HookError, HookRequest, receive};
use crate::inbound::webhooks::sendgrid::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::inbound::webhooks::{Provider, RefusalKind};

pub async fn hook(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let provider = match provider.as_str() {
        "ses" => Provider::Ses,
        "sendgrid" => Provider::SendGrid,
        "mailgun" => Provider::Mailgun,
        "postmark" => Provider::Postmark,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let request = HookRequest {
        authorization: text(header::AUTHORIZATION.as_str()),
        sendgrid_signature: text(SIGNATURE_HEADER),
        sendgrid_timestamp: text(TIMESTAMP_HEADER),
        body: &body,
    };
    let bounces = &state.config.settings.bounces;
    match receive(
        &state.store,
        &state.secret,
        bounces,
        &state.webhooks,
        provider,
        request,
    )
    .await
    {
        Ok(received) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&received).unwrap_or_default(),
        )
            .into_response(),
        Err(HookError::Disabled(_)) => StatusCode::NOT_FOUND.into_response(),
        Err(HookError::Refused(r)) => {
            let status = match r.kind {
                RefusalKind::Malformed => StatusCode::BAD_REQUEST,
                RefusalKind::Unauthenticated => StatusCode::UNAUTHORIZED,
                RefusalKind::Forbidden => StatusCode::FORBIDDEN,
                RefusalKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, format!("refused: {}\n", r.reason)).into_response()
        }
        Err(HookError::Store(e)) => {
            tracing::error!(error = %e, "webhook: the database failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}
