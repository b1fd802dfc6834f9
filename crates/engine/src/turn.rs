//! The stages of a turn: resolve participant → resolve session → persist the
//! human message → run the pipeline of the selected version → persist the
//! reply with usage and a trace. The human message is committed before the
//! provider is called and no database connection is held while waiting on it;
//! the reply, usage, trace and session updates commit together afterwards. A
//! failed provider leaves the human message and an error trace.

use std::time::Instant;

use std::sync::Arc;

use domain::catalog::Epoch;
use domain::channels::Platform;
use domain::chatbots::Resolved;
use domain::messages::{self, MessageRole};
use domain::participants::{self, Participant};
use domain::pipeline::{HistoryScope, Pipeline, ValidPipeline};
use domain::sessions::{self, EndedBy, NewSession, Session};
use domain::turns::{self, TurnChanges, TurnOutcome};
use domain::{MessageId, ParticipantId, TeamId, UserId};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::pipeline::{Failure, RunOutput, spent};
use crate::run_input::Reading;
use crate::{Engine, TurnError};

pub const RESET_REPLY: &str = "Conversation reset";

/// A message to the channels API (`/channels/api/{id}/incoming_message`).
#[derive(Debug, Clone)]
pub struct ApiMessage {
    pub team_id: TeamId,
    pub user_id: Option<UserId>,
    pub chatbot_id: Uuid,
    pub version: Option<i32>,
    pub session: Option<String>,
    pub message: String,
}

/// A call of the OpenAI-compatible endpoint: a new session seeded with the
/// earlier messages, answering the last (user) one.
#[derive(Debug, Clone)]
pub struct OpenAiTurn {
    pub team_id: TeamId,
    pub user_id: Option<UserId>,
    pub chatbot_id: Uuid,
    pub version: Option<i32>,
    /// Participant identifier (the request's `user`, else the caller's email).
    pub participant: Option<String>,
    /// Earlier messages, in order.
    pub history: Vec<(MessageRole, String)>,
    pub message: String,
    /// The catalog count the caller read for this turn, if it did.
    pub epoch: Option<Epoch>,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub text: String,
    pub session_external_id: String,
    pub message_id: Option<MessageId>,
    /// Input tokens of every call in the turn (cached and cache writes included).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A turn whose human message is persisted and whose session exists: what is
/// left is running it (the OpenAI endpoint answers the session id first when streaming).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub session: Session,
    pub chatbot: Arc<Resolved>,
    pub input_message_id: MessageId,
    pub message: String,
    /// The catalog count read when the turn began.
    pub epoch: Epoch,
}

fn not_found() -> TurnError {
    TurnError::Domain(domain::Error::not_found("Not found."))
}

impl Engine {
    /// The participant a turn is for, unless the allowlist of the version
    /// that runs keeps them out (then nothing of them is stored).
    async fn participant_for(
        &self,
        team_id: TeamId,
        user_id: Option<UserId>,
        identifier: Option<String>,
        chatbot: &Resolved,
        at: Epoch,
    ) -> Result<Participant, TurnError> {
        let domain = &self.domain;
        let identifier = match (identifier, user_id) {
            (Some(i), _) if !i.trim().is_empty() => i.trim().to_string(),
            (_, Some(u)) => domain.catalog.email(domain, at, u).await?.to_string(),
            _ => {
                return Err(TurnError::Domain(domain::Error::field(
                    "participant",
                    "This field is required.",
                )));
            }
        };
        let onboarding = domain::onboarding::of_config(&chatbot.config);
        if let Some(refusal) =
            domain::onboarding::refusal(domain, team_id, &onboarding, &identifier).await?
        {
            return Err(TurnError::NotAllowed(refusal));
        }
        Ok(
            participants::get_or_create(domain, team_id, Platform::Api, &identifier, user_id)
                .await?,
        )
    }

