//! Session pages: the team's sessions, filtered and paged by cursor; one
//! session's transcript with each turn's trace and cost; ending a session.

use axum::extract::{Form, Path, Query, State};
use axum::response::Response;
use domain::sessions::listing::{self, Filter};
use domain::sessions::{self, EndedBy, SessionStatus};
use domain::teams::Permission;
use minijinja::{Value, context};
use serde::Deserialize;
use uuid::Uuid;

use api::AppState;

use crate::error::{PageError, encode, redirect};
use crate::member::Member;
use crate::render;

/// A time as pages show it (UTC, to the second).
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// USD from the stored 1e-8 units, with the contract's 8 places.
pub fn money(e8: i64) -> String {
    let sign = if e8 < 0 { "-" } else { "" };
    let a = e8.unsigned_abs();
    format!("{sign}${}.{:08}", a / 100_000_000, a % 100_000_000)
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    chatbot: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    participant: String,
    /// A version's number (`3` or `v3`): sessions with a reply from it.
    #[serde(default)]
    version: String,
    /// First day (UTC), `YYYY-MM-DD`.
    #[serde(default)]
    from: String,
    /// Last day (UTC), inclusive.
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: Option<String>,
}

impl ListQuery {
    /// The filters as a query string (links keep them).
    fn keep(&self) -> String {
        [
            ("chatbot", &self.chatbot),
            ("tag", &self.tag),
            ("status", &self.status),
            ("channel", &self.channel),
            ("participant", &self.participant),
            ("version", &self.version),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

fn day(text: &str, field: &str) -> Result<Option<chrono::NaiveDate>, PageError> {
    match text.trim() {
        "" => Ok(None),
        t => chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                PageError::BadRequest(format!("{field}: {t:?} is not a date (YYYY-MM-DD)"))
            }),
    }
}

fn named<T>(text: &str, field: &str, parse: fn(&str) -> Option<T>) -> Result<Option<T>, PageError> {
    match text.trim() {
        "" => Ok(None),
        t => parse(t).map(Some).ok_or_else(|| {
            PageError::BadRequest(format!("{field}: {t:?} is not one of the choices"))
        }),
    }
}

/// The list's filters from its query.
pub fn filter_of(q: &ListQuery) -> Result<Filter, PageError> {
    let chatbot = match q.chatbot.trim() {
        "" => None,
        id => Some(
            Uuid::parse_str(id)
                .map_err(|_| PageError::BadRequest(format!("{id:?} is not a chatbot id")))?,
        ),
    };
    Ok(Filter {
        experiment: chatbot,
        tags: q
            .tag
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        status: named(&q.status, "status", SessionStatus::parse)?,
        platform: named(&q.channel, "channel", domain::channels::Platform::parse)?,
        participant: Some(q.participant.trim().to_string()).filter(|p| !p.is_empty()),
        versions: match q.version.trim().trim_start_matches('v') {
            "" => Vec::new(),
            n => vec![format!(
                "v{}",
                n.parse::<u32>().map_err(|_| PageError::BadRequest(format!(
                    "version: {n:?} is not a version number"
                )))?
            )],
        },
        since: day(&q.from, "from")?.map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc()),
        until: day(&q.to, "to")?
            .and_then(|d| d.succ_opt())
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc()),
        ..Default::default()
    })
}

pub async fn list(
    State(state): State<AppState>,
    m: Member,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let filter = filter_of(&q)?;
    let page = listing::list(
        &state.domain,
        m.team.id,
        &filter,
        &render::page_of(&q.cursor),
        listing::Counting::UpTo(listing::CONSOLE_COUNT_LIMIT),
    )
    .await?;
    let bots = domain::chatbots::list_all(&state.domain, m.team.id).await?;
    let keep = q.keep();
    render::page(
        "sessions.html",
        context! {
            ..m.frame("sessions"),
            ..context! {
                sessions => page.items.iter().map(|s| context! {
                    id => s.external_id,
                    chatbot => s.experiment.name,
                    participant => s.participant_identifier,
                    status => s.status.as_str(),
                    platform => s.platform.map(|p| p.as_str()),
                    tags => s.tags,
                    created_at => when(s.created_at),
                }).collect::<Vec<_>>(),
                chatbots => bots.iter().map(|b| context! { id => b.id.to_string(), name => b.name }).collect::<Vec<_>>(),
                filter => context! {
                    chatbot => q.chatbot.trim(), tag => q.tag.trim(), status => q.status.trim(),
                    channel => q.channel.trim(), participant => q.participant.trim(), version => q.version.trim(),
                    from => q.from.trim(), to => q.to.trim(),
                },
                statuses => SessionStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                channels => domain::channels::Platform::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                pages => render::pager(&keep, &page),
            }
        },
    )
}

