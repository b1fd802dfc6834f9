//! `GET /api/sessions/{id}/traces/` (beyond the original's API v1): every
//! turn of a session with the pipeline nodes it ran — the path taken, each
//! node's input, output or error, duration, tokens and cost, the route a
//! router chose.

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::get;
use domain::traces::{self, SessionTrace, Span, TracedMessage};
use domain::{Error, pricing};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Auth;
use crate::error::Result;
use crate::routes::Routes;
use crate::views::datetime;

pub fn router() -> Routes {
    Routes::new().route("/api/sessions/{id}/traces/", get(list))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TraceMessage)]
pub struct TraceMessageView {
    pub content: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TraceNode)]
pub struct NodeView {
    pub node_id: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub input: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The keyword a router chose.
    pub route: Option<String>,
    pub llm_calls: i32,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// USD, as a decimal string.
    pub cost: String,
    /// The tools the node's model called, in order.
    pub tool_calls: Vec<ToolCallView>,
    /// What a Python node printed (capped).
    pub console_output: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TraceToolCall)]
pub struct ToolCallView {
    pub name: String,
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    /// What the tool answered the model.
    pub result: Option<String>,
    /// The error the model was told instead.
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Trace)]
pub struct TraceView {
    pub id: i64,
    /// `success` or `error`.
    pub status: String,
    pub version_number: i32,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub llm_calls: i32,
    pub created_at: String,
    /// The participant's message (none for bot-initiated messages).
    pub input_message: Option<TraceMessageView>,
    /// The reply (none when the turn failed).
    pub output_message: Option<TraceMessageView>,
    /// The node ids that ran, in order.
    pub path: Vec<String>,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SessionTraces)]
pub struct TracesView {
    pub results: Vec<TraceView>,
}

fn message_view(m: TracedMessage) -> TraceMessageView {
    TraceMessageView {
        content: m.content,
        created_at: datetime(m.created_at),
    }
}

fn node_view(s: Span) -> NodeView {
    NodeView {
        node_id: s.node_id,
        node_type: s.node_type,
        input: s.input,
        output: s.output,
        error: s.error,
        duration_ms: s.duration_ms,
        route: s.route,
        llm_calls: s.llm_calls,
        input_tokens: s.input_tokens,
        output_tokens: s.output_tokens,
        cost: pricing::format_e8(s.cost_e8),
        tool_calls: s
            .tool_calls
            .into_iter()
            .map(|c| ToolCallView {
                name: c.name,
                arguments: c.arguments,
                result: c.result,
                error: c.error,
                duration_ms: c.duration_ms,
            })
            .collect(),
        console_output: s.console_output,
    }
}

fn trace_view(t: SessionTrace) -> TraceView {
    TraceView {
        id: t.id,
        status: t.status.as_str().to_string(),
        version_number: t.version_number,
        duration_ms: t.duration_ms,
        error: t.error,
        llm_calls: t.llm_calls,
        created_at: datetime(t.created_at),
        input_message: t.input.map(message_view),
        output_message: t.output.map(message_view),
        path: t.spans.iter().map(|s| s.node_id.clone()).collect(),
        nodes: t.spans.into_iter().map(node_view).collect(),
    }
}

/// Session Traces
///
/// Beyond the original's API: the traces of a session's turns, oldest first,
/// with the pipeline nodes each ran.
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/traces/",
    operation_id = "session_traces",
    tag = "Experiment Sessions",
    params(("id" = String, Path, description = "ID of the session")),
    responses((status = 200, body = TracesView), (status = 404, description = "No such session")),
    security(("OAuth2" = ["sessions:read"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> Result<Json<TracesView>> {
    let session = domain::sessions::exists(&state.domain, auth.team_id, &id)
        .await?
        .ok_or_else(|| Error::not_found("Not found."))?;
    let traces = traces::of_session(&state.domain, session).await?;
    Ok(Json(TracesView {
        results: traces.into_iter().map(trace_view).collect(),
    }))
}
