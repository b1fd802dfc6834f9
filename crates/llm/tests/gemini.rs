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
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MODEL: &str = "gemini-2.5-flash";
const PATH: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const STREAM_PATH: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";

fn response_body() -> serde_json::Value {
    json!({
        "candidates": [{
            "content": {"parts": [{"text": "I am fine, "}, {"text": "thanks."}], "role": "model"},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {
            "promptTokenCount": 1100,
            "candidatesTokenCount": 6,
            "cachedContentTokenCount": 1000,
            "totalTokenCount": 1106,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1100}]
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc"
    })
}

fn provider() -> Provider {
    Provider {
        kind: ProviderKind::Gemini,
        model: MODEL,
        path: PATH,
        ok_body: response_body(),
        ok_text: "I am fine, thanks.",
    }
}

#[tokio::test]
async fn sends_the_gemini_wire_request() {
    let (server, cfg) = provider().serve_ok().await;
    client(&cfg).complete(&request(MODEL)).await.unwrap();

    let r = &only_request(&server).await;
    assert_eq!(r.url.path(), PATH);
    assert_eq!(
        r.url.query(),
        None,
        "the key travels in a header, never the URL"
    );
    assert_eq!(header(r, "x-goog-api-key"), Some(API_KEY));
    assert_eq!(header(r, "authorization"), None);
    assert_eq!(
        json_body(r),
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello!"}]},
                {"role": "user", "parts": [{"text": "How are you?"}]}
            ],
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "generationConfig": {"temperature": 0.5, "maxOutputTokens": 100}
        })
    );
}

#[tokio::test]
async fn omits_unset_options_and_moves_system_turns() {
    let (server, cfg) = provider().serve_ok().await;
    let mut req = request(&format!("models/{MODEL}"));
    req.system = None;
    req.temperature = None;
    req.max_tokens = None;
    req.messages = vec![
        ChatMessage::new(Role::System, "Be kind."),
        ChatMessage::new(Role::User, "Hi"),
    ];
    client(&cfg).complete(&req).await.unwrap();
    assert_eq!(
        json_body(&requests(&server).await[0]),
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "systemInstruction": {"parts": [{"text": "Be kind."}]}
        })
    );
}

#[tokio::test]
async fn maps_a_response_and_its_usage() {
    let (_server, cfg) = provider().serve_ok().await;
    let c = client(&cfg).complete(&request(MODEL)).await.unwrap();
    assert_eq!(c.text, "I am fine, thanks.");
    assert_eq!(c.model, "gemini-2.5-flash");
    assert_eq!(c.finish_reason.as_deref(), Some("STOP"));
    assert_eq!(c.usage, Usage::new(100, 6, 1000, 0));
}

#[tokio::test]
async fn thinking_tokens_count_as_output_and_thoughts_are_not_text() {
    let body = json!({
        "candidates": [{
            "content": {"parts": [{"text": "Let me think…", "thought": true}, {"text": "42"}], "role": "model"},
            "finishReason": "STOP"
        }],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 1, "thoughtsTokenCount": 50}
    });
    let (_server, cfg) = provider()
        .serve(ResponseTemplate::new(200).set_body_json(body))
        .await;
    let c = client(&cfg).complete(&request(MODEL)).await.unwrap();
    assert_eq!(c.text, "42");
    assert_eq!(c.model, MODEL);
    assert_eq!(c.usage.input_tokens, 10);
    assert_eq!(c.usage.output_tokens, 51);
}

#[tokio::test]
async fn blocked_prompt_is_an_empty_answer_with_the_reason() {
    let body = json!({
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}
    });
    let (_server, cfg) = provider()
        .serve(ResponseTemplate::new(200).set_body_json(body))
        .await;
    let c = client(&cfg).complete(&request(MODEL)).await.unwrap();
    assert_eq!(c.text, "");
    assert_eq!(c.finish_reason.as_deref(), Some("SAFETY"));
}

fn stream_body() -> String {
    let chunk = |text: &str, finish: Option<&str>, usage: serde_json::Value| {
        let mut candidate =
            json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash-001"})
    };
    // Gemini's alt=sse framing: data lines only, CRLF line endings.
    sse(&[
        ("", chunk("I am", None, json!({"promptTokenCount": 40, "totalTokenCount": 40}))),
        ("", chunk(" fine,", None, json!({"promptTokenCount": 40, "totalTokenCount": 40}))),
        (
            "",
            chunk(
                " thanks.",
                Some("STOP"),
                json!({"promptTokenCount": 40, "candidatesTokenCount": 5, "cachedContentTokenCount": 32, "totalTokenCount": 45}),
            ),
        ),
    ])
    .replace('\n', "\r\n")
}

#[tokio::test]
async fn streams_deltas_and_final_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STREAM_PATH))
        .and(query_param("alt", "sse"))
        .respond_with(sse_response(stream_body()))
        .mount(&server)
        .await;
    let cfg = config(ProviderKind::Gemini, &server);
    let stream = client(&cfg).stream(&request(MODEL)).await.unwrap();
    let (text, deltas, done) = collect(stream).await.unwrap();
    assert_eq!(text, "I am fine, thanks.");
    assert_eq!(deltas, 3);
    assert_eq!(done.text, text);
    assert_eq!(done.model, "gemini-2.5-flash-001");
    assert_eq!(done.finish_reason.as_deref(), Some("STOP"));
    assert_eq!(done.usage, Usage::new(8, 5, 32, 0));
    let r = &requests(&server).await[0];
    assert_eq!(header(r, "x-goog-api-key"), Some(API_KEY));
    assert_eq!(
        json_body(r)["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}]})
    );
}

