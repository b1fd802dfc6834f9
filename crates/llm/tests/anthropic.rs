#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their harness fail loudly"
)]

mod common;

use chatstudio_llm::{ChatMessage, LlmError, ProviderKind, Role, Usage};
use common::*;
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

const PATH: &str = "/v1/messages";
const MODEL: &str = "claude-sonnet-4-5";

fn message_body() -> serde_json::Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "text", "text": "I am fine, "},
            {"type": "text", "text": "thanks."}
        ],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {
            "input_tokens": 21,
            "cache_creation_input_tokens": 1500,
            "cache_read_input_tokens": 2048,
            "output_tokens": 9,
            "service_tier": "standard"
        }
    })
}

fn provider() -> Provider {
    Provider {
        kind: ProviderKind::Anthropic,
        model: MODEL,
        path: PATH,
        ok_body: message_body(),
        ok_text: "I am fine, thanks.",
    }
}

#[tokio::test]
async fn sends_the_anthropic_wire_request() {
    let (server, cfg) = provider().serve_ok().await;
    client(&cfg).complete(&request(MODEL)).await.unwrap();

    let r = &only_request(&server).await;
    assert_eq!(r.url.path(), "/v1/messages");
    assert_eq!(header(r, "x-api-key"), Some(API_KEY));
    assert_eq!(header(r, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(header(r, "content-type"), Some("application/json"));
    assert_eq!(header(r, "authorization"), None);
    assert_eq!(
        json_body(r),
        json!({
            "model": MODEL,
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "How are you?"}
            ],
            "max_tokens": 100,
            "temperature": 0.5
        })
    );
}

#[tokio::test]
async fn merges_system_turns_and_same_role_runs() {
    let (server, cfg) = provider().serve_ok().await;
    let mut req = request(MODEL);
    req.max_tokens = None;
    req.temperature = None;
    req.messages = vec![
        ChatMessage::new(Role::System, "Context: the user is Ada."),
        ChatMessage::new(Role::User, "Hi"),
        ChatMessage::new(Role::User, "Are you there?"),
        ChatMessage::new(Role::Assistant, "Yes."),
        ChatMessage::new(Role::System, "Be kind."),
        ChatMessage::new(Role::User, "Good."),
    ];
    client(&cfg).complete(&req).await.unwrap();

    assert_eq!(
        json_body(&requests(&server).await[0]),
        json!({
            "model": MODEL,
            "system": "You are terse.\n\nContext: the user is Ada.\n\nBe kind.",
            "messages": [
                {"role": "user", "content": "Hi\n\nAre you there?"},
                {"role": "assistant", "content": "Yes."},
                {"role": "user", "content": "Good."}
            ],
            "max_tokens": 1024
        })
    );
}

#[tokio::test]
async fn maps_a_message_and_its_usage() {
    let (_server, cfg) = provider().serve_ok().await;
    let c = client(&cfg).complete(&request(MODEL)).await.unwrap();
    assert_eq!(c.text, "I am fine, thanks.");
    assert_eq!(c.model, "claude-sonnet-4-5-20250929");
    assert_eq!(c.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(c.usage, Usage::new(21, 9, 2048, 1500));
}

fn stream_body() -> String {
    sse(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 100, "output_tokens": 1}
            }}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "I am"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " fine, thanks."}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                   "usage": {"output_tokens": 15}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

#[tokio::test]
async fn streams_deltas_and_final_usage() {
    let (server, cfg) = provider().serve(sse_response(stream_body())).await;
    let stream = client(&cfg).stream(&request(MODEL)).await.unwrap();
    let (text, deltas, done) = collect(stream).await.unwrap();
    assert_eq!(text, "I am fine, thanks.");
    assert_eq!(deltas, 2);
    assert_eq!(done.text, text);
    assert_eq!(done.model, "claude-sonnet-4-5-20250929");
    assert_eq!(done.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(done.usage, Usage::new(25, 15, 100, 0));
    let body = json_body(&requests(&server).await[0]);
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["system"], json!("You are terse."));
}

