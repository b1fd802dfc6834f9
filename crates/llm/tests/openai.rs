#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their harness fail loudly"
)]

mod common;

use chatstudio_llm::{LlmError, ProviderKind, Usage};
use common::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PATH: &str = "/chat/completions";

fn completion_body() -> serde_json::Value {
    json!({
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "I am fine, thanks.", "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 7,
            "total_tokens": 1207,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}
        },
        "system_fingerprint": "fp_1"
    })
}

fn provider() -> Provider {
    Provider {
        kind: ProviderKind::Openai,
        model: "gpt-4o-mini",
        path: PATH,
        ok_body: completion_body(),
        ok_text: "I am fine, thanks.",
    }
}

#[tokio::test]
async fn sends_the_openai_wire_request() {
    let (server, mut cfg) = provider().serve_ok().await;
    cfg.headers = vec![("HTTP-Referer".into(), "https://example.org".into())];
    client(&cfg)
        .complete(&request("gpt-4o-mini"))
        .await
        .unwrap();

    let r = &only_request(&server).await;
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(r.url.path(), "/chat/completions");
    assert_eq!(
        header(r, "authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(header(r, "http-referer"), Some("https://example.org"));
    assert_eq!(header(r, "content-type"), Some("application/json"));
    assert!(header(r, "user-agent").unwrap().starts_with("chatstudio/"));
    assert_eq!(
        json_body(r),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "How are you?"}
            ],
            "temperature": 0.5,
            "max_tokens": 100
        })
    );
}

#[tokio::test]
async fn omits_unset_options_and_auth_without_a_key() {
    let (server, mut cfg) = provider().serve_ok().await;
    cfg.api_key = None;
    let mut req = request("llama3");
    req.system = None;
    req.temperature = None;
    req.max_tokens = None;
    client(&cfg).complete(&req).await.unwrap();

    let r = &requests(&server).await[0];
    assert_eq!(header(r, "authorization"), None);
    let body = json_body(r);
    assert_eq!(
        body["messages"][0],
        json!({"role": "user", "content": "Hi"})
    );
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
}

#[tokio::test]
async fn base_url_is_used_verbatim() {
    let (server, mut cfg) = serve(
        ProviderKind::Openai,
        "/openai/v1/chat/completions",
        provider().ok(),
    )
    .await;
    cfg.base_url = Some(format!("{}/openai/v1/", server.uri()));
    let c = client(&cfg)
        .complete(&request("gpt-4o-mini"))
        .await
        .unwrap();
    assert_eq!(c.text, "I am fine, thanks.");
}

#[tokio::test]
async fn maps_a_completion_and_its_usage() {
    let (_server, cfg) = provider().serve_ok().await;
    let c = client(&cfg)
        .complete(&request("gpt-4o-mini"))
        .await
        .unwrap();
    assert_eq!(c.text, "I am fine, thanks.");
    assert_eq!(c.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    assert_eq!(c.usage, Usage::new(176, 7, 1024, 0));
}

fn chunk(delta: serde_json::Value, finish: Option<&str>) -> serde_json::Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        "usage": null
    })
}

fn stream_body() -> String {
    let mut body = sse(&[
        (
            "",
            chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            ),
        ),
        ("", chunk(json!({"content": "I am"}), None)),
        ("", chunk(json!({"content": " fine,"}), None)),
        ("", chunk(json!({"content": " thanks."}), None)),
        ("", chunk(json!({}), Some("stop"))),
        (
            "",
            json!({
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-4o-mini-2024-07-18", "choices": [],
                "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35,
                          "prompt_tokens_details": {"cached_tokens": 0}}
            }),
        ),
    ]);
    body.push_str("data: [DONE]\n\n");
    body
}

#[tokio::test]
async fn streams_deltas_and_final_usage() {
    let (server, cfg) = serve(ProviderKind::Openai, PATH, sse_response(stream_body())).await;
    let stream = client(&cfg).stream(&request("gpt-4o-mini")).await.unwrap();
    let (text, deltas, done) = collect(stream).await.unwrap();
    assert_eq!(text, "I am fine, thanks.");
    assert_eq!(deltas, 3);
    assert_eq!(done.text, text);
    assert_eq!(done.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(done.finish_reason.as_deref(), Some("stop"));
    assert_eq!(done.usage, Usage::new(30, 5, 0, 0));

    let body = json_body(&requests(&server).await[0]);
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["messages"][0]["role"], "system");
}

