//! Shared fixtures for the adapter tests: a provider config pointing at a
//! wiremock server on loopback, and the failure scenarios every HTTP adapter
//! must classify the same way.

#![allow(dead_code, reason = "each test crate uses a part of the shared fakes")]

use std::sync::Arc;
use std::time::Duration;

use chatstudio_llm::anthropic::Anthropic;
use chatstudio_llm::gemini::Gemini;
use chatstudio_llm::openai::OpenAi;
use chatstudio_llm::retry::Retrying;
use chatstudio_llm::{
    ChatMessage, Completion, CompletionRequest, CompletionStream, LlmClient, LlmError,
    ProviderConfig, ProviderKind, Role, StreamEvent,
};
use futures_util::StreamExt;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The failure scenarios of [`Provider`], as one test each for the adapter
/// a test crate covers: `failure_scenarios!(provider());`.
macro_rules! failure_scenarios {
    ($provider:expr) => {
        failure_scenarios!(@each $provider; rate_limited_then_ok, server_error_then_ok,
            server_error_forever, unauthorized, bad_request, not_found, malformed_json,
            missing_fields, slow_response, connection_refused);
    };
    (@each $provider:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                $provider.$name().await;
            }
        )*
    };
}
pub(crate) use failure_scenarios;

pub const API_KEY: &str = "test-secret-key-0123456789";

pub fn config(kind: ProviderKind, server: &MockServer) -> ProviderConfig {
    let mut cfg = ProviderConfig::new(kind);
    cfg.base_url = Some(format!("{}/", server.uri()));
    cfg.api_key = Some(API_KEY.to_owned());
    cfg.timeout = Duration::from_secs(10);
    cfg.max_retries = 2;
    cfg
}

/// The adapter for `cfg` behind the retry policy, with millisecond backoff.
pub fn client(cfg: &ProviderConfig) -> Arc<dyn LlmClient> {
    let http = chatstudio_llm::http::client();
    let inner: Arc<dyn LlmClient> = match cfg.kind {
        ProviderKind::Openai => Arc::new(OpenAi::new(cfg.clone(), http)),
        ProviderKind::Anthropic => Arc::new(Anthropic::new(cfg.clone(), http)),
        ProviderKind::Gemini => Arc::new(Gemini::new(cfg.clone(), http)),
        ProviderKind::Builtin => Arc::new(chatstudio_llm::builtin::Builtin),
    };
    Arc::new(Retrying::new(inner, cfg.max_retries).with_base_delay(Duration::from_millis(2)))
}

pub fn request(model: &str) -> CompletionRequest {
    CompletionRequest {
        model: model.to_owned(),
        system: Some("You are terse.".to_owned()),
        messages: vec![
            ChatMessage::new(Role::User, "Hi"),
            ChatMessage::new(Role::Assistant, "Hello!"),
            ChatMessage::new(Role::User, "How are you?"),
        ],
        temperature: Some(0.5),
        max_tokens: Some(100),
        response_schema: None,
        tools: Vec::new(),
        built_in: Vec::new(),
    }
}

/// Drains a stream: the concatenated deltas, the number of deltas, and the
/// final completion (or the first error).
pub async fn collect(
    mut stream: CompletionStream,
) -> Result<(String, usize, Completion), LlmError> {
    let mut text = String::new();
    let mut deltas = 0;
    while let Some(item) = stream.next().await {
        match item? {
            StreamEvent::Delta(d) => {
                text.push_str(&d);
                deltas += 1;
            }
            StreamEvent::Done(c) => {
                assert!(stream.next().await.is_none(), "items after Done");
                return Ok((text, deltas, c));
            }
        }
    }
    panic!("stream ended without Done")
}

pub async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap_or_default()
}

/// The one request the fake received.
pub async fn only_request(server: &MockServer) -> wiremock::Request {
    let mut reqs = requests(server).await;
    assert_eq!(reqs.len(), 1);
    reqs.remove(0)
}

/// Answers POSTs to `at` with `resp`; only the first `times` of them when given.
pub async fn answer(server: &MockServer, at: &str, resp: ResponseTemplate, times: Option<u64>) {
    let mock = Mock::given(method("POST")).and(path(at)).respond_with(resp);
    let mock = match times {
        Some(n) => mock.up_to_n_times(n),
        None => mock,
    };
    mock.mount(server).await;
}

/// A fake `kind` provider answering POSTs to `at` with `resp`, and a config
/// pointing at it. The server stops when dropped.
pub async fn serve(
    kind: ProviderKind,
    at: &str,
    resp: ResponseTemplate,
) -> (MockServer, ProviderConfig) {
    let server = MockServer::start().await;
    answer(&server, at, resp, None).await;
    let cfg = config(kind, &server);
    (server, cfg)
}

