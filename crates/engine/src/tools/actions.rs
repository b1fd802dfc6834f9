//! Custom action operations as tools: the model's arguments (the original's
//! `params` / `path_params` / `headers` / `cookies` / `body_data` groups)
//! become one HTTP request through the outbound client, and the answer goes
//! back to the model as text. Only parameters the operation declares are
//! sent, so a model cannot add a header of its own; the credential goes only
//! to the action's own server.

use std::sync::Arc;

use base64::Engine as _;
use domain::actions::{ActionAccess, AuthKind, Location, Operation};
use llm::ToolSpec;
use serde_json::Value;

use crate::outbound::{Fetched, Outbound};

/// How much of an error answer the model is shown.
const ERROR_EXCERPT: usize = 2000;

/// One operation a node may call.
#[derive(Debug, Clone)]
pub struct ActionTool {
    pub spec: ToolSpec,
    pub operation: Operation,
    pub action: Arc<ActionAccess>,
}

impl ActionTool {
    pub fn new(action: Arc<ActionAccess>, operation: Operation) -> Self {
        let mut description = operation.description.clone();
        if !action.prompt.trim().is_empty() {
            description.push_str("\n\n");
            description.push_str(action.prompt.trim());
        }
        ActionTool {
            spec: ToolSpec {
                name: operation.operation_id.clone(),
                description,
                parameters: operation.schema.clone(),
            },
            operation,
            action,
        }
    }
}

/// A parameter value as text: strings as they are, anything else as JSON.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The request an operation's arguments describe, or what is wrong with them.
fn build(
    outbound: &Outbound,
    t: &ActionTool,
    args: &Value,
) -> Result<reqwest::RequestBuilder, String> {
    let op = &t.operation;
    let group = |loc: Location| args.get(loc.argument()).and_then(Value::as_object);
    let value = |loc: Location, name: &str| group(loc).and_then(|g| g.get(name));
    for p in op.params.iter().filter(|p| p.required) {
        if value(p.location, &p.name).is_none_or(Value::is_null) {
            return Err(format!(
                "Error: the required parameter {:?} ({}.{}) is missing",
                p.name,
                p.location.argument(),
                p.name
            ));
        }
    }
    let mut url = url::Url::parse(&t.action.server_url)
        .map_err(|e| format!("Error: the action's server URL is invalid: {e}"))?;
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| "Error: the action's server URL cannot take a path".to_string())?;
        segments.pop_if_empty();
        for seg in op.path.split('/').filter(|s| !s.is_empty()) {
            let mut out = seg.to_string();
            for p in op.params.iter().filter(|p| p.location == Location::Path) {
                let holder = format!("{{{}}}", p.name);
                if out.contains(&holder) {
                    let v = value(Location::Path, &p.name)
                        .and_then(as_text)
                        .unwrap_or_default();
                    out = out.replace(&holder, &v);
                }
            }
            // Each segment is percent-encoded, so a value cannot add a path or a host.
            segments.push(&out);
        }
    }
    let queries: Vec<(String, String)> = op
        .params
        .iter()
        .filter(|p| p.location == Location::Query)
        .filter_map(|p| value(Location::Query, &p.name).map(|v| (p.name.as_str(), v)))
        .flat_map(|(name, v)| match v {
            Value::Array(items) => items
                .iter()
                .filter_map(as_text)
                .map(|s| (name.to_string(), s))
                .collect::<Vec<_>>(),
            other => as_text(other)
                .map(|s| (name.to_string(), s))
                .into_iter()
                .collect(),
        })
        .collect();
    if !queries.is_empty() {
        url.query_pairs_mut().extend_pairs(queries);
    }
    let method = reqwest::Method::from_bytes(op.method.to_uppercase().as_bytes())
        .map_err(|_| format!("Error: unknown HTTP method {:?}", op.method))?;
    let mut rb = authenticate(t, outbound.request(method, url.clone()), &url);
    let auth_header = match t.action.auth.kind {
        AuthKind::ApiKey => t.action.auth.header.clone(),
        AuthKind::Bearer | AuthKind::Basic => Some("Authorization".to_string()),
        AuthKind::None => None,
    };
    for p in op.params.iter().filter(|p| p.location == Location::Header) {
        let reserved = ["host", "content-length", "transfer-encoding", "cookie"]
            .contains(&p.name.to_ascii_lowercase().as_str())
            || auth_header
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(&p.name));
        if reserved {
            continue;
        }
        if let Some(v) = value(Location::Header, &p.name).and_then(as_text) {
            rb = rb.header(p.name.as_str(), v);
        }
    }
    let cookies: Vec<String> = op
        .params
        .iter()
        .filter(|p| p.location == Location::Cookie)
        .filter_map(|p| {
            value(Location::Cookie, &p.name)
                .and_then(as_text)
                .map(|v| format!("{}={v}", p.name))
        })
        .collect();
    if !cookies.is_empty() {
        rb = rb.header(reqwest::header::COOKIE, cookies.join("; "));
    }
    if op.has_body
        && let Some(body) = args.get(domain::actions::openapi::BODY)
    {
        rb = rb.json(body);
    }
    Ok(rb)
}

