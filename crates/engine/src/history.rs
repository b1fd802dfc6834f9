//! Which earlier messages an LLM node sees, under the three history modes:
//! `max_history_length` (the last N), `truncate_tokens` (the newest that fit
//! the budget), and `summarize` (past the budget, older messages are replaced
//! by an LLM-written summary, stored as a checkpoint on the oldest message
//! kept verbatim; later turns start from that checkpoint).

use domain::messages::{MessageRole, StoredMessage};
use domain::pipeline::{HistoryMode, HistorySettings};
use llm::{ChatMessage, Role};

/// The most messages a token-budgeted history ever loads: far beyond any
/// budget's reach, and it bounds the cost of a very long conversation.
pub const MAX_LOADED: u64 = 500;

/// How many stored messages a node's history needs loaded.
pub fn load_limit(settings: &HistorySettings) -> u64 {
    match (settings.kind, settings.mode) {
        (domain::pipeline::HistoryType::None, _) => 0,
        (_, HistoryMode::MaxHistoryLength) => settings.max_length() as u64,
        _ => MAX_LOADED,
    }
}

/// Messages kept verbatim when summarizing, at most.
pub const SUMMARIZE_KEEP_MAX: usize = 20;

/// A rough token count (4 characters a token, plus per-message overhead),
/// used only to decide what fits; usage is always the provider's own count.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4) + 4
}

fn to_chat(m: &StoredMessage) -> ChatMessage {
    let role = match m.role {
        MessageRole::Human => Role::User,
        MessageRole::Ai => Role::Assistant,
        MessageRole::System => Role::System,
    };
    ChatMessage::new(role, m.content.clone())
}

pub fn summary_message(summary: &str) -> ChatMessage {
    ChatMessage::new(
        Role::System,
        format!("Summary of the earlier conversation:\n{summary}"),
    )
}

/// The plan for one node's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPlan {
    /// Messages to send, oldest first (a summary system message may lead).
    pub messages: Vec<ChatMessage>,
    /// Present when a new summary must be written before the call.
    pub summarize: Option<SummarizeJob>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SummarizeJob {
    /// The summary so far (from an older checkpoint), if any.
    pub previous: Option<String>,
    /// The messages the new summary replaces.
    pub dropped: Vec<ChatMessage>,
    /// Where the checkpoint goes: the first message kept verbatim, or `None`
    /// for the current input message (when none is kept).
    pub checkpoint_at: Option<i64>,
    /// Messages kept verbatim after the summary.
    pub kept: Vec<ChatMessage>,
}

/// Plans the history from the stored messages before the current input
/// (already starting at the latest checkpoint, see `messages::history`).
pub fn plan(stored: &[StoredMessage], settings: &HistorySettings) -> HistoryPlan {
    let previous = stored.first().and_then(|m| m.summary.clone());
    let mut lead: Vec<ChatMessage> = previous.iter().map(|s| summary_message(s)).collect();
    let all: Vec<ChatMessage> = stored.iter().map(to_chat).collect();
    match settings.mode {
        HistoryMode::MaxHistoryLength => {
            let n = settings.max_length();
            let start = all.len().saturating_sub(n);
            lead.extend_from_slice(&all[start..]);
            HistoryPlan {
                messages: lead,
                summarize: None,
            }
        }
        HistoryMode::TruncateTokens => {
            let budget = settings.token_limit();
            let mut used: usize = lead.iter().map(|m| estimate_tokens(&m.content)).sum();
            let mut start = all.len();
            while start > 0 {
                let t = estimate_tokens(&all[start - 1].content);
                if used + t > budget {
                    break;
                }
                used += t;
                start -= 1;
            }
            lead.extend_from_slice(&all[start..]);
            HistoryPlan {
                messages: lead,
                summarize: None,
            }
        }
        HistoryMode::Summarize => {
            let budget = settings.token_limit();
            let total: usize = lead
                .iter()
                .chain(&all)
                .map(|m| estimate_tokens(&m.content))
                .sum();
            if total <= budget {
                lead.extend(all);
                return HistoryPlan {
                    messages: lead,
                    summarize: None,
                };
            }
            // Keep the newest messages verbatim within half the budget, so the
            // summary and the new turn have room too.
            let half = budget / 2;
            let mut used = 0;
            let mut start = all.len();
            while start > 0 && all.len() - start < SUMMARIZE_KEEP_MAX {
                let t = estimate_tokens(&all[start - 1].content);
                if used + t > half {
                    break;
                }
                used += t;
                start -= 1;
            }
            let kept = all[start..].to_vec();
            HistoryPlan {
                messages: Vec::new(),
                summarize: Some(SummarizeJob {
                    previous,
                    dropped: all[..start].to_vec(),
                    checkpoint_at: stored.get(start).map(|m| m.id.0),
                    kept,
                }),
            }
        }
    }
}

