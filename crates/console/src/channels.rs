//! A chatbot's channels: the list (every platform), a chat widget added with
//! its embed key shown once beside the HTML to paste (or, in OAuth mode,
//! admitted by a machine application's token, with no key), a Telegram bot
//! connected by its token (checked with Telegram, the webhook registered
//! when the public URL is known), and turning channels off, on, or away.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::channels::widget::{self, AuthLevel, CredentialMode};
use domain::teams::Permission;
use minijinja::context;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use api::AppState;
use api::url::BaseUrl;

use crate::error::PageError;
use crate::member::{BotId, Member};
use crate::render;

/// What a page tells once: where a provider must send a number's messages.
struct Told(String);

/// What a page shows once: a new embed key and the snippet that uses it.
struct NewKey {
    key: String,
    snippet: String,
}

fn snippet(base: &BaseUrl, chatbot: Uuid, key: &str) -> String {
    format!(
        "<script type=\"module\" src=\"https://unpkg.com/open-chat-studio-widget@0.6.0/dist/open-chat-studio-widget/open-chat-studio-widget.esm.js\"></script>\n\
         <open-chat-studio-widget\n  api-base-url=\"{}\"\n  chatbot-id=\"{chatbot}\"\n  embed-key=\"{key}\"\n  visible=\"false\">\n</open-chat-studio-widget>",
        base.origin
    )
}

async fn page(
    state: &AppState,
    m: &Member,
    id: Uuid,
    status: StatusCode,
    shown: Option<NewKey>,
    error: Option<String>,
) -> Result<Response, PageError> {
    page_told(state, m, id, status, (shown, None), error).await
}

async fn page_told(
    state: &AppState,
    m: &Member,
    id: Uuid,
    status: StatusCode,
    (shown, told): (Option<NewKey>, Option<Told>),
    error: Option<String>,
) -> Result<Response, PageError> {
    let bot = domain::chatbots::get(&state.domain, m.team.id, id).await?;
    let list = domain::channels::of_chatbot(&state.domain, m.team.id, id).await?;
    let messaging = domain::messaging::list(&state.domain, m.team.id).await?;
    render::page_with(
        status,
        "channels.html",
        context! {
            ..m.frame("chatbots"),
            ..context! {
                bot => context! { id => id.to_string(), name => bot.name },
                channels => list.iter().map(|c| context! {
                    id => c.id.to_string(),
                    platform => c.platform,
                    name => c.name,
                    enabled => c.enabled,
                    disabled_message => c.disabled_message,
                    address => c.address,
                    domains => c.allowed_domains.join(", "),
                    widget => c.platform == "embedded_widget",
                    oauth => c.credential_mode == Some(CredentialMode::OAuth),
                }).collect::<Vec<_>>(),
                shown => shown.map(|s| context! { key => s.key, snippet => s.snippet }),
                told => told.map(|t| t.0),
                messaging => messaging.iter().map(|p| context! { name => p.name, kind => p.kind.as_str() }).collect::<Vec<_>>(),
                error => error,
            }
        },
    )
}

pub async fn list(
    State(state): State<AppState>,
    m: Member,
    BotId(id): BotId,
) -> Result<Response, PageError> {
    page(&state, &m, id, StatusCode::OK, None, None).await
}

/// The person's mistake, shown on the page; anything else is ours.
async fn refused(
    state: &AppState,
    m: &Member,
    id: Uuid,
    e: domain::Error,
) -> Result<Response, PageError> {
    let msg = crate::error::refusal(e)?;
    page(state, m, id, StatusCode::BAD_REQUEST, None, Some(msg)).await
}

