//! `channel.turn`: an inbound message on a push channel: a persisted text
//! (run the turn unless it already ran), a fixed answer (a reset, an
//! unsupported kind), or a file the job fetches first — stored as a session
//! file attached to the human message, a voice note transcribed into its
//! text. The reply goes back on the session's channel, spoken when the
//! chatbot's voice says so (text when it cannot be).

use async_trait::async_trait;
use domain::channels::push;
use domain::jobs::{ChannelInput, ChannelTurn, ChannelTurnPayload, InboundMedia, MediaKind};
use domain::messages::{self, SentFile};
use domain::sessions::Session;
use domain::voice::{self, Voice};
use domain::{MessageId, files, turns};

use super::{Handler, Job, JobError, Outcome, delivered, session_of};
use crate::TurnError;

/// What the participant hears when their turn fails, rather than silence.
const TURN_FAILED: &str = "Sorry, something went wrong. Please try again.";
/// What they hear when their voice note cannot be made out.
const NOT_HEARD: &str =
    "Sorry, I could not make out your voice message. Please try again, or write your message.";
/// What they hear when their file cannot be fetched from the platform.
const NOT_RECEIVED: &str = "Sorry, I could not receive your file. Please try sending it again.";
/// The text of a voice note that could not be transcribed (it stays, with its audio).
const UNHEARD: &str = "[A voice note that could not be transcribed]";
const NO_VOICE: &str =
    "Sorry, voice messages are not supported yet. Please send your message as text.";

#[async_trait]
impl Handler for ChannelTurn {
    async fn run(job: Job<'_>, p: ChannelTurnPayload) -> Outcome<Self> {
        let session = session_of(job.engine, p.session_id).await?;
        let (answer, voice_in) = match p.input {
            ChannelInput::Reply { reply } => {
                let fixed = Answer {
                    text: reply,
                    message_id: None,
                    voice: None,
                };
                (fixed, false)
            }
            ChannelInput::Message { message_id, text } => {
                (answer(job, &session, message_id, text).await?, false)
            }
            ChannelInput::Media { media } => {
                let voice_in = matches!(media.kind, MediaKind::Voice | MediaKind::Audio);
                let Some((mid, text)) = received(job, &session, &media, voice_in).await? else {
                    return Ok(delivered());
                };
                (answer(job, &session, mid, text).await?, voice_in)
            }
        };
        reply(job, &session, &answer, voice_in).await
    }
}

/// What goes back: the reply, its stored message, and the chatbot's voice.
struct Answer {
    text: String,
    message_id: Option<MessageId>,
    voice: Option<Voice>,
}

/// The turn's reply to a stored human message.
async fn answer(
    job: Job<'_>,
    session: &Session,
    message_id: MessageId,
    text: String,
) -> Result<Answer, JobError> {
    let engine = job.engine;
    let chatbot = engine
        .published_for(session)
        .await
        .map_err(JobError::from_turn)?;
    let voice = voice::of_config(&chatbot.config);
    if let Some((mid, text)) = turns::finished(&engine.domain, message_id).await? {
        return Ok(Answer {
            text,
            message_id: Some(mid),
            voice,
        });
    }
    match engine
        .run_turn(session, &chatbot, message_id, text, None)
        .await
    {
        Ok(r) => Ok(Answer {
            text: r.text,
            message_id: r.message_id,
            voice,
        }),
        Err(TurnError::Domain(e)) if e.is_internal() => Err(JobError::Retry(e.chain())),
        Err(e) => {
            tell(job, session, TURN_FAILED).await;
            Err(JobError::failed(e.public_message()))
        }
    }
}

