//! WhatsApp webhooks, one per provider; each checks its provider's
//! signature before anything is stored, takes each message once (by the
//! provider's message id) through the push channels' one path
//! ([`push::accept`]) and answers at once: replies go out from jobs.
//!
//! Meta's Cloud API has one endpoint for every number
//! (`/channels/whatsapp/meta/incoming_message`): `GET` is the verification
//! handshake, answered for a provider whose verify token it presents;
//! `POST` carries notifications for any number of the business account,
//! split here by `phone_number_id`. The body's signature is checked with
//! each addressed channel's app secret before anything is stored (a bad or
//! missing one is 403); then each message is taken once (by its `wamid`),
//! persisted with its turn enqueued, and the call answered 200 at once: the
//! reply goes out from a job.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use channels::whatsapp_meta::{self as meta, MetaInbound};
use channels::{twilio, whatsapp_turn as turn};
use domain::channels::push::{self, Incoming, PushChannel};
use domain::channels::{Platform, whatsapp};
use domain::messaging::{self, Credentials, MessagingKind};

use crate::inbound::incoming;
use crate::routes::Routes;
use crate::{ApiError, AppState};

pub fn router() -> Routes {
    Routes::new()
        .route(
            "/channels/whatsapp/meta/incoming_message",
            get(meta_handshake).post(meta_webhook),
        )
        .route(
            "/channels/whatsapp/turn/{chatbot_id}/incoming_message",
            post(turn_webhook),
        )
        .route("/channels/twilio/incoming_message", post(twilio_webhook))
}

async fn credentials(state: &AppState, ch: &PushChannel) -> Result<Option<Credentials>, Response> {
    let Some(id) = ch.messaging_provider_id else {
        return Ok(None);
    };
    messaging::access(&state.domain, &state.domain.secrets, id)
        .await
        .map(|p| p.map(|p| p.credentials))
        .map_err(|e| ApiError::Domain(e).into_response())
}

async fn accept_all(
    state: &AppState,
    ch: &PushChannel,
    events: Vec<Incoming>,
) -> Result<usize, Response> {
    let n = push::accept(&state.domain, ch, events)
        .await
        .map_err(|e| ApiError::Domain(e).into_response())?;
    state.domain.wake_workers(n);
    Ok(n)
}

/// Turn.io: `POST /channels/whatsapp/turn/{chatbot id}/incoming_message`.
/// A provider with an HMAC secret refuses calls its signature does not
/// match (403); one without accepts them, as the original does.
async fn turn_webhook(
    State(state): State<AppState>,
    Path(chatbot_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&chatbot_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let ch = match whatsapp::of_chatbot(&state.domain, id, MessagingKind::Turnio).await {
        Ok(Some(ch)) => ch,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => return ApiError::Domain(e).into_response(),
    };
    let secret = match credentials(&state, &ch).await {
        Ok(Some(Credentials::Turnio { hmac_secret, .. })) => hmac_secret,
        Ok(_) => return StatusCode::NOT_FOUND.into_response(),
        Err(r) => return r,
    };
    if let Some(secret) = secret {
        let given = headers
            .get(turn::SIGNATURE_HEADER.to_ascii_lowercase().as_str())
            .and_then(|v| v.to_str().ok());
        if !turn::verify_signature(&secret, &body, given) {
            return StatusCode::FORBIDDEN.into_response();
        }
    }
    let messages = match turn::parse_webhook(&body) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable Turn webhook");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    match accept_all(&state, &ch, messages.into_iter().map(incoming).collect()).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(r) => r,
    }
}