pub fn json_body(req: &wiremock::Request) -> Value {
    serde_json::from_slice(&req.body).expect("request body is JSON")
}

pub fn header<'a>(req: &'a wiremock::Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `err` is permanent (the provider's configuration or the request is at
/// fault), from an HTTP `status`, and says `why`.
pub fn assert_config_error(err: &LlmError, status: u16, why: &str) {
    assert!(
        matches!(err, LlmError::Config { status: Some(s), .. } if *s == status),
        "{err:?}"
    );
    assert!(err.to_string().contains(why), "{err}");
}

/// One provider's plain-call endpoint and a successful answer for it.
pub struct Provider {
    pub kind: ProviderKind,
    pub model: &'static str,
    pub path: &'static str,
    pub ok_body: Value,
    pub ok_text: &'static str,
}

impl Provider {
    pub async fn mount(&self, server: &MockServer, resp: ResponseTemplate, times: Option<u64>) {
        answer(server, self.path, resp, times).await;
    }

    pub fn ok(&self) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(&self.ok_body)
    }

    /// This provider's fake answering its endpoint with `resp`.
    pub async fn serve(&self, resp: ResponseTemplate) -> (MockServer, ProviderConfig) {
        serve(self.kind, self.path, resp).await
    }

    pub async fn serve_ok(&self) -> (MockServer, ProviderConfig) {
        self.serve(self.ok()).await
    }

    async fn run(&self, cfg: &ProviderConfig) -> Result<Completion, LlmError> {
        client(cfg).complete(&request(self.model)).await
    }

    /// 429 with `Retry-After: 1`, then success: one retry, after the hinted wait.
    pub async fn rate_limited_then_ok(&self) {
        let server = MockServer::start().await;
        let limited = ResponseTemplate::new(429)
            .insert_header("retry-after", "1")
            .set_body_json(
                serde_json::json!({"error": {"message": "slow down", "type": "rate_limit_error"}}),
            );
        self.mount(&server, limited, Some(1)).await;
        self.mount(&server, self.ok(), None).await;
        let cfg = config(self.kind, &server);
        let c = self.run(&cfg).await.expect("retried to success");
        assert_eq!(c.text, self.ok_text);
        assert_eq!(requests(&server).await.len(), 2);
    }

    pub async fn server_error_then_ok(&self) {
        let server = MockServer::start().await;
        self.mount(
            &server,
            ResponseTemplate::new(500).set_body_string("boom"),
            Some(1),
        )
        .await;
        self.mount(&server, self.ok(), None).await;
        let cfg = config(self.kind, &server);
        let c = self.run(&cfg).await.expect("retried to success");
        assert_eq!(c.text, self.ok_text);
        assert_eq!(requests(&server).await.len(), 2);
    }

    pub async fn server_error_forever(&self) {
        let (server, mut cfg) = self.serve(ResponseTemplate::new(503)).await;
        cfg.max_retries = 3;
        let err = self.run(&cfg).await.unwrap_err();
        assert!(
            matches!(
                err,
                LlmError::Retryable {
                    status: Some(503),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(requests(&server).await.len(), 4);
    }

    /// 401 fails at once, says why, and never echoes the key even when the
    /// provider's body quotes it.
    pub async fn unauthorized(&self) {
        let body = serde_json::json!({"error": {"message": format!("Incorrect API key provided: {API_KEY}"), "type": "authentication_error"}});
        let (server, cfg) = self
            .serve(ResponseTemplate::new(401).set_body_json(body))
            .await;
        // Through `client_for`, as the engine builds it.
        let client = chatstudio_llm::client_for(&cfg, &chatstudio_llm::http::client());
        let err = client.complete(&request(self.model)).await.unwrap_err();
        assert_config_error(
            &err,
            401,
            "authentication failed: check the provider's API key",
        );
        assert!(!err.to_string().contains(API_KEY), "{err}");
        assert_eq!(requests(&server).await.len(), 1);
    }

    /// 400 is permanent and carries the provider's own explanation.
    pub async fn bad_request(&self) {
        let body =
            serde_json::json!({"error": {"message": "temperature must be at most 2", "code": 400}});
        let (server, cfg) = self
            .serve(ResponseTemplate::new(400).set_body_json(body))
            .await;
        let err = self.run(&cfg).await.unwrap_err();
        assert_config_error(&err, 400, "temperature must be at most 2");
        assert_eq!(requests(&server).await.len(), 1);
    }

    pub async fn not_found(&self) {
        let (server, cfg) = self.serve(ResponseTemplate::new(404)).await;
        let err = self.run(&cfg).await.unwrap_err();
        assert_config_error(&err, 404, "unknown model or endpoint");
        assert!(err.to_string().contains(self.model), "{err}");
        assert_eq!(requests(&server).await.len(), 1);
    }

    pub async fn malformed_json(&self) {
        let resp = ResponseTemplate::new(200).set_body_raw("{\"choices\": [", "application/json");
        let (server, cfg) = self.serve(resp).await;
        let err = self.run(&cfg).await.unwrap_err();
        assert!(matches!(err, LlmError::InvalidResponse { .. }), "{err:?}");
        assert_eq!(requests(&server).await.len(), 1);
    }

    /// Valid JSON that lacks what the provider always sends.
    pub async fn missing_fields(&self) {
        let resp =
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"unexpected": true}));
        let (_server, cfg) = self.serve(resp).await;
        let err = self.run(&cfg).await.unwrap_err();
        assert!(matches!(err, LlmError::InvalidResponse { .. }), "{err:?}");
    }

    /// A response slower than the timeout is a retryable timeout, retried.
    pub async fn slow_response(&self) {
        let (server, mut cfg) = self
            .serve(self.ok().set_delay(Duration::from_secs(5)))
            .await;
        cfg.timeout = Duration::from_millis(200);
        cfg.max_retries = 1;
        let err = self.run(&cfg).await.unwrap_err();
        assert!(
            matches!(err, LlmError::Retryable { status: None, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("did not answer within 200ms"),
            "{err}"
        );
        assert_eq!(requests(&server).await.len(), 2);
    }

    /// Nothing listens: a connection error, retryable.
    pub async fn connection_refused(&self) {
        let server = MockServer::start().await;
        let mut cfg = config(self.kind, &server);
        // A port that was free a moment ago is almost surely still closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        cfg.base_url = Some(format!("http://127.0.0.1:{port}"));
        cfg.max_retries = 0;
        let err = client(&cfg)
            .complete(&request(self.model))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LlmError::Retryable { status: None, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("could not connect"), "{err}");
    }
}

pub fn sse(events: &[(&str, Value)]) -> String {
    let mut out = String::new();
    for (name, data) in events {
        if !name.is_empty() {
            out.push_str(&format!("event: {name}\n"));
        }
        out.push_str(&format!("data: {data}\n\n"));
    }
    out
}

pub fn sse_response(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

/// A request for structured output: `{"route": "A" | "B"}`.
pub fn structured(model: &str) -> CompletionRequest {
    let mut r = request(model);
    r.response_schema = Some(chatstudio_llm::ResponseSchema {
        name: "route".into(),
        schema: serde_json::json!({
            "type": "object",
            "properties": {"route": {"type": ["string", "null"], "enum": ["A", "B"]}},
            "required": ["route"],
            "additionalProperties": false
        }),
    });
    r
}

/// Two tools the model may call, for the tool-calling tests.
pub fn with_tools(model: &str) -> CompletionRequest {
    let mut r = request(model);
    r.tools = ["get-session-state", "calculator"]
        .iter()
        .map(|n| chatstudio_llm::ToolSpec {
            name: (*n).to_string(),
            description: format!("The {n} tool"),
            parameters: serde_json::json!({"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}),
        })
        .collect();
    r
}

/// `with_tools` after the model called both tools and they answered
/// (the second with an error).
pub fn after_two_calls(model: &str) -> CompletionRequest {
    let mut r = with_tools(model);
    let calls = vec![
        chatstudio_llm::ToolCall {
            id: "call_a".into(),
            name: "get-session-state".into(),
            arguments: serde_json::json!({"key": "x"}),
        },
        chatstudio_llm::ToolCall {
            id: "call_b".into(),
            name: "calculator".into(),
            arguments: serde_json::json!({"expression": "1/0"}),
        },
    ];
    r.messages.push(ChatMessage::calling("", calls.clone()));
    r.messages
        .push(ChatMessage::tool_result(&calls[0], "The value is 1", false));
    r.messages.push(ChatMessage::tool_result(
        &calls[1],
        "division by zero",
        true,
    ));
    r
}

/// A request asking the provider to search the web (only example.org, at most 2 searches).
pub fn with_web_search(model: &str) -> CompletionRequest {
    let mut r = request(model);
    r.built_in = vec![chatstudio_llm::BuiltInTool::WebSearch(
        chatstudio_llm::WebSearch {
            allowed_domains: vec!["example.org".into()],
            blocked_domains: Vec::new(),
            max_uses: Some(2),
        },
    )];
    r
}
