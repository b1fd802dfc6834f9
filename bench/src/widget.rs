//! The chat widget's flow (spec §3.5–3.8): start a session, send a message
//! (answered asynchronously with a task id), then poll every 200 ms until
//! the task is complete. One flow is one operation of the closed loop.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, anyhow};
use hyper::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::{Client, Op, OpFuture, Req};

const POLL_EVERY: Duration = Duration::from_millis(200);
/// 30 s of polling at most, then the flow counts as failed.
const MAX_POLLS: usize = 150;

#[derive(Debug, Clone)]
pub struct WidgetFlow {
    chatbot: Uuid,
    /// Team key and the key user's email as `participant_remote_id`
    /// (spec §3.5 step 11); `None` starts anonymously.
    member: Option<(String, String)>,
}

pub enum Availability {
    /// `POST /api/chat/start/` is not routed yet.
    Missing,
    Ready(WidgetFlow),
}

impl WidgetFlow {
    fn start_req(&self) -> Result<Req> {
        let mut body = json!({"chatbot_id": self.chatbot, "session_data": {}});
        match &self.member {
            Some((key, email)) => {
                body["participant_remote_id"] = json!(email);
                Req::post_json("/api/chat/start/", &body).header("x-api-key", key)
            }
            None => Ok(Req::post_json("/api/chat/start/", &body)),
        }
    }

    fn authed(&self, mut req: Req, token: Option<&str>) -> Result<Req> {
        if let Some((key, _)) = &self.member {
            req = req.header("x-api-key", key)?;
        }
        if let Some(t) = token {
            req = req.header("x-session-token", t)?;
        }
        Ok(req)
    }

    /// Tries a start as a team member first, then anonymously (the keyless
    /// path the spec keeps open), and keeps whichever the server admits.
    pub async fn probe(
        addr: SocketAddr,
        chatbot: Uuid,
        key: &str,
        email: &str,
    ) -> Result<Availability> {
        let mut client = Client::new(addr);
        let member = WidgetFlow {
            chatbot,
            member: Some((key.to_string(), email.to_string())),
        };
        let (status, _) = client.send(&member.start_req()?).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Availability::Missing);
        }
        if status.is_success() {
            return Ok(Availability::Ready(member));
        }
        let anonymous = WidgetFlow {
            chatbot,
            member: None,
        };
        let (status, _) = client.send(&anonymous.start_req()?).await?;
        Ok(Availability::Ready(if status.is_success() {
            anonymous
        } else {
            member
        }))
    }

    async fn flow(&self, c: &mut Client) -> Result<bool> {
        let (status, body) = c.send(&self.start_req()?).await?;
        if !status.is_success() {
            return Ok(false);
        }
        let started: Value = serde_json::from_slice(&body)?;
        let session = started["session_id"]
            .as_str()
            .ok_or_else(|| anyhow!("start/ answered no session_id"))?
            .to_string();
        let token = started["session_token"].as_str().map(str::to_string);
        let send = self.authed(
            Req::post_json(
                format!("/api/chat/{session}/message/"),
                &json!({"message": "hello"}),
            ),
            token.as_deref(),
        )?;
        let (status, body) = c.send(&send).await?;
        if !status.is_success() {
            return Ok(false);
        }
        let sent: Value = serde_json::from_slice(&body)?;
        let task = sent["task_id"]
            .as_str()
            .ok_or_else(|| anyhow!("message/ answered no task_id"))?
            .to_string();
        let poll = self.authed(
            Req::get(format!("/api/chat/{session}/{task}/poll/")),
            token.as_deref(),
        )?;
        for _ in 0..MAX_POLLS {
            tokio::time::sleep(POLL_EVERY).await;
            let (status, body) = c.send(&poll).await?;
            if !status.is_success() {
                return Ok(false);
            }
            let polled: Value = serde_json::from_slice(&body)?;
            match polled["status"].as_str() {
                Some("complete") => return Ok(true),
                Some("processing") => {}
                _ => return Ok(false),
            }
        }
        Ok(false)
    }
}

impl Op for WidgetFlow {
    type State = Option<Client>;

    fn state(&self, addr: Option<SocketAddr>) -> Self::State {
        addr.map(Client::new)
    }

    fn call<'a>(&'a self, _worker: usize, client: &'a mut Self::State) -> OpFuture<'a> {
        Box::pin(async move {
            let client = client
                .as_mut()
                .ok_or_else(|| anyhow!("no server address"))?;
            self.flow(client).await
        })
    }
}
