//! A slow OpenAI-compatible provider on loopback: every chat completion takes
//! two seconds, so many turns are in flight at once and the server's memory
//! per waiting turn shows.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const LATENCY: Duration = Duration::from_secs(2);

async fn completion(Json(req): Json<Value>) -> Json<Value> {
    tokio::time::sleep(LATENCY).await;
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("gpt-4o-mini")
        .to_string();
    Json(json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Brief."},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}
    }))
}

/// A running fake provider; dropping it stops serving.
pub struct FakeOpenAi {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOpenAi {
    pub async fn start() -> Result<FakeOpenAi> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the fake provider")?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/chat/completions", post(completion))
            .route("/v1/chat/completions", post(completion));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeOpenAi { addr, task })
    }
}
