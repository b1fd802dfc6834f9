//! The chat widget API as a widget on a page uses it: an embed key and an
//! `Origin`, against any server (a [`crate::TestApp`] or a launched process).

use std::time::{Duration, Instant};

use reqwest::{Client, Method, RequestBuilder};
use serde_json::{Value, json};

/// How long a chat task may stay `processing` before a poll gives up.
const TASK_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct WidgetClient {
    client: Client,
    base: String,
    key: String,
    origin: String,
}

impl WidgetClient {
    pub fn new(client: Client, base: &str, embed_key: &str, origin: &str) -> Self {
        Self {
            client,
            base: base.to_string(),
            key: embed_key.to_string(),
            origin: origin.to_string(),
        }
    }

    /// A request with the embed key and origin headers.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("X-Embed-Key", &self.key)
            .header("Origin", &self.origin)
    }

    /// `POST /api/chat/start/` for `bot`; must answer 201. Returns the session id.
    pub async fn start(&self, bot: impl std::fmt::Display) -> String {
        let r = self
            .request(Method::POST, "/api/chat/start/")
            .json(&json!({"chatbot_id": bot.to_string()}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 201, "start a widget session: {v}");
        v["session_id"].as_str().unwrap().to_string()
    }

    /// `POST /api/chat/{sid}/message/`: (status, body).
    pub async fn send(&self, sid: &str, message: &str) -> (u16, Value) {
        let r = self
            .request(Method::POST, &format!("/api/chat/{sid}/message/"))
            .json(&json!({"message": message}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// One `GET /api/chat/{sid}/{task}/poll/`: (status, body).
    pub async fn poll(&self, sid: &str, task: &str) -> (u16, Value) {
        let r = self
            .request(Method::GET, &format!("/api/chat/{sid}/{task}/poll/"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Polls a task until it is no longer processing; returns the last answer.
    pub async fn wait_task(&self, sid: &str, task: &str) -> (u16, Value) {
        let path = format!("/api/chat/{sid}/{task}/poll/");
        poll_until_done(task, || self.request(Method::GET, &path)).await
    }
}

/// Sends `request()` until the answer's `status` is not `processing`.
pub(crate) async fn poll_until_done(
    task: &str,
    request: impl Fn() -> RequestBuilder,
) -> (u16, Value) {
    let deadline = Instant::now() + TASK_DEADLINE;
    loop {
        let r = request().send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if v.get("status") != Some(&json!("processing")) {
            return (status, v);
        }
        assert!(
            Instant::now() < deadline,
            "chat task {task} still processing after {TASK_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