/// Fetches, stores and (for a voice note) transcribes what the participant
/// sent, and stores their message: its id and text, or `None` when they were
/// told it cannot be taken.
async fn received(
    job: Job<'_>,
    session: &Session,
    media: &InboundMedia,
    voice_in: bool,
) -> Result<Option<(MessageId, String)>, JobError> {
    let (engine, domain) = (job.engine, &job.engine.domain);
    if let Some(done) = messages::human_by_task(domain, session.id, job.task_id).await? {
        return Ok(Some(done));
    }
    let chatbot = engine
        .published_for(session)
        .await
        .map_err(JobError::from_turn)?;
    let voice = voice::of_config(&chatbot.config);
    let transcription = voice.as_ref().and_then(|v| v.transcription.clone());
    if voice_in && transcription.is_none() {
        tell(job, session, NO_VOICE).await;
        return Ok(None);
    }
    let Some(channel_id) = session.channel_id else {
        return Err(JobError::failed("the session has no channel"));
    };
    let ch = push::by_row_id(domain, channel_id)
        .await?
        .ok_or_else(|| JobError::failed("the session's channel is gone"))?;
    let got = match engine.fetch_media(&ch, media).await {
        Ok(got) => got,
        Err(e) => {
            let failed = JobError::from_delivery(e, job.last);
            if matches!(failed, JobError::Failed { .. }) {
                tell(job, session, NOT_RECEIVED).await;
            }
            return Err(failed);
        }
    };
    let content_type = media
        .mime_type
        .clone()
        .or(got.content_type)
        .unwrap_or_else(|| "application/octet-stream".into());
    let content_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let name = media
        .file_name
        .clone()
        .unwrap_or_else(|| format!("{}.{}", media.kind.as_str(), extension(&content_type)));
    let size = i64::try_from(got.bytes.len()).unwrap_or(i64::MAX);
    let key = files::store_bytes(&domain.files, session.team_id, &name, got.bytes.clone()).await?;
    let file = SentFile {
        key,
        name: name.clone(),
        content_type: content_type.clone(),
        size,
        voice: voice_in,
    };
    let text = match (&transcription, voice_in) {
        (Some(t), true) => {
            let audio = llm::speech::Audio {
                bytes: got.bytes,
                file_name: name,
                content_type,
            };
            let heard = match engine.transcribe(session.team_id, t, audio).await {
                Ok(heard) if !heard.trim().is_empty() => Ok(heard),
                Ok(_) => Err("the voice note's transcript was empty".to_string()),
                Err(e) if e.is_retryable() && !job.last => {
                    return Err(JobError::Retry(e.to_string()));
                }
                Err(e) => Err(format!(
                    "transcribing the voice note failed: {}",
                    e.public_message()
                )),
            };
            match heard {
                Ok(heard) => heard,
                Err(why) => {
                    // The voice note stays in the transcript with the error's trace.
                    let mid =
                        messages::with_file(domain, session, job.task_id, UNHEARD, &file).await?;
                    let outcome = turns::TurnOutcome {
                        input_message_id: Some(mid),
                        error: Some(why.clone()),
                        ..turns::TurnOutcome::of(session, &chatbot)
                    };
                    turns::record(domain, outcome).await?;
                    tell(job, session, NOT_HEARD).await;
                    return Err(JobError::failed(why));
                }
            }
        }
        // The pipeline reads text: a file without a caption is named to it.
        _ => media
            .caption
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| format!("[The participant sent {}: {name}]", article(media.kind))),
    };
    let mid = messages::with_file(domain, session, job.task_id, &text, &file).await?;
    if voice_in && voice.as_ref().is_some_and(|v| v.echo_transcript) {
        tell(job, session, &format!("I heard: {text}")).await;
    }
    Ok(Some((mid, text)))
}

/// Sends the reply: spoken when the voice says so and the channel can
/// carry it, else text; then the files it carries.
async fn reply(
    job: Job<'_>,
    session: &Session,
    a: &Answer,
    voice_in: bool,
) -> Outcome<ChannelTurn> {
    let engine = job.engine;
    let to_delivery = |e| JobError::from_delivery(e, job.last);
    let speech = a
        .voice
        .as_ref()
        .filter(|v| v.speaks(voice_in))
        .and_then(|v| v.speech.as_ref());
    let (say, follow_up) = voice::spoken_parts(&a.text);
    let mut spoken = false;
    if let Some(speech) = speech.filter(|_| !say.is_empty()) {
        spoken = engine
            .deliver_spoken(session, speech, &say)
            .await
            .map_err(to_delivery)?;
        if let Some(links) = follow_up.filter(|_| spoken) {
            engine.deliver(session, &links).await.map_err(to_delivery)?;
        }
    }
    if !spoken {
        engine
            .deliver(session, &a.text)
            .await
            .map_err(to_delivery)?;
    }
    if let Some(mid) = a.message_id {
        engine
            .deliver_files(session, mid)
            .await
            .map_err(to_delivery)?;
    }
    Ok(delivered())
}

/// Tells the participant something outside the turn (a failure, a notice);
/// a failure to tell them is logged, the job's own outcome stands.
async fn tell(job: Job<'_>, session: &Session, text: &str) {
    if let Err(d) = job.engine.deliver(session, text).await {
        tracing::warn!(session = %session.external_id, error = ?d, "telling the participant");
    }
}

fn article(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Voice => "a voice note",
        MediaKind::Audio => "an audio file",
        MediaKind::Image => "an image",
        MediaKind::Document => "a document",
        MediaKind::Video => "a video",
    }
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/mp4" | "audio/aac" => "m4a",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}
