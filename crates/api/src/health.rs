//! Public operational endpoints: `GET /healthz` (readiness: the database
//! answers), `GET /livez` (liveness: the process serves HTTP, no I/O), and
//! `GET /metrics` (Prometheus text: requests served and SQL statements run).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::AppState;
use crate::routes::Routes;

/// Requests the server has answered (all routes).
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(pub Arc<AtomicU64>);

pub fn router() -> Routes {
    Routes::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/metrics", get(metrics))
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match state.domain.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": "ok"})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": "unreachable"})),
            )
        }
    }
}

async fn livez() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = format!(
        "# HELP chatstudio_http_requests_total HTTP requests answered.\n\
         # TYPE chatstudio_http_requests_total counter\n\
         chatstudio_http_requests_total {}\n\
         # HELP chatstudio_sql_statements_total SQL statements run.\n\
         # TYPE chatstudio_sql_statements_total counter\n\
         chatstudio_sql_statements_total {}\n",
        state.requests.0.load(Ordering::Relaxed),
        state.domain.db.statement_count(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Counts every request (the metrics scrape included).
pub async fn count_requests(
    State(counter): State<RequestCounter>,
    req: Request,
    next: Next,
) -> Response {
    counter.0.fetch_add(1, Ordering::Relaxed);
    next.run(req).await
}
