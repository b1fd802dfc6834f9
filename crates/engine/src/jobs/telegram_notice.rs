//! `telegram.notice`: a message to a Telegram chat that has no session (the
//! allowlist's refusal).

use async_trait::async_trait;
use domain::jobs::{TelegramNotice, TelegramNoticePayload};

use super::{Handler, Job, JobError, Outcome, delivered};

#[async_trait]
impl Handler for TelegramNotice {
    async fn run(job: Job<'_>, p: TelegramNoticePayload) -> Outcome<Self> {
        job.engine
            .notify_telegram(p.channel_id, &p.chat_id, &p.text)
            .await
            .map_err(|e| JobError::from_delivery(e, job.last))?;
        Ok(delivered())
    }
}