fn span_view(s: &domain::traces::Span) -> Value {
    context! {
        node => s.node_id,
        kind => s.node_type,
        duration_ms => s.duration_ms,
        input_tokens => s.input_tokens,
        output_tokens => s.output_tokens,
        cost => money(s.cost_e8),
        route => s.route,
        error => s.error,
        tools => s.tool_calls.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    m: Member,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let detail = listing::detail(&state.domain, m.team.id, &id).await?;
    let traces = domain::traces::of_session(&state.domain, detail.summary.id).await?;
    let s = &detail.summary;
    let open = !SessionStatus::CLOSED.contains(&s.status);
    render::page(
        "session.html",
        context! {
            ..m.frame("sessions"),
            ..context! {
                session => context! {
                    id => s.external_id,
                    chatbot => s.experiment.name,
                    chatbot_id => s.experiment.id.to_string(),
                    version => s.experiment.version_number,
                    participant => s.participant_identifier,
                    status => s.status.as_str(),
                    platform => s.platform.map(|p| p.as_str()),
                    tags => s.tags,
                    created_at => when(s.created_at),
                    open => open,
                },
                messages => detail.messages.iter().map(|msg| context! {
                    role => msg.role.as_str(),
                    content => msg.content,
                    created_at => when(msg.created_at),
                    tags => msg.tags,
                    attachments => msg.attachments.iter().map(|a| context! {
                        name => a.name, content_type => a.content_type, size => a.size,
                    }).collect::<Vec<_>>(),
                }).collect::<Vec<_>>(),
                total_cost => money(detail.total_cost_e8),
                by_model => detail.by_model.iter().map(|(model, cost, tokens)| context! {
                    model => model, cost => money(*cost), tokens => tokens,
                }).collect::<Vec<_>>(),
                traces => traces.iter().map(|t| context! {
                    status => t.status.as_str(),
                    version => t.version_number,
                    duration_ms => t.duration_ms,
                    error => t.error,
                    created_at => when(t.created_at),
                    input => t.input.as_ref().map(|i| i.content.clone()),
                    output => t.output.as_ref().map(|o| o.content.clone()),
                    cost => money(t.spans.iter().map(|s| s.cost_e8).sum()),
                    spans => t.spans.iter().map(span_view).collect::<Vec<_>>(),
                }).collect::<Vec<_>>(),
            }
        },
    )
}

#[derive(Deserialize)]
pub struct TagForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// Adds (`add`) or takes off (`remove`) one of the session's tags.
pub async fn tag(
    State(state): State<AppState>,
    m: Member,
    Path((_, id, action)): Path<(String, String, String)>,
    Form(f): Form<TagForm>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    let sid = sessions::exists(&state.domain, m.team.id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(PageError::BadRequest(
            "A tag is 1 to 255 characters.".into(),
        ));
    }
    let names = [name.to_string()];
    match action.as_str() {
        "add" => {
            domain::tags::add_to_session(
                &state.domain,
                m.team.id,
                sid.0,
                &names,
                Some(m.sign_in.user_id.0),
            )
            .await?
        }
        "remove" => {
            domain::tags::remove_from_session(&state.domain, m.team.id, sid.0, &names).await?
        }
        _ => return Err(PageError::NotFound),
    }
    Ok(m.go(&format!("sessions/{}/", encode(&id))))
}

#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// Ends a session as a team member (`ended_by: admin`; the event is raised).
pub async fn end(
    State(state): State<AppState>,
    m: Member,
    Path((_, id)): Path<(String, String)>,
    Form(f): Form<EndForm>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    let sid = sessions::exists(&state.domain, m.team.id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let mut tx = state.domain.begin().await?;
    sessions::end(&mut tx, m.team.id, sid, EndedBy::Admin).await?;
    tx.commit().await?;
    Ok(redirect(&format!(
        "/a/{}/sessions/{}/",
        m.team.slug,
        encode(&id)
    )))
}
