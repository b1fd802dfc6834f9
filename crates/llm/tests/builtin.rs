use chatstudio_llm::builtin::Builtin;
use chatstudio_llm::{
    ChatMessage, CompletionRequest, LlmClient, LlmError, ProviderConfig, ProviderKind, Role,
    StreamEvent, Usage,
};
use futures_util::StreamExt;

fn req(model: &str, system: Option<&str>, messages: &[(Role, &str)]) -> CompletionRequest {
    CompletionRequest {
        model: model.to_owned(),
        system: system.map(str::to_owned),
        messages: messages
            .iter()
            .map(|(r, c)| ChatMessage::new(*r, *c))
            .collect(),
        temperature: None,
        max_tokens: None,
        response_schema: None,
        tools: Vec::new(),
        built_in: Vec::new(),
    }
}

#[tokio::test]
async fn echo_repeats_the_last_user_message() {
    let r = req(
        "echo",
        Some("Be nice."),
        &[
            (Role::User, "first"),
            (Role::Assistant, "You said: first"),
            (Role::User, "second one"),
        ],
    );
    let c = Builtin.complete(&r).await.unwrap();
    assert_eq!(c.text, "You said: second one");
    assert_eq!(c.model, "echo");
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    // Input: 8 + 5 + 15 + 10 = 38 chars → 10 tokens; output: 20 chars → 5.
    assert_eq!(c.usage, Usage::new(10, 5, 0, 0));
}

#[tokio::test]
async fn echo_greets_without_a_user_message() {
    let c = Builtin.complete(&req("echo", None, &[])).await.unwrap();
    assert_eq!(c.text, "Hello! Send me a message.");
    assert_eq!(c.usage.input_tokens, 0);
    assert_eq!(c.usage.output_tokens, 7); // 25 chars
}

#[tokio::test]
async fn echo_system_returns_the_rendered_prompt() {
    let prompt = "You are Helper.\nToday is Monday.";
    let c = Builtin
        .complete(&req("echo-system", Some(prompt), &[(Role::User, "hi")]))
        .await
        .unwrap();
    assert_eq!(c.text, prompt);
    assert_eq!(c.usage.input_tokens, 9); // 32 + 2 = 34 chars
    assert_eq!(c.usage.output_tokens, 8);

    let c = Builtin
        .complete(&req("echo-system", None, &[(Role::User, "hi")]))
        .await
        .unwrap();
    assert_eq!(c.text, "");
    assert_eq!(c.usage.output_tokens, 0);
}

#[tokio::test]
async fn echo_history_lists_every_message() {
    let r = req(
        "echo-history",
        Some("sys"),
        &[
            (Role::User, "a"),
            (Role::Assistant, "b"),
            (Role::System, "note"),
            (Role::User, "ćé"),
        ],
    );
    let c = Builtin.complete(&r).await.unwrap();
    assert_eq!(
        c.text,
        "system: sys\nuser: a\nassistant: b\nsystem: note\nuser: ćé"
    );
    // Characters, not bytes: 3 + 1 + 1 + 4 + 2 = 11 → 3 tokens.
    assert_eq!(c.usage.input_tokens, 3);
    assert_eq!(c.usage.output_tokens, 14); // 54 chars

    let c = Builtin
        .complete(&req("echo-history", None, &[(Role::User, "x")]))
        .await
        .unwrap();
    assert_eq!(c.text, "user: x");
}

#[tokio::test]
async fn unknown_model_is_a_config_error() {
    let err = Builtin
        .complete(&req("gpt-4", None, &[]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LlmError::Config {
            message: "unknown built-in model gpt-4; available: echo, echo-system, echo-history"
                .into(),
            status: None
        }
    );
    assert!(Builtin.stream(&req("gpt-4", None, &[])).await.is_err());
}

#[tokio::test]
async fn streams_word_deltas_that_add_up_to_the_reply() {
    let r = req("echo", None, &[(Role::User, "hello   big\nworld ")]);
    let whole = Builtin.complete(&r).await.unwrap();
    let items: Vec<_> = Builtin.stream(&r).await.unwrap().collect().await;
    let (last, deltas) = items.split_last().unwrap();
    let deltas: Vec<String> = deltas
        .iter()
        .map(|i| match i {
            Ok(StreamEvent::Delta(d)) => d.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        deltas,
        vec!["You ", "said: ", "hello   ", "big\n", "world "]
    );
    assert_eq!(deltas.concat(), whole.text);
    assert_eq!(last, &Ok(StreamEvent::Done(whole)));
}

#[tokio::test]
async fn client_for_builtin_needs_no_network() {
    let cfg = ProviderConfig::new(ProviderKind::Builtin);
    let client = chatstudio_llm::client_for(&cfg, &chatstudio_llm::http::client());
    let c = client
        .complete(&req("echo", None, &[(Role::User, "ping")]))
        .await
        .unwrap();
    assert_eq!(c.text, "You said: ping");
}

#[tokio::test]
async fn slash_tool_calls_tools_and_reports_their_results() {
    let mut r = req(
        "echo",
        None,
        &[(
            Role::User,
            "/tool calc {\"expression\": \"2+2\"}\n/tool calc {\"expression\": \"3*3\"}",
        )],
    );
    r.tools = vec![chatstudio_llm::ToolSpec {
        name: "calc".into(),
        description: "d".into(),
        parameters: serde_json::json!({"type": "object"}),
    }];
    let c = Builtin.complete(&r).await.unwrap();
    assert_eq!(c.tool_calls.len(), 2);
    assert_eq!(
        c.tool_calls[1].arguments,
        serde_json::json!({"expression": "3*3"})
    );
    r.messages
        .push(ChatMessage::calling("", c.tool_calls.clone()));
    r.messages
        .push(ChatMessage::tool_result(&c.tool_calls[0], "4", false));
    r.messages
        .push(ChatMessage::tool_result(&c.tool_calls[1], "9", false));
    let c = Builtin.complete(&r).await.unwrap();
    assert!(c.tool_calls.is_empty());
    assert_eq!(c.text, "calc: 4\ncalc: 9");
}