#[tokio::test]
async fn stream_that_stops_before_done_is_invalid() {
    let body = sse(&[("", chunk(json!({"content": "cut"}), None))]);
    let (_server, cfg) = serve(ProviderKind::Openai, PATH, sse_response(body)).await;
    let stream = client(&cfg).stream(&request("gpt-4o-mini")).await.unwrap();
    let err = collect(stream).await.unwrap_err();
    assert!(matches!(err, LlmError::InvalidResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn stream_with_malformed_chunk_is_invalid() {
    let (_server, cfg) = serve(
        ProviderKind::Openai,
        PATH,
        sse_response("data: {not json\n\n".into()),
    )
    .await;
    let stream = client(&cfg).stream(&request("gpt-4o-mini")).await.unwrap();
    let err = collect(stream).await.unwrap_err();
    assert!(matches!(err, LlmError::InvalidResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn stream_start_errors_are_retried() {
    let server = MockServer::start().await;
    answer(&server, PATH, ResponseTemplate::new(502), Some(1)).await;
    answer(&server, PATH, sse_response(stream_body()), None).await;
    let cfg = config(ProviderKind::Openai, &server);
    let stream = client(&cfg).stream(&request("gpt-4o-mini")).await.unwrap();
    let (text, _, _) = collect(stream).await.unwrap();
    assert_eq!(text, "I am fine, thanks.");
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn stream_slower_than_the_timeout_is_retryable() {
    let (server, mut cfg) = serve(
        ProviderKind::Openai,
        PATH,
        sse_response(stream_body()).set_delay(std::time::Duration::from_secs(5)),
    )
    .await;
    cfg.timeout = std::time::Duration::from_millis(200);
    cfg.max_retries = 1;
    let err = match client(&cfg).stream(&request("gpt-4o-mini")).await {
        Ok(s) => collect(s).await.unwrap_err(),
        Err(e) => e,
    };
    assert!(
        matches!(err, LlmError::Retryable { status: None, .. }),
        "{err:?}"
    );
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn exhausted_quota_is_a_config_error() {
    let server = MockServer::start().await;
    let body = json!({"error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota", "param": null, "code": "insufficient_quota"
    }});
    answer(
        &server,
        PATH,
        ResponseTemplate::new(429).set_body_json(body),
        None,
    )
    .await;
    let cfg = config(ProviderKind::Openai, &server);
    let err = client(&cfg)
        .complete(&request("gpt-4o-mini"))
        .await
        .unwrap_err();
    assert_config_error(&err, 429, "exceeded your current quota");
    assert_eq!(requests(&server).await.len(), 1);
}

failure_scenarios!(provider());

async fn mount_json(server: &MockServer, body: serde_json::Value) {
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn structured_output_asks_for_a_json_schema() {
    let server = MockServer::start().await;
    let mut body = completion_body();
    body["choices"][0]["message"]["content"] = json!("{\"route\":\"B\"}");
    mount_json(&server, body).await;
    let cfg = config(ProviderKind::Openai, &server);
    let c = client(&cfg)
        .complete(&structured("gpt-4o-mini"))
        .await
        .unwrap();
    assert_eq!(c.text, "{\"route\":\"B\"}");
    let sent = json_body(&requests(&server).await[0]);
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["name"], "route");
    assert_eq!(sent["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        sent["response_format"]["json_schema"]["schema"]["properties"]["route"]["enum"],
        json!(["A", "B"])
    );
}

#[tokio::test]
async fn tool_calls_are_read_and_answered() {
    let server = MockServer::start().await;
    let mut body = completion_body();
    body["choices"][0]["message"] = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get-session-state", "arguments": "{\"key\":\"x\"}"}},
        {"id": "call_b", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\": \"1/0\"}"}}
    ]});
    body["choices"][0]["finish_reason"] = json!("tool_calls");
    mount_json(&server, body).await;
    let cfg = config(ProviderKind::Openai, &server);
    let c = client(&cfg)
        .complete(&with_tools("gpt-4o-mini"))
        .await
        .unwrap();
    assert_eq!(c.tool_calls.len(), 2);
    assert_eq!(c.tool_calls[0].name, "get-session-state");
    assert_eq!(c.tool_calls[0].arguments, json!({"key": "x"}));
    assert_eq!(c.tool_calls[1].id, "call_b");
    let sent = json_body(&requests(&server).await[0]);
    assert_eq!(sent["tools"][0]["type"], "function");
    assert_eq!(sent["tools"][1]["function"]["name"], "calculator");

    client(&cfg)
        .complete(&after_two_calls("gpt-4o-mini"))
        .await
        .unwrap();
    let sent = json_body(&requests(&server).await[1]);
    let m = sent["messages"].as_array().unwrap();
    let n = m.len();
    assert_eq!(m[n - 3]["role"], "assistant");
    assert_eq!(m[n - 3]["content"], json!(null));
    assert_eq!(
        m[n - 3]["tool_calls"][1]["function"]["arguments"],
        "{\"expression\":\"1/0\"}"
    );
    assert_eq!(
        m[n - 2],
        json!({"role": "tool", "content": "The value is 1", "tool_call_id": "call_a"})
    );
    assert_eq!(m[n - 1]["tool_call_id"], "call_b");
}

#[tokio::test]
async fn streamed_tool_calls_are_assembled_from_their_pieces() {
    let mut body = common::sse(&[
        (
            "",
            chunk(
                json!({"role": "assistant", "content": null, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "calculator", "arguments": "{\"expr"}}]}),
                None,
            ),
        ),
        (
            "",
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "ession\": \"2+2\"}"}},
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get-session-state", "arguments": ""}}]}),
                None,
            ),
        ),
        (
            "",
            chunk(
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"key\": \"x\"}"}}]}),
                None,
            ),
        ),
        ("", chunk(json!({}), Some("tool_calls"))),
    ]);
    body.push_str("data: [DONE]\n\n");
    let (_server, cfg) = serve(
        ProviderKind::Openai,
        "/chat/completions",
        sse_response(body),
    )
    .await;
    let s = client(&cfg)
        .stream(&with_tools("gpt-4o-mini"))
        .await
        .unwrap();
    let (text, _, done) = collect(s).await.unwrap();
    assert_eq!(text, "");
    assert_eq!(done.tool_calls.len(), 2);
    assert_eq!(done.tool_calls[0].arguments, json!({"expression": "2+2"}));
    assert_eq!(done.tool_calls[1].id, "call_b");
    assert_eq!(done.tool_calls[1].arguments, json!({"key": "x"}));
}

#[tokio::test]
async fn web_search_is_asked_for_as_chat_completions_documents_it() {
    let (server, cfg) = provider().serve_ok().await;
    client(&cfg)
        .complete(&with_web_search("gpt-4o-search-preview"))
        .await
        .unwrap();
    let sent = json_body(&requests(&server).await[0]);
    assert_eq!(sent["web_search_options"], json!({}));
}