    pub async fn api_message(&self, m: ApiMessage) -> Result<Reply, TurnError> {
        let db = &self.domain;
        let at = db.catalog.refresh(db).await?;
        // The session binds to the row the id names; the version that runs is resolved apart.
        let addressed = db.catalog.find_row(db, at, m.team_id, m.chatbot_id).await?;
        let chatbot = db
            .catalog
            .resolve(db, at, m.team_id, m.chatbot_id, m.version)
            .await?;
        let participant = self
            .participant_for(m.team_id, m.user_id, None, &chatbot, at)
            .await?;
        let session = match &m.session {
            // An explicit session must be the caller's own, with this chatbot, on the API channel.
            Some(external_id) => {
                let s = sessions::by_external_id(&self.domain, m.team_id, external_id)
                    .await?
                    .filter(|s| {
                        s.chatbot_id == addressed.row_id
                            && s.participant_id == participant.id
                            && s.platform == Some(Platform::Api)
                    })
                    .ok_or_else(not_found)?;
                Some(s)
            }
            None => {
                let open = sessions::latest_open(
                    &self.domain,
                    m.team_id,
                    participant.id,
                    addressed.row_id,
                    None,
                )
                .await?;
                if m.message.trim().eq_ignore_ascii_case("/reset") {
                    let new = self
                        .new_session(m.team_id, participant.id, &addressed, m.version, at)
                        .await?;
                    let mut tx = self.domain.begin().await?;
                    if let Some(s) = &open {
                        sessions::end(&mut tx, m.team_id, s.id, EndedBy::User).await?;
                    }
                    let s = sessions::create(&tx, new).await?;
                    tx.commit().await?;
                    return Ok(Reply {
                        text: RESET_REPLY.into(),
                        session_external_id: s.external_id,
                        message_id: None,
                        prompt_tokens: 0,
                        completion_tokens: 0,
                    });
                }
                open
            }
        };
        // The API channel is only looked up when a session has to be opened.
        let new = match &session {
            Some(_) => NewSession {
                team_id: m.team_id,
                participant_id: participant.id,
                chatbot_id: addressed.row_id,
                channel_id: None,
                platform: None,
                version_number: 0,
                state: json!({}),
                epoch: None,
            },
            None => {
                self.new_session(m.team_id, participant.id, &addressed, m.version, at)
                    .await?
            }
        };
        let (session, input_id) = turns::begin(&self.domain, session, new, &[], &m.message).await?;
        self.run_turn_at(&session, &chatbot, input_id, m.message, None, Some(at))
            .await
    }

    async fn new_session(
        &self,
        team_id: TeamId,
        participant_id: ParticipantId,
        chatbot: &Resolved,
        version: Option<i32>,
        at: Epoch,
    ) -> Result<NewSession, TurnError> {
        let db = &self.domain;
        Ok(NewSession {
            team_id,
            participant_id,
            chatbot_id: chatbot.row_id,
            channel_id: Some(db.catalog.api_channel(db, at, team_id).await?),
            platform: Some(Platform::Api),
            version_number: version.unwrap_or(0),
            state: json!({}),
            epoch: Some(at),
        })
    }

    pub async fn openai_completion(
        &self,
        t: OpenAiTurn,
        stream: Option<mpsc::Sender<String>>,
    ) -> Result<Reply, TurnError> {
        let p = self.openai_prepare(t).await?;
        self.run_turn_at(
            &p.session,
            &p.chatbot,
            p.input_message_id,
            p.message,
            stream,
            Some(p.epoch),
        )
        .await
    }

    /// Creates the session seeded with the earlier messages and persists the last one.
    pub async fn openai_prepare(&self, t: OpenAiTurn) -> Result<Prepared, TurnError> {
        let db = &self.domain;
        let at = match t.epoch {
            Some(at) => at,
            None => db.catalog.refresh(db).await?,
        };
        let addressed = db.catalog.find_row(db, at, t.team_id, t.chatbot_id).await?;
        let chatbot = db
            .catalog
            .resolve(db, at, t.team_id, t.chatbot_id, t.version)
            .await?;
        let participant = self
            .participant_for(t.team_id, t.user_id, t.participant.clone(), &chatbot, at)
            .await?;
        let new = self
            .new_session(t.team_id, participant.id, &addressed, t.version, at)
            .await?;
        let (session, input_id) =
            turns::begin(&self.domain, None, new, &t.history, &t.message).await?;
        Ok(Prepared {
            session,
            chatbot,
            input_message_id: input_id,
            message: t.message,
            epoch: at,
        })
    }