#[tokio::test]
async fn overloaded_event_at_stream_start_is_retried() {
    let overloaded = sse(&[(
        "error",
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )]);
    let server = MockServer::start().await;
    answer(&server, PATH, sse_response(overloaded), Some(1)).await;
    provider()
        .mount(&server, sse_response(stream_body()), None)
        .await;
    let cfg = config(ProviderKind::Anthropic, &server);
    let stream = client(&cfg).stream(&request(MODEL)).await.unwrap();
    let (text, _, _) = collect(stream).await.unwrap();
    assert_eq!(text, "I am fine, thanks.");
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn error_event_mid_stream_ends_the_stream() {
    let body = sse(&[
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial"}}),
        ),
        (
            "error",
            json!({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}),
        ),
    ]);
    let (server, cfg) = provider().serve(sse_response(body)).await;
    let mut stream = client(&cfg).stream(&request(MODEL)).await.unwrap();
    use futures_util::StreamExt;
    assert_eq!(
        stream.next().await,
        Some(Ok(chatstudio_llm::StreamEvent::Delta("partial".into())))
    );
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("Internal server error"), "{err}");
    assert!(stream.next().await.is_none());
    // Not retried: part of the answer was already handed out.
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn stream_without_message_stop_is_invalid() {
    let body = sse(&[(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "cut"}}),
    )]);
    let (_server, cfg) = provider().serve(sse_response(body)).await;
    let stream = client(&cfg).stream(&request(MODEL)).await.unwrap();
    let err = collect(stream).await.unwrap_err();
    assert!(matches!(err, LlmError::InvalidResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn overloaded_529_is_retried() {
    let overloaded =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let server = MockServer::start().await;
    answer(
        &server,
        PATH,
        ResponseTemplate::new(529).set_body_json(overloaded),
        Some(1),
    )
    .await;
    provider().mount(&server, provider().ok(), None).await;
    let cfg = config(ProviderKind::Anthropic, &server);
    let c = client(&cfg).complete(&request(MODEL)).await.unwrap();
    assert_eq!(c.text, "I am fine, thanks.");
    assert_eq!(requests(&server).await.len(), 2);
}

failure_scenarios!(provider());

#[tokio::test]
async fn structured_output_forces_one_tool_and_reads_its_input() {
    let (server, cfg) = provider()
        .serve(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
            "content": [
                {"type": "text", "text": "Routing now."},
                {"type": "tool_use", "id": "toolu_1", "name": "route", "input": {"route": "A"}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 30, "output_tokens": 8}
        })))
        .await;
    let c = client(&cfg).complete(&structured(MODEL)).await.unwrap();
    assert_eq!(c.text, "{\"route\":\"A\"}");
    let sent = json_body(&requests(&server).await[0]);
    assert_eq!(sent["tools"][0]["name"], "route");
    assert_eq!(
        sent["tools"][0]["input_schema"]["required"],
        json!(["route"])
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "route"})
    );
}

#[tokio::test]
async fn tool_use_blocks_are_read_and_answered_with_tool_results() {
    let (server, cfg) = provider().serve(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_a", "name": "get-session-state", "input": {"key": "x"}},
                {"type": "tool_use", "id": "toolu_b", "name": "calculator", "input": {"expression": "1/0"}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 30, "output_tokens": 8}
        }))).await;
    let c = client(&cfg).complete(&with_tools(MODEL)).await.unwrap();
    assert_eq!(c.text, "Let me check.");
    assert_eq!(c.tool_calls.len(), 2);
    assert_eq!(c.tool_calls[1].id, "toolu_b");
    assert_eq!(c.tool_calls[1].arguments, json!({"expression": "1/0"}));
    let sent = json_body(&requests(&server).await[0]);
    assert_eq!(sent["tools"][0]["input_schema"]["required"], json!(["key"]));
    assert!(sent.get("tool_choice").is_none());

    client(&cfg)
        .complete(&after_two_calls(MODEL))
        .await
        .unwrap();
    let sent = json_body(&requests(&server).await[1]);
    let m = sent["messages"].as_array().unwrap();
    let n = m.len();
    assert_eq!(m[n - 2]["role"], "assistant");
    assert_eq!(m[n - 2]["content"][1]["type"], "tool_use");
    assert_eq!(m[n - 2]["content"][1]["id"], "call_b");
    // Both results answer in one user turn.
    assert_eq!(m[n - 1]["role"], "user");
    assert_eq!(
        m[n - 1]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "call_a", "content": "The value is 1", "is_error": false})
    );
    assert_eq!(m[n - 1]["content"][1]["is_error"], true);
}

#[tokio::test]
async fn streamed_tool_use_is_assembled_from_json_deltas() {
    let body = sse(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant",
            "content": [], "model": MODEL, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_a", "name": "get-session-state", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"key\":"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": " \"x\"}"}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let (_server, cfg) = provider().serve(sse_response(body)).await;
    let s = client(&cfg).stream(&with_tools(MODEL)).await.unwrap();
    let (text, _, done) = collect(s).await.unwrap();
    assert_eq!(text, "Checking.");
    assert_eq!(done.tool_calls.len(), 1);
    assert_eq!(done.tool_calls[0].id, "toolu_a");
    assert_eq!(done.tool_calls[0].arguments, json!({"key": "x"}));
}

#[tokio::test]
async fn web_search_is_anthropics_server_tool() {
    let (server, cfg) = provider().serve_ok().await;
    client(&cfg)
        .complete(&with_web_search(MODEL))
        .await
        .unwrap();
    let sent = json_body(&requests(&server).await[0]);
    assert_eq!(
        sent["tools"][0],
        json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 2, "allowed_domains": ["example.org"]})
    );
}
