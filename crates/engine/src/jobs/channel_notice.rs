//! `channel.notice`: a message to someone on a push channel who has no
//! session (the allowlist's refusal, a disabled channel's message).

use async_trait::async_trait;
use domain::jobs::{ChannelNotice, ChannelNoticePayload};

use super::{Handler, Job, JobError, Outcome, delivered};

#[async_trait]
impl Handler for ChannelNotice {
    async fn run(job: Job<'_>, p: ChannelNoticePayload) -> Outcome<Self> {
        job.engine
            .notify(p.channel_id, &p.chat_id, &p.text)
            .await
            .map_err(|e| JobError::from_delivery(e, job.last))?;
        Ok(delivered())
    }
}
