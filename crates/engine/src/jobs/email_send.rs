//! `email.send`: an email a pipeline queued, sent over SMTP
//! (`--smtp-url smtp://user:pass@host:port`, `smtps://` for TLS,
//! `?tls=required` for STARTTLS). Temporary failures (no connection, 4xx)
//! are retried; a permanent refusal (5xx) is final.

use async_trait::async_trait;
use domain::jobs::{EmailPayload, EmailSend, EmailSent};
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Handler, Job, JobError, Outcome};

#[async_trait]
impl Handler for EmailSend {
    async fn run(job: Job<'_>, p: EmailPayload) -> Outcome<Self> {
        let Some(smtp) = &job.engine.settings.smtp else {
            return Err(JobError::failed(
                "no SMTP server is configured (--smtp-url / CHATSTUDIO_SMTP_URL)",
            ));
        };
        let from: Mailbox = smtp
            .from
            .parse()
            .map_err(|e| JobError::failed(format!("the sender address {:?}: {e}", smtp.from)))?;
        let mut message = Message::builder()
            .from(from)
            .subject(p.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        for to in &p.to {
            let to: Mailbox = to
                .parse()
                .map_err(|e| JobError::failed(format!("recipient {to:?}: {e}")))?;
            message = message.to(to);
        }
        let message = message
            .body(p.body.clone())
            .map_err(|e| JobError::failed(format!("building the email: {e}")))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp.url)
            .map_err(|e| JobError::failed(format!("the SMTP URL: {e}")))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        match transport.send(message).await {
            Ok(_) => Ok(EmailSent {
                sent: true,
                recipients: p.to.len(),
            }),
            Err(e) if e.is_permanent() => {
                Err(JobError::failed(format!("the mail server refused: {e}")))
            }
            Err(e) if job.last => Err(JobError::failed(format!("sending failed: {e}"))),
            Err(e) => Err(JobError::Retry(format!("sending failed: {e}"))),
        }
    }
}