#[derive(Deserialize)]
pub struct NewWidget {
    #[serde(default)]
    domains: String,
    #[serde(default)]
    auth_level: String,
    #[serde(default)]
    credential_mode: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

pub async fn add_widget(
    State(state): State<AppState>,
    m: Member,
    base: BaseUrl,
    BotId(id): BotId,
    Form(f): Form<NewWidget>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    // The chatbot must be this team's before anything is added to it.
    domain::chatbots::get(&state.domain, m.team.id, id).await?;
    let level = match f.auth_level.as_str() {
        "" | "embed_key" | "embed-key" => AuthLevel::EmbedKey,
        _ => AuthLevel::SessionToken,
    };
    let mode = match f.credential_mode.as_str() {
        "" => CredentialMode::EmbedKey,
        m => CredentialMode::parse(m)
            .ok_or_else(|| PageError::BadRequest(format!("{m:?} is not a credential mode")))?,
    };
    let domains: Vec<String> = f
        .domains
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    // The domain's own refusal names the CLI's flag; this page has a field.
    if domains.is_empty() && mode == CredentialMode::EmbedKey {
        let msg = "An embed-key widget needs at least one page host.".to_string();
        return page(&state, &m, id, StatusCode::BAD_REQUEST, None, Some(msg)).await;
    }
    match widget::add_with_mode(&state.domain, id, &domains, level, None, mode).await {
        Ok((_, key)) if mode == CredentialMode::EmbedKey => {
            let shown = NewKey {
                snippet: snippet(&base, id, &key),
                key,
            };
            page(&state, &m, id, StatusCode::OK, Some(shown), None).await
        }
        // An embed key never admits to an OAuth channel, so it is not shown:
        // the page says what does instead.
        Ok((ch, _)) => {
            let reach = if ch.allowed_domains.is_empty() {
                "from servers only (no browser page)".to_string()
            } else {
                format!("from pages on {}", ch.allowed_domains.join(", "))
            };
            let told = Told(format!(
                "Added an OAuth widget channel: chats start {reach} with the access token of a machine OAuth application listed for this chatbot (scope chat:start); no embed key is used."
            ));
            page_told(&state, &m, id, StatusCode::OK, (None, Some(told)), None).await
        }
        Err(e) => refused(&state, &m, id, e).await,
    }
}

#[derive(Deserialize)]
pub struct NewTelegram {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

pub async fn add_telegram(
    State(state): State<AppState>,
    m: Member,
    BotId(id): BotId,
    Form(f): Form<NewTelegram>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    domain::chatbots::get(&state.domain, m.team.id, id).await?;
    let token = f.token.trim();
    if token.is_empty() || token.len() > 200 || token.contains(['/', '?', '#']) {
        let msg = "Paste the bot token BotFather gave you (like 123456:ABC-…).".to_string();
        return page(&state, &m, id, StatusCode::BAD_REQUEST, None, Some(msg)).await;
    }
    let bot = state.engine.telegram(token);
    let me = match bot.get_me().await {
        Ok(me) => me,
        Err(e) => {
            let msg = format!("Telegram did not accept the bot token: {e}");
            return page(&state, &m, id, StatusCode::BAD_REQUEST, None, Some(msg)).await;
        }
    };
    let secret = channels::telegram::new_secret_token();
    let info = json!({"id": me.id, "username": me.username, "first_name": me.first_name});
    let ch = match domain::channels::telegram::add(
        &state.domain,
        &state.domain.secrets,
        id,
        token,
        &secret,
        info,
    )
    .await
    {
        Ok(ch) => ch,
        Err(e) => return refused(&state, &m, id, e).await,
    };
    // Telegram needs an address it can reach: only the configured public URL is.
    if let Some(base) = state.public_url.as_deref() {
        let url = format!("{}/channels/telegram/{}", base.trim_end_matches('/'), ch.id);
        if let Err(e) = bot.set_webhook(&url, &secret).await {
            let msg = format!("The bot is connected, but registering its webhook failed: {e}");
            return page(&state, &m, id, StatusCode::BAD_GATEWAY, None, Some(msg)).await;
        }
    }
    Ok(m.go(&format!("chatbots/{id}/channels/")))
}

#[derive(Deserialize)]
pub struct NewNumber {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// A WhatsApp number through one of the team's messaging providers; the page
/// then says where the provider must send the number's messages.
pub async fn add_whatsapp(
    State(state): State<AppState>,
    m: Member,
    base: BaseUrl,
    BotId(id): BotId,
    Form(f): Form<NewNumber>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    let meta = engine::connect::MetaApi {
        base_url: &state.engine.settings.meta_api_url,
        http: llm::http::client(),
    };
    let connected = engine::connect::whatsapp(
        &state.domain.db,
        &state.domain.secrets,
        meta,
        m.team.id,
        id,
        (&f.provider, &f.number),
    )
    .await;
    match connected {
        Ok(c) => {
            let told = Told(format!(
                "Connected {}. Point the provider's webhook at {}{}",
                c.number, base.origin, c.webhook_path
            ));
            page_told(&state, &m, id, StatusCode::OK, (None, Some(told)), None).await
        }
        Err(e) => refused(&state, &m, id, e).await,
    }
}

#[derive(Deserialize)]
pub struct ChannelAction {
    #[serde(default)]
    message: String,
    #[serde(default)]
    csrfmiddlewaretoken: String,
}

/// One of the chatbot's own channels (another chatbot's or team's is not found).
async fn own_channel(
    state: &AppState,
    m: &Member,
    id: Uuid,
    channel: &str,
) -> Result<domain::channels::Listed, PageError> {
    let channel = Uuid::parse_str(channel).map_err(|_| PageError::NotFound)?;
    domain::channels::of_chatbot(&state.domain, m.team.id, id)
        .await?
        .into_iter()
        .find(|c| c.id == channel)
        .ok_or(PageError::NotFound)
}

pub async fn act(
    State(state): State<AppState>,
    m: Member,
    base: BaseUrl,
    BotId(id): BotId,
    Path((_, _, channel, action)): Path<(String, String, String, String)>,
    Form(f): Form<ChannelAction>,
) -> Result<Response, PageError> {
    m.may(Permission::ManageChatbots, &f.csrfmiddlewaretoken)?;
    let ch = own_channel(&state, &m, id, &channel).await?;
    let db = &state.domain;
    match action.as_str() {
        "disable" => {
            let message = Some(f.message.trim().to_string()).filter(|s| !s.is_empty());
            domain::channels::set_enabled(db, ch.id, false, message).await?;
        }
        "enable" => domain::channels::set_enabled(db, ch.id, true, None).await?,
        "remove" => domain::channels::remove(db, ch.id).await?,
        "rotate" if ch.platform == "embedded_widget" => {
            let key = widget::rotate_key(db, ch.id).await?;
            let shown = NewKey {
                snippet: snippet(&base, id, &key),
                key,
            };
            return page(&state, &m, id, StatusCode::OK, Some(shown), None).await;
        }
        _ => return Err(PageError::NotFound),
    }
    Ok(m.go(&format!("chatbots/{id}/channels/")))
}