    /// Runs the pipeline for a persisted human message and records the outcome.
    pub async fn run_turn(
        &self,
        session: &Session,
        chatbot: &Resolved,
        input_message_id: MessageId,
        text: String,
        stream: Option<mpsc::Sender<String>>,
    ) -> Result<Reply, TurnError> {
        self.run_turn_at(session, chatbot, input_message_id, text, stream, None)
            .await
    }

    /// `run_turn` for a turn that read the catalog count `at` when it began
    /// (its provider and prices then come from the catalog).
    pub async fn run_turn_at(
        &self,
        session: &Session,
        chatbot: &Resolved,
        input_message_id: MessageId,
        text: String,
        stream: Option<mpsc::Sender<String>>,
        at: Option<Epoch>,
    ) -> Result<Reply, TurnError> {
        let started = Instant::now();
        let result = self
            .execute(session, chatbot, input_message_id, text, stream, at)
            .await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let base = TurnOutcome {
            input_message_id: Some(input_message_id),
            duration_ms,
            epoch: at,
            ..TurnOutcome::of(session, chatbot)
        };
        let run = match result {
            Ok(run) => run,
            Err(failure) => {
                let (usage, llm_calls) = spent(&failure.spans);
                let outcome = TurnOutcome {
                    error: Some(failure.describe()),
                    llm_calls,
                    usage,
                    spans: failure.spans,
                    ..base
                };
                if let Err(re) = turns::record(&self.domain, outcome).await {
                    tracing::error!(error = %re.chain(), "recording a failed turn");
                }
                tracing::warn!(session = %session.external_id, error = %failure.error, "turn failed");
                return Err(failure.error);
            }
        };
        let (usage, llm_calls) = spent(&run.spans);
        let (mut prompt_tokens, mut completion_tokens) = (0u64, 0u64);
        for u in &usage {
            let q = u64::try_from(u.quantity).unwrap_or(0);
            match u.kind {
                domain::pricing::ServiceKind::Output => completion_tokens += q,
                _ => prompt_tokens += q,
            }
        }
        let reply = run.reply.clone();
        let changes = TurnChanges {
            family_id: base.changes.family_id,
            ..run.changes
        };
        let outcome = TurnOutcome {
            // A run that waits for the next input says nothing.
            reply: (!run.waiting).then_some(run.reply),
            usage,
            llm_calls,
            checkpoint: run
                .checkpoint
                .map(|(at, s)| (at.map_or(input_message_id, MessageId), s)),
            spans: run.spans,
            changes,
            ..base
        };
        let recorded = turns::record(&self.domain, outcome).await?;
        Ok(Reply {
            text: reply,
            session_external_id: session.external_id.clone(),
            message_id: recorded.reply_message_id,
            prompt_tokens,
            completion_tokens,
        })
    }

    async fn execute(
        &self,
        session: &Session,
        chatbot: &Resolved,
        input_message_id: MessageId,
        text: String,
        stream: Option<mpsc::Sender<String>>,
        at: Option<Epoch>,
    ) -> Result<RunOutput, Failure> {
        let valid = chatbot_pipeline(chatbot)?;
        let limit = global_history_limit(&valid);
        let history =
            messages::history(&self.domain, session.id, Some(input_message_id), limit).await?;
        let mut run = self
            .run_input(Reading {
                team_id: session.team_id,
                session: Some((session.id, &session.state)),
                participant_id: Some(session.participant_id),
                family_id: chatbot.family_id,
                pipeline: &valid,
                history: &history,
                input_message_id: Some(input_message_id),
                input: text,
                actions: chatbot.actions.as_ref(),
                epoch: at,
            })
            .await?;
        run.stream = stream;
        self.run_pipeline(run).await
    }
}

/// A chatbot version's pipeline, validated.
pub fn chatbot_pipeline(chatbot: &Resolved) -> Result<ValidPipeline, TurnError> {
    let pipeline = Pipeline::from_config(&chatbot.config)?
        .ok_or_else(|| TurnError::Config("the chatbot has no pipeline".into()))?;
    Ok(pipeline.validate()?)
}

/// How many session messages the nodes with a global history need.
pub fn global_history_limit(valid: &ValidPipeline) -> u64 {
    valid
        .nodes
        .iter()
        .filter_map(|n| n.node.history())
        .filter(|h| h.scope("") == Some(HistoryScope::Session))
        .map(crate::history::load_limit)
        .max()
        .unwrap_or(0)
}
