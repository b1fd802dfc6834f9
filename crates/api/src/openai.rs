//! `POST /api/openai/{id}/chat/completions` (and `/v{version}/…`): OpenAI SDKs
//! talk to a chatbot. Every call is a new session seeded with the earlier
//! messages; the reply answers the last (user) message.
//!
//! Beyond the original: `"stream": true` answers OpenAI-format SSE chunks as the
//! provider streams, ending with `data: [DONE]`, and `usage` is filled. The turn
//! is persisted when the stream ends, or when it is cut (the turn runs on its
//! own task and finishes without the client).

use std::convert::Infallible;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use domain::messages::MessageRole;
use engine::TurnError;
use engine::turn::{OpenAiTurn, Prepared, Reply};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::body::JsonObject;
use crate::routes::Routes;
use crate::turns::{chatbot_id, detached, parse_version};
use crate::{ApiError, AppState};

pub fn router() -> Routes {
    Routes::new()
        .route(
            "/api/openai/{experiment_id}/chat/completions",
            post(completions),
        )
        .route(
            "/api/openai/{experiment_id}/{version}/chat/completions",
            post(completions_versioned),
        )
}

/// The OpenAI error envelope.
fn envelope(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"message": message.into(), "type": "error", "param": null, "code": null}})),
    )
        .into_response()
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ChatCompletionResponseMessage)]
pub struct MessageView {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ChatCompletionResponseChoices)]
pub struct ChoiceView {
    pub finish_reason: String,
    pub index: i32,
    pub message: MessageView,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreateChatCompletionResponse)]
pub struct CompletionView {
    pub id: String,
    pub choices: Vec<ChoiceView>,
    pub created: i64,
    pub model: String,
    pub object: String,
    #[schema(value_type = Object)]
    pub usage: Value,
}

fn usage_json(r: &Reply) -> Value {
    json!({
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "total_tokens": r.prompt_tokens + r.completion_tokens,
    })
}

/// Flattens a message's content: text, or text parts joined by one space.
fn content_text(content: Option<&Value>) -> Result<String, &'static str> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            for p in parts {
                if p.get("type").and_then(Value::as_str) != Some("text") {
                    return Err("Only text messages are supported");
                }
                texts.push(
                    p.get("text")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                );
            }
            Ok(texts.join(" "))
        }
        Some(_) => Err("Message content must be a string or a list of text parts"),
    }
}

// The body of a chat completion, as far as a chatbot uses it.
#[derive(Debug, ToSchema)]
#[schema(as = CreateChatCompletionRequest)]
pub struct CompletionRequest {
    // The conversation so far: every message but the last, which is `last`.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<(MessageRole, String)>,
    // The user message to answer.
    #[schema(ignore)]
    pub last: String,
    #[schema(ignore)]
    pub stream: bool,
    #[schema(ignore)]
    pub include_usage: bool,
    #[schema(ignore)]
    pub user: Option<String>,
}

/// Checks the request in the original's order; errors use the OpenAI envelope.
fn parse(body: &JsonObject) -> Result<CompletionRequest, String> {
    let bad = |m: &str| m.to_string();
    let messages = match body.0.get("messages") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(bad("messages must be a list")),
    };
    let mut converted = Vec::with_capacity(messages.len());
    for m in &messages {
        let Some(obj) = m.as_object() else {
            return Err(bad(
                "Each message must be an object with a role and content",
            ));
        };
        let role = obj
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let text = content_text(obj.get("content")).map_err(bad)?;
        converted.push((role, text));
    }
    let Some((last_role, last)) = converted.pop() else {
        return Err(bad("No messages provided"));
    };
    if last_role != "user" {
        return Err(bad("Last message must be a user message"));
    }
    let mut history = Vec::with_capacity(converted.len());
    let mut problems = Vec::new();
    for (i, (role, text)) in converted.into_iter().enumerate() {
        let stored = match MessageRole::from_api_name(&role) {
            Some(r) => r,
            None => {
                let other = &role;
                problems.push(format!(
                    "messages[{i}].role: \"{other}\" is not a valid choice."
                ));
                continue;
            }
        };
        if text.trim().is_empty() {
            problems.push(format!(
                "messages[{i}].content: This field may not be blank."
            ));
            continue;
        }
        history.push((stored, text));
    }
    if !problems.is_empty() {
        return Err(bad(&problems.join(" ")));
    }
    let user = match body.0.get("user") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    };
    Ok(CompletionRequest {
        messages: history,
        last,
        stream: body
            .0
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        include_usage: body
            .0
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        user,
    })
}

async fn handle(
    state: AppState,
    auth: domain::auth::AuthContext,
    id: &str,
    version: Option<i32>,
    body: JsonObject,
) -> Response {
    let chatbot = match chatbot_id(id) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    // The chatbot is looked up before the body is judged, as the original
    // does; the turn goes on with the catalog count read here.
    let d = &state.domain;
    let at = match d.catalog.refresh(d).await {
        Ok(at) => at,
        Err(e) => return ApiError::Domain(e).into_response(),
    };
    if let Err(e) = d.catalog.resolve(d, at, auth.team_id, chatbot, None).await {
        return ApiError::Domain(e).into_response();
    }
    let p = match parse(&body) {
        Ok(p) => p,
        Err(m) => return envelope(StatusCode::BAD_REQUEST, m),
    };
    let turn = OpenAiTurn {
        team_id: auth.team_id,
        user_id: auth.user_id,
        chatbot_id: chatbot,
        version,
        participant: p.user.clone(),
        history: p.messages,
        message: p.last,
        epoch: Some(at),
    };
    let engine = state.engine.clone();
    if !p.stream {
        return match detached(async move { engine.openai_completion(turn, None).await }).await {
            Ok(reply) => Json(CompletionView {
                id: reply.session_external_id.clone(),
                choices: vec![ChoiceView {
                    finish_reason: "stop".into(),
                    index: 0,
                    message: MessageView {
                        role: "assistant".into(),
                        content: reply.text.clone(),
                    },
                }],
                created: chrono::Utc::now().timestamp(),
                model: String::new(),
                object: "chat.completion".into(),
                usage: usage_json(&reply),
            })
            .into_response(),
            Err(e) => turn_failure(e),
        };
    }
    let prepared = match detached({
        let engine = engine.clone();
        async move { engine.openai_prepare(turn).await }
    })
    .await
    {
        Ok(p) => p,
        Err(TurnError::NotAllowed(refusal)) => return refused_stream(refusal),
        Err(e) => return turn_failure(e),
    };
    stream_response(state, prepared, p.include_usage)
}

