//! Routers pick one outgoing handle and pass their input through. The LLM
//! router asks the model for a keyword with structured output (an enum of
//! the keywords); the static router reads a value from the state. Both match
//! case-insensitively and fall back to the default keyword.

use domain::pipeline::{DataSource, RouterParams, StaticRouterParams};
use llm::{ChatMessage, CompletionRequest, ResponseSchema, Role};
use serde_json::{Value, json};

use super::{Done, NodeCx, lookup, usage_items};
use crate::{Engine, TurnError};

/// The index of `choice` among `keywords` (case-insensitive), else the default.
fn pick(keywords: &[String], default: usize, choice: Option<&str>) -> (usize, String) {
    let index = choice
        .map(str::trim)
        .and_then(|c| {
            keywords
                .iter()
                .position(|k| k.trim().eq_ignore_ascii_case(c))
        })
        .unwrap_or(default);
    (index, keywords.get(index).cloned().unwrap_or_default())
}

/// `done` passing its input on through the handle of `route`.
fn routed(cx: &NodeCx<'_, '_>, done: Done, route: (usize, String), tag: bool) -> Done {
    Done {
        output: cx.input.clone(),
        reply_tags: if tag {
            vec![route.1.clone()]
        } else {
            Vec::new()
        },
        route: Some(route),
        ..done
    }
}

/// The keyword in a structured answer `{"route": "…"}`, or the bare text.
fn keyword_of(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) => s,
        Ok(v) => v
            .get("route")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        Err(_) => text.trim().to_string(),
    }
}

pub(super) fn static_route(cx: &NodeCx<'_, '_>, p: &StaticRouterParams) -> Done {
    let source = match p.data_source {
        DataSource::ParticipantData => &cx.state.participant_data,
        DataSource::TempState => &cx.state.temp_state,
        DataSource::SessionState => &cx.state.session_state,
    };
    let value = lookup(source, &p.route_key).and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    });
    let route = pick(&p.keywords, p.default_keyword_index, value.as_deref());
    routed(cx, Done::default(), route, p.tag_output_message)
}

impl Engine {
    pub(super) async fn llm_router(
        &self,
        cx: &NodeCx<'_, '_>,
        p: &RouterParams,
    ) -> Result<Done, TurnError> {
        let super::llm_node::Conversation {
            access,
            client,
            mut recalled,
            mut done,
        } = self.converse(cx, &p.provider, &p.model, &p.history).await?;
        let prompt = cx
            .node
            .prompt
            .as_ref()
            .map(|t| t.render(&cx.prompt_context()))
            .unwrap_or_default();
        let system = format!(
            "{prompt}\n\nAnswer with exactly one of these keywords: {}.",
            p.keywords.join(", ")
        );
        let mut messages = std::mem::take(&mut recalled.messages);
        messages.push(ChatMessage::new(Role::User, cx.input.clone()));
        let req = CompletionRequest {
            model: p.model.clone(),
            system: Some(system.trim().to_string()),
            messages,
            temperature: p.temperature,
            max_tokens: None,
            response_schema: Some(ResponseSchema {
                name: "route".into(),
                schema: json!({
                    "type": "object",
                    "properties": {"route": {"type": "string", "enum": p.keywords}},
                    "required": ["route"],
                    "additionalProperties": false,
                }),
            }),
            tools: Vec::new(),
            built_in: Vec::new(),
        };
        let c = client.complete(&req).await?;
        done.llm_calls += 1;
        done.usage.extend(usage_items(&access.kind, &c, &p.model));
        let route = pick(
            &p.keywords,
            p.default_keyword_index,
            Some(&keyword_of(&c.text)),
        );
        done.history = recalled.write(&cx.input, &route.1);
        Ok(routed(cx, done, route, p.tag_output_message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_case_insensitively_else_default() {
        let k = vec!["SALES".to_string(), "Support".to_string()];
        assert_eq!(pick(&k, 1, Some("sales")), (0, "SALES".into()));
        assert_eq!(pick(&k, 1, Some(" SUPPORT ")), (1, "Support".into()));
        assert_eq!(pick(&k, 1, Some("billing")), (1, "Support".into()));
        assert_eq!(pick(&k, 0, None), (0, "SALES".into()));
        assert_eq!(keyword_of(r#"{"route": "SALES"}"#), "SALES");
        assert_eq!(keyword_of("\"support\"\n"), "support");
        assert_eq!(keyword_of(r#"{"other": 1}"#), "");
    }
}