/// The request that asks the model for a summary.
pub fn summary_request(job: &SummarizeJob) -> (String, Vec<ChatMessage>) {
    let system = "You summarize conversations between a user and an AI assistant. Write a concise \
                  summary that keeps every fact, name, preference and open question the assistant \
                  needs to continue the conversation. Answer with the summary only."
        .to_string();
    let mut transcript = String::new();
    if let Some(p) = &job.previous {
        transcript.push_str("Summary so far:\n");
        transcript.push_str(p);
        transcript.push_str("\n\nConversation since then:\n");
    }
    for m in &job.dropped {
        let who = match m.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
            Role::System => "System",
            Role::Tool => "Tool",
        };
        transcript.push_str(&format!("{who}: {}\n", m.content));
    }
    (system, vec![ChatMessage::new(Role::User, transcript)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::pipeline::HistoryType;

    fn msgs(n: usize, len: usize) -> Vec<StoredMessage> {
        (0..n)
            .map(|i| StoredMessage {
                id: domain::MessageId(i as i64 + 1),
                role: if i % 2 == 0 {
                    MessageRole::Human
                } else {
                    MessageRole::Ai
                },
                content: format!("{i:0>len$}"),
                summary: None,
                created_at: chrono::Utc::now(),
            })
            .collect()
    }

    fn settings(mode: HistoryMode, max: Option<u32>, tokens: Option<u32>) -> HistorySettings {
        HistorySettings {
            kind: HistoryType::Global,
            name: None,
            mode,
            max_history_length: max,
            token_limit: tokens,
        }
    }

    #[test]
    fn max_history_length_keeps_last_n() {
        let p = plan(
            &msgs(15, 3),
            &settings(HistoryMode::MaxHistoryLength, None, None),
        );
        assert_eq!(p.messages.len(), 10);
        assert_eq!(p.messages[0].content, "005");
        let p = plan(
            &msgs(15, 3),
            &settings(HistoryMode::MaxHistoryLength, Some(3), None),
        );
        assert_eq!(
            p.messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>(),
            ["012", "013", "014"]
        );
    }

    #[test]
    fn truncate_tokens_fits_the_budget() {
        // Each 40-char message is 10 + 4 = 14 tokens: a 50-token budget keeps 3.
        let p = plan(
            &msgs(10, 40),
            &settings(HistoryMode::TruncateTokens, None, Some(50)),
        );
        assert_eq!(p.messages.len(), 3);
        assert!(p.messages.last().unwrap().content.ends_with('9'));
        assert!(p.summarize.is_none());
    }

    #[test]
    fn summarize_under_budget_sends_everything() {
        let p = plan(
            &msgs(4, 8),
            &settings(HistoryMode::Summarize, None, Some(1000)),
        );
        assert_eq!(p.messages.len(), 4);
        assert!(p.summarize.is_none());
    }

    #[test]
    fn summarize_over_budget_plans_a_checkpoint() {
        let p = plan(
            &msgs(10, 40),
            &settings(HistoryMode::Summarize, None, Some(60)),
        );
        let job = p.summarize.unwrap();
        // Half the budget (30 tokens) keeps the newest 2 messages.
        assert_eq!(job.kept.len(), 2);
        assert_eq!(job.dropped.len(), 8);
        assert_eq!(job.checkpoint_at, Some(9));
        let (_, req) = summary_request(&job);
        assert!(req[0].content.starts_with("User: "));
    }

    #[test]
    fn a_checkpoint_leads_with_its_summary() {
        let mut m = msgs(3, 5);
        m[0].summary = Some("they like tea".into());
        let p = plan(&m, &settings(HistoryMode::MaxHistoryLength, None, None));
        assert_eq!(p.messages[0].role, Role::System);
        assert!(p.messages[0].content.contains("they like tea"));
        assert_eq!(p.messages.len(), 4);
    }
}
