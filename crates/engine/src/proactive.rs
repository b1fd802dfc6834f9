//! Messages the bot sends on its own: scheduled messages and `trigger_bot`.
//! The text is either given verbatim (`direct_to_user`) or written by the
//! chatbot's own LLM from an instruction, with the participant's data and the
//! recent history; it is stored like any reply and then delivered through
//! the session's channel (pushed to Telegram; the widget and the API pick it
//! up from the message poll).

use chrono::Utc;
use domain::chatbots::{self, Resolved};
use domain::messages::{self, Origin};
use domain::participants::data as pdata;
use domain::pipeline::Node;
use domain::prompt::PromptContext;
use domain::sessions::Session;
use domain::turns::{self, TurnOutcome, UsageItem};
use llm::{ChatMessage, CompletionRequest, Role};
use serde_json::json;

use crate::history;
use crate::turn::Reply;
use crate::{Engine, TurnError, prompt_context};

/// Said to the model when it writes on its own initiative.
const INITIATIVE: &str = "You are now writing a message to the user on your own initiative, following an \
     instruction from the people who run you. Write only the message itself, addressed to the user, in the \
     conversation's language and your usual tone.";

impl Engine {
    /// Writes (or takes verbatim) and stores a bot-initiated message in
    /// `session`, marked with the job that wrote it (`origin`).
    pub async fn bot_message(
        &self,
        session: &Session,
        chatbot: &Resolved,
        instruction: Option<&str>,
        verbatim: Option<&str>,
        origin: Option<Origin>,
        from_event: bool,
    ) -> Result<Reply, TurnError> {
        let started = std::time::Instant::now();
        let (text, usage, calls, mut metadata) = match (verbatim, instruction) {
            (Some(t), _) => (
                t.to_string(),
                Vec::new(),
                0,
                json!({"direct_to_user": true}),
            ),
            (None, Some(i)) => {
                let (t, u) = self.write_from_instruction(session, chatbot, i).await?;
                (t, u, 1, json!({}))
            }
            (None, None) => return Err(TurnError::Config("nothing to send".into())),
        };
        if let Some(o) = origin {
            o.mark(&mut metadata);
        }
        let outcome = TurnOutcome {
            reply: Some(text.clone()),
            reply_metadata: metadata,
            usage,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            llm_calls: calls,
            from_event,
            ..TurnOutcome::of(session, chatbot)
        };
        let recorded = turns::record(&self.domain, outcome).await?;
        Ok(Reply {
            text,
            session_external_id: session.external_id.clone(),
            message_id: recorded.reply_message_id,
            prompt_tokens: 0,
            completion_tokens: 0,
        })
    }

    async fn write_from_instruction(
        &self,
        session: &Session,
        chatbot: &Resolved,
        instruction: &str,
    ) -> Result<(String, Vec<UsageItem>), TurnError> {
        let valid = crate::turn::chatbot_pipeline(chatbot)?;
        let Some((node, params)) = valid.nodes.iter().find_map(|n| match &n.node {
            Node::Llm(p) => Some((n, p)),
            _ => None,
        }) else {
            return Err(TurnError::Config(
                "the chatbot has no LLM node to write messages with".into(),
            ));
        };
        let db = &self.domain;
        let (access, client) = self.provider(session.team_id, &params.provider).await?;
        let data = pdata::get(db, session.participant_id, chatbot.family_id).await?;
        let now = Utc::now();
        let tz = prompt_context::timezone(&data);
        let ctx = PromptContext {
            participant_data: data,
            session_state: session.state.clone(),
            temp_state: json!({}),
            current_datetime: prompt_context::day(now, tz),
        };
        let base = node
            .prompt
            .as_ref()
            .map(|t| t.render(&ctx))
            .unwrap_or_default();
        let system = format!(
            "{base}\n\n{INITIATIVE}\nThe current time is {}.",
            prompt_context::exact(now, tz)
        );
        let stored =
            messages::history(db, session.id, None, history::load_limit(&params.history)).await?;
        let mut plan_settings = params.history.clone();
        // No summary call here: a bot-initiated message sees the recent history only.
        plan_settings.mode = domain::pipeline::HistoryMode::MaxHistoryLength;
        let mut messages = history::plan(&stored, &plan_settings).messages;
        messages.push(ChatMessage::new(
            Role::User,
            format!("[Instruction] {instruction}"),
        ));
        let req = CompletionRequest {
            model: params.model.clone(),
            system: Some(system.trim().to_string()),
            messages,
            temperature: params.temperature,
            max_tokens: params.max_tokens,
            response_schema: None,
            tools: Vec::new(),
            built_in: Vec::new(),
        };
        let c = client.complete(&req).await?;
        let usage = crate::pipeline::usage_items(&access.kind, &c, &params.model);
        Ok((c.text, usage))
    }

    /// The version a bot-initiated message uses: the published one, else the working one.
    pub async fn published_for(&self, session: &Session) -> Result<Resolved, TurnError> {
        let db = &self.domain;
        let public = chatbots::public_id_of(db, session.chatbot_id.0).await?;
        let family = chatbots::find_row(db, session.team_id, public).await?;
        let head = chatbots::public_id_of(db, family.family_id.0).await?;
        Ok(chatbots::resolve(db, session.team_id, head, Some(0)).await?)
    }
}