/// Adds the credential when the request goes to the action's own server.
fn authenticate(
    t: &ActionTool,
    rb: reqwest::RequestBuilder,
    url: &url::Url,
) -> reqwest::RequestBuilder {
    let own = url::Url::parse(&t.action.server_url).ok();
    let same_origin = own.is_some_and(|o| {
        o.scheme() == url.scheme()
            && o.host_str() == url.host_str()
            && o.port_or_known_default() == url.port_or_known_default()
    });
    let auth = &t.action.auth;
    let Some(secret) = auth.secret.as_deref().filter(|_| same_origin) else {
        return rb;
    };
    match auth.kind {
        AuthKind::None => rb,
        AuthKind::ApiKey => rb.header(
            auth.header
                .as_deref()
                .unwrap_or(domain::actions::DEFAULT_API_KEY_HEADER),
            secret,
        ),
        AuthKind::Bearer => rb.header(reqwest::header::AUTHORIZATION, format!("Bearer {secret}")),
        AuthKind::Basic => {
            let pair = format!("{}:{secret}", auth.username.as_deref().unwrap_or_default());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            rb.header(reqwest::header::AUTHORIZATION, format!("Basic {encoded}"))
        }
    }
}

/// Calls the operation: the answer's text for the model, or what went wrong.
pub async fn call(outbound: &Outbound, t: &ActionTool, args: &Value) -> Result<String, String> {
    let rb = build(outbound, t, args)?;
    let f = outbound
        .fetch(rb)
        .await
        .map_err(|e| format!("Error: {e}"))?;
    answer(f)
}

fn answer(f: Fetched) -> Result<String, String> {
    let text = String::from_utf8_lossy(&f.body).into_owned();
    match f.status {
        200..=299 => {
            let attachment = f.content_disposition.as_deref().is_some_and(|d| {
                d.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("attachment")
            });
            if attachment {
                // Decision: files are not stored or attached yet; the model learns one came.
                return Ok(format!(
                    "The API sent a file ({}, {} bytes), which cannot be shown here.",
                    f.content_type
                        .as_deref()
                        .unwrap_or("application/octet-stream"),
                    f.body.len()
                ));
            }
            Ok(text)
        }
        300..=399 => Err(format!(
            "Error: the API answered {} (a redirect, which is not followed)",
            f.status
        )),
        s => {
            let excerpt: String = text.chars().take(ERROR_EXCERPT).collect();
            Err(format!("Error: the API answered {s}: {excerpt}"))
        }
    }
}

/// Whether an action's health path answers: `Ok(status)` when it is up.
pub async fn health(outbound: &Outbound, action: Arc<ActionAccess>) -> Result<u16, String> {
    let path = action
        .health_path
        .clone()
        .ok_or_else(|| format!("the action {:?} has no health path", action.name))?;
    let probe = ActionTool::new(
        action,
        Operation {
            operation_id: "health".into(),
            method: "get".into(),
            path,
            description: String::new(),
            params: Vec::new(),
            has_body: false,
            schema: Value::Null,
        },
    );
    let rb = build(outbound, &probe, &Value::Null)?;
    let f = outbound.fetch(rb).await.map_err(|e| e.to_string())?;
    if (200..300).contains(&f.status) {
        Ok(f.status)
    } else {
        Err(format!("the health path answered {}", f.status))
    }
}

/// Calls one action's health path (with its credential, through the
/// outbound policy) and records up or down: `Ok(status)` when up, else
/// `Err(why)`. An action without a health path is refused, nothing recorded.
pub async fn check_one<D: domain::conn::Reads + domain::conn::Writes>(
    db: &D,
    secrets: &domain::secrets::SecretBox,
    outbound: &Outbound,
    team: domain::TeamId,
    name: &str,
) -> Result<Result<u16, String>, domain::Error> {
    let access = domain::actions::access(db, secrets, team, name).await?;
    if access.health_path.is_none() {
        return Err(domain::Error::BadRequest(format!(
            "the action {name:?} has no health path (add it with --health-path)"
        )));
    }
    let outcome = health(outbound, Arc::new(access)).await;
    let up = if outcome.is_ok() {
        domain::actions::Health::Up
    } else {
        domain::actions::Health::Down
    };
    domain::actions::record_health(db, team, name, up).await?;
    Ok(outcome)
}

/// Checks the health path of every action that declares one (the longest
/// unchecked first, at most `limit`); answers how many were checked. An
/// action removed meanwhile is skipped.
pub async fn check_health(engine: &crate::Engine, limit: u64) -> Result<usize, domain::Error> {
    let d = &engine.domain;
    let due = domain::actions::due_for_health(d, limit).await?;
    let mut checked = 0;
    for (team, name) in due {
        match check_one(d, &d.secrets, &engine.outbound, team, &name).await {
            Ok(Ok(_)) => checked += 1,
            Ok(Err(why)) => {
                tracing::info!(action = %name, %why, "custom action health check failed");
                checked += 1;
            }
            Err(domain::Error::NotFound(_) | domain::Error::BadRequest(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(checked)
}