fn turn_failure(e: TurnError) -> Response {
    match e {
        TurnError::NotAllowed(refusal) => refused(refusal),
        TurnError::Domain(d) => ApiError::Domain(d).into_response(),
        other => envelope(StatusCode::BAD_GATEWAY, other.public_message()),
    }
}

/// The allowlist's refusal as the assistant's answer, in a completion of no
/// session (nothing was stored).
fn refused(text: String) -> Response {
    Json(CompletionView {
        id: uuid::Uuid::new_v4().to_string(),
        choices: vec![ChoiceView {
            finish_reason: "stop".into(),
            index: 0,
            message: MessageView {
                role: "assistant".into(),
                content: text,
            },
        }],
        created: chrono::Utc::now().timestamp(),
        model: String::new(),
        object: "chat.completion".into(),
        usage: json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
    })
    .into_response()
}

/// [`refused`], streamed: the opening chunk, the text, the stop.
fn refused_stream(text: String) -> Response {
    let (id, created) = (
        uuid::Uuid::new_v4().to_string(),
        chrono::Utc::now().timestamp(),
    );
    let chunk = |delta: Value, finish: Value| {
        frame(&json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": "",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }))
    };
    let body = [
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": text}), Value::Null),
        chunk(json!({}), json!("stop")),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn frame(v: &Value) -> String {
    format!("data: {v}\n\n")
}

fn stream_response(state: AppState, p: Prepared, include_usage: bool) -> Response {
    let (frames_tx, frames_rx) = mpsc::channel::<String>(64);
    let id = p.session.external_id.clone();
    let created = chrono::Utc::now().timestamp();
    let chunk = move |delta: Value, finish: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": "",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    tokio::spawn(async move {
        let (delta_tx, mut delta_rx) = mpsc::channel::<String>(64);
        // Frames may fail to send once the client is gone; the turn carries on.
        let _ = frames_tx
            .send(frame(&chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )))
            .await;
        let run = state.engine.run_turn_at(
            &p.session,
            &p.chatbot,
            p.input_message_id,
            p.message.clone(),
            Some(delta_tx),
            Some(p.epoch),
        );
        let forward = async {
            while let Some(d) = delta_rx.recv().await {
                let _ = frames_tx
                    .send(frame(&chunk(json!({"content": d}), Value::Null)))
                    .await;
            }
        };
        let (result, ()) = tokio::join!(run, forward);
        match result {
            Ok(reply) => {
                let _ = frames_tx
                    .send(frame(&chunk(json!({}), json!("stop"))))
                    .await;
                if include_usage {
                    let mut u = chunk(json!({}), Value::Null);
                    u["choices"] = json!([]);
                    u["usage"] = usage_json(&reply);
                    let _ = frames_tx.send(frame(&u)).await;
                }
            }
            Err(e) => {
                let err = json!({"error": {"message": e.public_message(), "type": "error", "param": null, "code": null}});
                let _ = frames_tx.send(frame(&err)).await;
            }
        }
        let _ = frames_tx.send("data: [DONE]\n\n".to_string()).await;
    });
    let body = Body::from_stream(ReceiverStream::new(frames_rx).map(Ok::<_, Infallible>));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Chat Completions API for Experiments
#[utoipa::path(
    post,
    path = "/api/openai/{experiment_id}/chat/completions",
    operation_id = "openai_chat_completions",
    tag = "OpenAI",
    params(("experiment_id" = String, Path, description = "Experiment ID")),
    request_body = CompletionRequest,
    responses(
        (status = 200, body = CompletionView, description = "The reply; with `stream: true`, `text/event-stream` chunks"),
        (status = 404, description = "No chatbot with the given ID exists in the team"),
    ),
    security(("OAuth2" = ["chatbots:interact"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn completions(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<String>,
    body: JsonObject,
) -> Response {
    handle(state, auth, &id, None, body).await
}

/// Versioned Chat Completions API for Experiments
#[utoipa::path(
    post,
    path = "/api/openai/{experiment_id}/v{version}/chat/completions",
    operation_id = "openai_chat_completions_versioned",
    tag = "OpenAI",
    params(
        ("experiment_id" = String, Path, description = "Experiment ID"),
        ("version" = i32, Path, description = "Version number; 0 = the published version"),
    ),
    request_body = CompletionRequest,
    responses(
        (status = 200, body = CompletionView, description = "The reply; with `stream: true`, `text/event-stream` chunks"),
        (status = 404, description = "No chatbot with the given ID exists in the team"),
    ),
    security(("OAuth2" = ["chatbots:interact"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn completions_versioned(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((id, version)): Path<(String, String)>,
    body: JsonObject,
) -> Response {
    let Some(v) = parse_version(&version) else {
        return ApiError::Domain(domain::Error::not_found("Not found.")).into_response();
    };
    handle(state, auth, &id, Some(v), body).await
}
