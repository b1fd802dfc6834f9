//! `chatbot test`: one turn of a chatbot run without saving it, printing the
//! path it took, every node's output and the reply. Provider calls are real;
//! nothing is written (no session, message, trace, data change or email).

use clap::Args;
use domain::pricing::ServiceKind;
use domain::traces::Span;
use engine::dry_run::DryRun;
use serde_json::json;
use uuid::Uuid;

use super::Cli;
use crate::output;

#[derive(Debug, Args)]
pub struct TestArgs {
    pub id: Uuid,
    #[arg(long)]
    pub message: String,
    /// A version number (0: the published one; default: as the API chooses).
    #[arg(long)]
    pub version: Option<i32>,
    /// Run as this participant of the team (by identifier): their data and schedules.
    #[arg(long)]
    pub participant: Option<String>,
}

fn tokens(s: &Span) -> (i64, i64) {
    s.usage.iter().fold((0, 0), |(i, o), u| match u.kind {
        ServiceKind::Output => (i, o + u.quantity),
        _ => (i + u.quantity, o),
    })
}

fn span_json(s: &Span) -> serde_json::Value {
    let (input_tokens, output_tokens) = tokens(s);
    json!({
        "node_id": s.node_id, "type": s.node_type, "input": s.input, "output": s.output,
        "error": s.error, "route": s.route, "duration_ms": s.duration_ms,
        "llm_calls": s.llm_calls, "input_tokens": input_tokens, "output_tokens": output_tokens,
    })
}

fn print_span(s: &Span) {
    let (i, o) = tokens(s);
    let mut head = format!("[{}] {} ({} ms", s.node_id, s.node_type, s.duration_ms);
    if s.llm_calls > 0 {
        head.push_str(&format!(", {} calls, {i} in / {o} out tokens", s.llm_calls));
    }
    head.push(')');
    if let Some(r) = &s.route {
        head.push_str(&format!(" → route {r}"));
    }
    output::line(&head);
    let text = s.output.as_deref().or(s.error.as_deref()).unwrap_or("");
    for l in text.lines() {
        output::line(&format!("    {l}"));
    }
}

pub async fn run(cli: &Cli, a: &TestArgs) -> anyhow::Result<()> {
    let domain =
        crate::serve::open_domain(&cli.storage.db_config(), cli.storage.files_url.as_deref())
            .await?;
    let (team, _) = domain::chatbots::find_any_team(&domain.db.read, a.id).await?;
    let engine = engine::Engine::new(
        domain.clone(),
        engine::EngineSettings {
            telegram_api_url: cli.storage.telegram_api_url.clone(),
            meta_api_url: cli.storage.meta_api_url.clone(),
            twilio_api_url: cli.storage.twilio_api_url.clone(),
            turn_api_url: cli.storage.turn_api_url.clone(),
            outbound: cli.storage.outbound(),
            code: cli.storage.code(),
            ..Default::default()
        },
    );
    let result = engine
        .dry_run(DryRun {
            team_id: team,
            chatbot: a.id,
            version: a.version,
            participant: a.participant.as_deref(),
            message: &a.message,
        })
        .await;
    domain.db.close().await;
    match result {
        Ok(run) => {
            if cli.json {
                output::json(&json!({
                    "path": run.path(),
                    "nodes": run.spans.iter().map(span_json).collect::<Vec<_>>(),
                    "reply": run.reply,
                    "participant_data": run.participant_data,
                    "reply_tags": run.changes.reply_tags,
                    "emails": run.changes.emails.iter().map(|e| json!({"to": e.to, "subject": e.subject})).collect::<Vec<_>>(),
                }));
            } else {
                output::line(&format!("path: {}", run.path().join(" → ")));
                run.spans.iter().for_each(print_span);
                if let Some(d) = &run.participant_data {
                    output::line(&format!("participant data would become: {d}"));
                }
                for e in &run.changes.emails {
                    output::line(&format!("would email {}: {}", e.to.join(", "), e.subject));
                }
                output::line("reply:");
                output::line(&run.reply);
            }
            Ok(())
        }
        Err(f) => {
            if !cli.json {
                output::line(&format!(
                    "path: {}",
                    f.spans
                        .iter()
                        .map(|s| s.node_id.as_str())
                        .collect::<Vec<_>>()
                        .join(" → ")
                ));
                f.spans.iter().for_each(print_span);
            }
            Err(anyhow::anyhow!("{}", f.describe()))
        }
    }
}
