//! The working version in an editor: name, description and configuration as
//! YAML. A refused save shows the form again with the reason placed at the
//! node and the line it is about; rolling back copies a numbered version's
//! configuration into the working version.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::chatbots;
use domain::teams::Permission;
use minijinja::context;
use serde::Deserialize;

use api::AppState;

use crate::chatbots::yaml_text;
use crate::error::PageError;
use crate::member::{BotId, Member};
use crate::render;

/// Where in the YAML text an error points: the line (1-based) and the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub line: Option<usize>,
    pub node: Option<String>,
}

/// The node a pipeline error names (`node "llm" (llm): …`, `… unknown node "x"`).
fn node_named(message: &str) -> Option<String> {
    let start = message.find("node \"")? + "node \"".len();
    let rest = &message[start..];
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

/// The line a YAML parser reports (`… at line 4 column 7`).
fn reported_line(message: &str) -> Option<usize> {
    let start = message.find("line ")? + "line ".len();
    let digits: String = message[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The line of `text` that declares node `id` (block or flow style).
fn line_of_node(text: &str, id: &str) -> Option<usize> {
    let forms = [
        format!("id: {id}"),
        format!("id: \"{id}\""),
        format!("id: '{id}'"),
    ];
    text.lines()
        .position(|l| {
            forms.iter().any(|f| {
                l.find(f.as_str()).is_some_and(|at| {
                    let after = &l[at + f.len()..];
                    after.is_empty() || after.starts_with([',', '}', ' '])
                })
            })
        })
        .map(|i| i + 1)
}

/// Places an error message in the text it is about.
pub fn place(text: &str, message: &str) -> Place {
    let node = node_named(message);
    let line =
        reported_line(message).or_else(|| node.as_deref().and_then(|n| line_of_node(text, n)));
    Place { line, node }
}

/// The lines around `line` (1-based), numbered as an editor shows them.
fn excerpt(text: &str, line: usize) -> Vec<minijinja::Value> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(n, _)| n + 2 >= line && *n <= line + 2)
        .map(|(n, l)| context! { text => format!("{n:>4} {l}"), hit => n == line })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    config: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

fn edit_page(
    m: &Member,
    id: &uuid::Uuid,
    status: StatusCode,
    form: &EditForm,
    error: Option<(String, Place)>,
) -> Result<Response, PageError> {
    let (message, at) = match error {
        Some((msg, p)) => (Some(msg), Some(p)),
        None => (None, None),
    };
    render::page_with(
        status,
        "edit.html",
        context! {
            ..m.frame("chatbots"),
            ..context! {
                id => id.to_string(),
                name => form.name,
                description => form.description,
                config => form.config,
                error => message,
                error_line => at.as_ref().and_then(|p| p.line),
                excerpt => at.as_ref().and_then(|p| p.line).map(|line| excerpt(&form.config, line)),
                error_node => at.and_then(|p| p.node),
                lines => form.config.lines().count().max(12) + 2,
            }
        },
    )
}

pub async fn form(
    State(state): State<AppState>,
    m: Member,
    BotId(id): BotId,
) -> Result<Response, PageError> {
    m.require(Permission::ManageChatbots)?;
    let bot = chatbots::get(&state.domain, m.team.id, id).await?;
    let f = EditForm {
        name: bot.name,
        description: bot.description,
        config: yaml_text(&bot.config),
        csrfmiddlewaretoken: String::new(),
    };
    edit_page(&m, &id, StatusCode::OK, &f, None)
}

pub async fn save(
    State(state): State<AppState>,
    m: Member,
    BotId(id): BotId,
    Form(f): Form<EditForm>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    let uuid = id;
    let config: Result<serde_json::Value, String> = if f.config.trim().is_empty() {
        Ok(serde_json::json!({}))
    } else {
        yaml_serde::from_str(&f.config).map_err(|e| format!("invalid YAML: {e}"))
    };
    let saved = match config {
        Ok(c) => {
            chatbots::update_working(
                &state.domain,
                m.team.id,
                uuid,
                &f.name,
                Some(f.description.trim()),
                Some(c),
            )
            .await
        }
        Err(msg) => Err(domain::Error::BadRequest(msg)),
    };
    match saved {
        Ok(_) => Ok(m.go(&format!("chatbots/{uuid}/"))),
        Err(e) => {
            let msg = crate::error::refusal(e)?;
            let at = place(&f.config, &msg);
            edit_page(&m, &id, StatusCode::BAD_REQUEST, &f, Some((msg, at)))
        }
    }
}

#[derive(Deserialize)]
pub struct RestoreForm {
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// Rolls the working version back to a numbered version's configuration.
pub async fn restore(
    State(state): State<AppState>,
    m: Member,
    BotId(id): BotId,
    Path((_, _, number)): Path<(String, String, String)>,
    Form(f): Form<RestoreForm>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    let uuid = id;
    let number: i32 = number.parse().map_err(|_| PageError::NotFound)?;
    domain::chatbot_versions::restore(&state.domain, m.team.id, uuid, number).await?;
    Ok(m.go(&format!("chatbots/{uuid}/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "pipeline:\n  nodes:\n  - id: start\n    type: start\n  - {id: llm, type: llm}\n  - id: \"end\"\n    type: end\n";

    #[test]
    fn errors_are_placed_at_their_node() {
        let p = place(
            TEXT,
            "invalid input: pipeline: node \"llm\" (llm): params: missing field `model`",
        );
        assert_eq!(
            p,
            Place {
                line: Some(5),
                node: Some("llm".into())
            }
        );
        assert_eq!(place(TEXT, "node \"end\" (end): x").line, Some(6));
        assert_eq!(place(TEXT, "node \"start\" (start): x").line, Some(3));
        // A prefix of another id does not match.
        assert_eq!(place("- id: llm2\n", "node \"llm\": x").line, None);
        assert_eq!(
            place(TEXT, "edge from start names an unknown node \"ghost\"")
                .node
                .as_deref(),
            Some("ghost")
        );
    }

    #[test]
    fn yaml_errors_keep_their_line() {
        assert_eq!(
            place(
                TEXT,
                "invalid YAML: did not find expected key at line 4 column 7"
            )
            .line,
            Some(4)
        );
        assert_eq!(place(TEXT, "nothing to place").line, None);
    }
}
