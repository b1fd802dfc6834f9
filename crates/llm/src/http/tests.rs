use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};

use super::errors::retry_after;
use super::*;

fn ctx() -> Ctx {
    let mut cfg = ProviderConfig::new(crate::ProviderKind::Openai);
    cfg.api_key = Some("sk-secret-123".into());
    Ctx::new("openai", &cfg, "gpt-test")
}

fn hdrs(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    m
}

#[test]
fn retry_after_reads_seconds_dates_and_milliseconds() {
    assert_eq!(
        retry_after(&hdrs(&[("retry-after", "7")])),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        retry_after(&hdrs(&[("retry-after-ms", "1500"), ("retry-after", "7")])),
        Some(Duration::from_millis(1500))
    );
    let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(100));
    let d = retry_after(&hdrs(&[("retry-after", &soon)])).unwrap();
    assert!(
        d > Duration::from_secs(90) && d <= Duration::from_secs(100),
        "{d:?}"
    );
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(100));
    assert_eq!(
        retry_after(&hdrs(&[("retry-after", &past)])),
        Some(Duration::ZERO)
    );
    assert_eq!(retry_after(&hdrs(&[("retry-after", "soon")])), None);
    assert_eq!(retry_after(&HeaderMap::new()), None);
}

#[test]
fn classifies_statuses() {
    let c = ctx();
    let h = HeaderMap::new();
    let e = c.status_error(
        401,
        &h,
        b"{\"error\":{\"message\":\"Incorrect API key provided: sk-secret-123\"}}",
        "u",
    );
    assert!(matches!(
        e,
        LlmError::Config {
            status: Some(401),
            ..
        }
    ));
    assert!(e.to_string().contains("authentication failed"));
    assert!(!e.to_string().contains("sk-secret"));

    let e = c.status_error(429, &hdrs(&[("retry-after", "2")]), b"{}", "u");
    assert_eq!(
        e,
        LlmError::Retryable {
            message: "rate limited by openai (HTTP 429)".into(),
            status: Some(429),
            retry_after: Some(Duration::from_secs(2)),
        }
    );

    let quota = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
    assert!(matches!(
        c.status_error(429, &h, quota, "u"),
        LlmError::Config {
            status: Some(429),
            ..
        }
    ));

    for s in [500, 502, 503, 529] {
        assert!(c.status_error(s, &h, b"oops", "u").is_retryable(), "{s}");
    }
    let e = c.status_error(400, &h, br#"{"error":{"message":"bad temperature"}}"#, "u");
    assert!(matches!(
        e,
        LlmError::Config {
            status: Some(400),
            ..
        }
    ));
    assert!(e.to_string().contains("bad temperature"));
    let e = c.status_error(404, &h, b"", "http://x/v1/chat/completions");
    assert!(e.to_string().contains("unknown model or endpoint"));
    assert!(e.to_string().contains("gpt-test"));
}

#[test]
fn gemini_specifics_in_error_bodies() {
    let c = ctx();
    let h = HeaderMap::new();
    let bad_key = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
    assert!(
        c.status_error(400, &h, bad_key, "u")
            .to_string()
            .contains("authentication failed")
    );
    let limited = br#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#;
    match c.status_error(429, &h, limited, "u") {
        LlmError::Retryable { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(37)))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn event_errors_are_classified_by_type() {
    let c = ctx();
    let overloaded = serde_json::json!({"type": "overloaded_error", "message": "Overloaded"});
    assert!(c.event_error(&overloaded).is_retryable());
    let invalid = serde_json::json!({"type": "invalid_request_error", "message": "bad"});
    assert!(matches!(c.event_error(&invalid), LlmError::Config { .. }));
}

#[test]
fn base_url_trims_trailing_slashes() {
    let mut cfg = ProviderConfig::new(crate::ProviderKind::Openai);
    assert_eq!(base_url(&cfg, "https://d/v1"), "https://d/v1");
    cfg.base_url = Some("http://127.0.0.1:1234/openai/v1/".into());
    assert_eq!(
        base_url(&cfg, "https://d/v1"),
        "http://127.0.0.1:1234/openai/v1"
    );
}

#[test]
fn client_builds_offline() {
    install_crypto_provider();
    install_crypto_provider();
    let _ = client();
}