#[tokio::test]
async fn empty_stream_is_invalid() {
    let (_server, cfg) = serve(
        ProviderKind::Gemini,
        STREAM_PATH,
        sse_response(String::new()),
    )
    .await;
    let stream = client(&cfg).stream(&request(MODEL)).await.unwrap();
    let err = collect(stream).await.unwrap_err();
    assert!(matches!(err, LlmError::InvalidResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn invalid_api_key_400_reads_as_an_auth_failure() {
    let body = json!({"error": {
        "code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                     "domain": "googleapis.com"}]
    }});
    let (server, cfg) = provider()
        .serve(ResponseTemplate::new(400).set_body_json(body))
        .await;
    let err = client(&cfg).complete(&request(MODEL)).await.unwrap_err();
    assert_config_error(&err, 400, "authentication failed");
    assert_eq!(requests(&server).await.len(), 1);
}

failure_scenarios!(provider());

#[tokio::test]
async fn structured_output_sends_a_response_schema_gemini_accepts() {
    let mut body = response_body();
    body["candidates"][0]["content"]["parts"] = json!([{"text": "{\"route\": \"A\"}"}]);
    let (server, cfg) = provider()
        .serve(ResponseTemplate::new(200).set_body_json(body))
        .await;
    let c = client(&cfg).complete(&structured(MODEL)).await.unwrap();
    assert_eq!(c.text, "{\"route\": \"A\"}");
    let sent = json_body(&requests(&server).await[0]);
    let g = &sent["generationConfig"];
    assert_eq!(g["responseMimeType"], "application/json");
    // Keywords Gemini refuses are gone; a nullable type is `nullable`.
    assert!(
        g["responseSchema"].get("additionalProperties").is_none(),
        "{g}"
    );
    assert_eq!(g["responseSchema"]["properties"]["route"]["type"], "string");
    assert_eq!(g["responseSchema"]["properties"]["route"]["nullable"], true);
    assert_eq!(
        g["responseSchema"]["properties"]["route"]["enum"],
        json!(["A", "B"])
    );
}

#[tokio::test]
async fn function_calls_are_read_and_answered_with_function_responses() {
    let mut body = response_body();
    body["candidates"][0]["content"]["parts"] = json!([
        {"functionCall": {"name": "get-session-state", "args": {"key": "x"}}},
        {"functionCall": {"name": "calculator", "args": {"expression": "1/0"}}}
    ]);
    let (server, cfg) = provider()
        .serve(ResponseTemplate::new(200).set_body_json(body))
        .await;
    let c = client(&cfg).complete(&with_tools(MODEL)).await.unwrap();
    assert_eq!(c.tool_calls.len(), 2);
    assert_eq!(c.tool_calls[0].id, "call_0");
    assert_eq!(c.tool_calls[1].name, "calculator");
    let sent = json_body(&requests(&server).await[0]);
    assert_eq!(
        sent["tools"][0]["functionDeclarations"][1]["name"],
        "calculator"
    );

    client(&cfg)
        .complete(&after_two_calls(MODEL))
        .await
        .unwrap();
    let sent = json_body(&requests(&server).await[1]);
    let m = sent["contents"].as_array().unwrap();
    let n = m.len();
    assert_eq!(m[n - 2]["role"], "model");
    assert_eq!(
        m[n - 2]["parts"][1]["functionCall"]["args"],
        json!({"expression": "1/0"})
    );
    assert_eq!(m[n - 1]["role"], "user");
    assert_eq!(
        m[n - 1]["parts"][0],
        json!({"functionResponse": {"name": "get-session-state", "response": {"result": "The value is 1"}}})
    );
    assert_eq!(
        m[n - 1]["parts"][1]["functionResponse"]["response"],
        json!({"error": "division by zero"})
    );
}

#[tokio::test]
async fn streamed_function_calls_arrive_whole() {
    let server = MockServer::start().await;
    let mut first = response_body();
    first["candidates"][0]["content"]["parts"] =
        json!([{"functionCall": {"name": "calculator", "args": {"expression": "2+2"}}}]);
    first["candidates"][0]["finishReason"] = json!(null);
    let mut second = response_body();
    second["candidates"][0]["content"]["parts"] =
        json!([{"functionCall": {"name": "get-session-state", "args": {"key": "x"}}}]);
    let body = sse(&[("", first), ("", second)]);
    Mock::given(method("POST"))
        .respond_with(sse_response(body))
        .mount(&server)
        .await;
    let cfg = config(ProviderKind::Gemini, &server);
    let s = client(&cfg).stream(&with_tools(MODEL)).await.unwrap();
    let (_, _, done) = collect(s).await.unwrap();
    assert_eq!(done.tool_calls.len(), 2);
    assert_eq!(done.tool_calls[0].id, "call_0");
    assert_eq!(done.tool_calls[1].id, "call_1");
    assert_eq!(done.tool_calls[1].arguments, json!({"key": "x"}));
}

#[tokio::test]
async fn web_search_is_refused_where_the_provider_has_none() {
    let server = MockServer::start().await;
    let cfg = config(ProviderKind::Gemini, &server);
    let e = client(&cfg)
        .complete(&with_web_search(MODEL))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("web search is not available with Gemini"),
        "{e}"
    );
    assert!(requests(&server).await.is_empty());
}