/// Twilio: `POST /channels/twilio/incoming_message`, form-encoded, for
/// WhatsApp and SMS; the channel is the one on the `To` number (an SMS
/// channel for plain numbers), and the signature covers the URL
/// Twilio called (set `--public-url` behind a proxy so it is the same).
async fn twilio_webhook(
    State(state): State<AppState>,
    base: crate::url::BaseUrl,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    // Status callbacks and other platforms' messages: nothing to store.
    let Some(m) = twilio::parse_webhook(&params) else {
        return twiml();
    };
    let platform = if m.sms {
        Platform::Sms
    } else {
        Platform::Whatsapp
    };
    let channels =
        match whatsapp::on_address(&state.domain, platform, MessagingKind::Twilio, &m.to).await {
            Ok(c) => c,
            Err(e) => return ApiError::Domain(e).into_response(),
        };
    let Some(ch) = channels.into_iter().next() else {
        tracing::info!(to = %m.to, "a Twilio message for a number no channel has");
        return twiml();
    };
    let token = match credentials(&state, &ch).await {
        Ok(Some(Credentials::Twilio { auth_token, .. })) => auth_token,
        Ok(_) => return StatusCode::FORBIDDEN.into_response(),
        Err(r) => return r,
    };
    let url = match &base.query {
        Some(q) => format!("{}{}?{q}", base.origin, base.path),
        None => format!("{}{}", base.origin, base.path),
    };
    let given = headers
        .get(twilio::SIGNATURE_HEADER.to_ascii_lowercase().as_str())
        .and_then(|v| v.to_str().ok());
    if !twilio::verify_signature(&token, &url, &params, given) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match accept_all(&state, &ch, vec![incoming(m.inbound)]).await {
        Ok(_) => twiml(),
        Err(r) => r,
    }
}

/// An empty TwiML answer: nothing to say now (the reply is sent by a job).
fn twiml() -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
    )
        .into_response()
}

async fn meta_handshake(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (mode, token, challenge) = (
        q.get("hub.mode").map(String::as_str),
        q.get("hub.verify_token").map(String::as_str),
        q.get("hub.challenge").map(String::as_str),
    );
    let Some(given) = token else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let providers =
        match messaging::by_verify_token(&state.domain, &state.domain.secrets, given).await {
            Ok(p) => p,
            Err(e) => return ApiError::Domain(e).into_response(),
        };
    for p in providers {
        if let Credentials::MetaCloudApi { verify_token, .. } = &p.credentials
            && let Some(echo) = meta::verify_handshake(mode, token, challenge, verify_token)
        {
            return (StatusCode::OK, echo).into_response();
        }
    }
    StatusCode::FORBIDDEN.into_response()
}

async fn meta_webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match accept_meta(&state, &headers, &body).await {
        Ok(n) => {
            state.domain.wake_workers(n);
            StatusCode::OK.into_response()
        }
        Err(r) => r,
    }
}

async fn accept_meta(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<usize, Response> {
    let domain = &state.domain;
    let messages = meta::parse_webhook(body).map_err(|e| {
        tracing::warn!(error = %e, "unreadable WhatsApp notification");
        StatusCode::BAD_REQUEST.into_response()
    })?;
    let signature = headers
        .get(meta::SIGNATURE_HEADER.to_ascii_lowercase().as_str())
        .and_then(|v| v.to_str().ok());
    let mut by_number: Vec<(String, Vec<MetaInbound>)> = Vec::new();
    for m in messages {
        match by_number.iter_mut().find(|(n, _)| *n == m.phone_number_id) {
            Some((_, list)) => list.push(m),
            None => by_number.push((m.phone_number_id.clone(), vec![m])),
        }
    }
    // Every addressed channel checks the signature before anything is stored.
    let mut routed: Vec<(PushChannel, Vec<MetaInbound>)> = Vec::new();
    for (number, list) in by_number {
        let channels = whatsapp::by_address(domain, MessagingKind::MetaCloudApi, &number)
            .await
            .map_err(|e| ApiError::Domain(e).into_response())?;
        let Some(ch) = channels.into_iter().next() else {
            tracing::info!(phone_number_id = %number, "a WhatsApp notification for a number no channel has");
            continue;
        };
        let verified = matches!(
            credentials(state, &ch).await?,
            Some(Credentials::MetaCloudApi { app_secret, .. })
                if meta::verify_signature(&app_secret, body, signature)
        );
        if !verified {
            return Err(StatusCode::FORBIDDEN.into_response());
        }
        routed.push((ch, list));
    }
    let mut enqueued = 0;
    for (ch, list) in routed {
        let events = list.into_iter().map(|m| incoming(m.inbound)).collect();
        enqueued += push::accept(domain, &ch, events)
            .await
            .map_err(|e| ApiError::Domain(e).into_response())?;
    }
    Ok(enqueued)
}
