//! Two versions of a chatbot side by side: their configurations as YAML,
//! line by line, only the changed parts with a little context.

use axum::extract::{Query, State};
use axum::response::Response;
use domain::chatbot_versions::{Which, config_of};
use minijinja::context;
use serde::Deserialize;

use api::AppState;

use crate::chatbots::yaml_text;
use crate::diff::{self, Change};
use crate::error::PageError;
use crate::member::{BotId, Member};
use crate::render;

#[derive(Debug, Deserialize)]
pub struct Pair {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn label(w: Which) -> String {
    match w {
        Which::Working => "the working version".into(),
        Which::Number(n) => format!("v{n}"),
    }
}

pub async fn show(
    State(state): State<AppState>,
    m: Member,
    BotId(id): BotId,
    Query(q): Query<Pair>,
) -> Result<Response, PageError> {
    let uuid = id;
    let bot = domain::chatbots::get(&state.domain, m.team.id, uuid).await?;
    let from: Which = q.from.parse()?;
    let to: Which = q.to.parse()?;
    let old = yaml_text(&config_of(&state.domain, m.team.id, uuid, from).await?);
    let new = yaml_text(&config_of(&state.domain, m.team.id, uuid, to).await?);
    let changes = diff::lines(&old, &new);
    let hunks = diff::unified(&changes, 3);
    render::page(
        "compare.html",
        context! {
            ..m.frame("chatbots"),
            ..context! {
                bot => context! { id => id, name => bot.name },
                from => label(from),
                to => label(to),
                choices => std::iter::once(("working".to_string(), "the working version".to_string()))
                    .chain(bot.versions.iter().rev().map(|v| (v.version_number.to_string(), format!("v{}", v.version_number))))
                    .map(|(value, text)| context! { value => value, text => text })
                    .collect::<Vec<_>>(),
                selected => context! { from => q.from, to => q.to },
                hunks => hunks.iter().map(|h| context! {
                    header => h.header(),
                    lines => h.changes.iter().map(|c| match c {
                        Change::Same(l) => context! { kind => "same", mark => " ", text => l },
                        Change::Added(l) => context! { kind => "added", mark => "+", text => l },
                        Change::Removed(l) => context! { kind => "removed", mark => "-", text => l },
                    }).collect::<Vec<_>>(),
                }).collect::<Vec<_>>(),
            }
        },
    )
}
