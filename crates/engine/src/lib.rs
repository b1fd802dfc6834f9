//! The conversation runtime: the stages of a turn, the pipeline executor and
//! its node types, prompt context and history. It reaches providers only
//! through `llm::LlmClient` and storage only through the domain layer.

pub mod connect;
pub mod delivery;
pub mod dry_run;
pub mod error;
pub mod history;
pub mod jobs;
pub mod outbound;
pub mod pipeline;
pub mod proactive;
pub mod prompt_context;
pub mod run_input;
pub mod streams;
pub mod tools;
pub mod trigger_pipeline;
pub mod turn;
pub mod voice;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use domain::Domain;
use domain::providers::ProviderAccess;
use llm::{LlmClient, ProviderConfig, ProviderKind};

pub use error::TurnError;

/// Shared by every request: the domain, one HTTP pool for all providers, and
/// the provider call settings.
pub use sandbox;

#[derive(Clone)]
pub struct Engine {
    pub domain: Domain,
    http: reqwest::Client,
    /// Calls to URLs teams give (custom actions).
    pub outbound: outbound::Outbound,
    pub settings: EngineSettings,
    pub streams: streams::StreamHub,
    /// Worker processes for code nodes (none: code nodes fail saying so).
    pub sandbox: Option<Arc<sandbox::Pool>>,
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Default whole-call timeout when a provider sets none.
    pub provider_timeout: Duration,
    pub max_retries: u32,
    /// Base delay of the retry backoff (tests shorten it).
    pub retry_base_delay: Duration,
    /// The Telegram Bot API base URL (tests point it at a fake).
    pub telegram_api_url: String,
    /// Meta's Graph API base URL, for WhatsApp (tests point it at a fake).
    pub meta_api_url: String,
    /// Twilio's REST API base URL (tests point it at a fake).
    pub twilio_api_url: String,
    /// Turn.io's API base URL (tests point it at a fake).
    pub turn_api_url: String,
    /// Where pipeline emails go; none leaves `send_email` jobs failing with why.
    pub smtp: Option<SmtpSettings>,
    /// What calls to team-given URLs may reach, and their limits.
    pub outbound: outbound::OutboundSettings,
    /// Where code nodes run.
    pub code: CodeSettings,
    /// How often a process with the scheduler scans for due timeout triggers.
    pub timeout_scan: Duration,
    /// The server's public base URL: links to files a channel cannot carry
    /// are made with it (none: such files stay in the transcript).
    pub public_url: Option<String>,
}

/// The Python sandbox's workers.
#[derive(Debug, Clone)]
pub struct CodeSettings {
    /// How to start a worker (`None`: code nodes cannot run).
    pub worker: Option<sandbox::WorkerCommand>,
    /// Workers running at once.
    pub workers: usize,
    /// The most a node may ask for.
    pub maximum: sandbox::Limits,
}

impl Default for CodeSettings {
    fn default() -> Self {
        CodeSettings {
            worker: None,
            workers: 2,
            maximum: sandbox::Limits::maximum(),
        }
    }
}

/// The mail server emails are sent through.
#[derive(Clone)]
pub struct SmtpSettings {
    /// `smtp://user:pass@host:port` (`smtps://` for TLS, `?tls=required` for STARTTLS).
    pub url: String,
    /// The sender address (`Name <addr>` or `addr`).
    pub from: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("SmtpSettings")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            provider_timeout: Duration::from_secs(120),
            max_retries: 3,
            retry_base_delay: Duration::from_millis(250),
            telegram_api_url: channels::telegram::DEFAULT_API_BASE.to_string(),
            meta_api_url: channels::whatsapp_meta::DEFAULT_API_BASE.to_string(),
            twilio_api_url: channels::twilio::DEFAULT_API_BASE.to_string(),
            turn_api_url: channels::whatsapp_turn::DEFAULT_API_BASE.to_string(),
            smtp: None,
            outbound: Default::default(),
            code: Default::default(),
            timeout_scan: Duration::from_secs(5),
            public_url: None,
        }
    }
}

impl Engine {
    pub fn new(domain: Domain, settings: EngineSettings) -> Self {
        Self {
            domain,
            http: llm::http::client(),
            outbound: outbound::Outbound::new(settings.outbound.clone()),
            sandbox: settings.code.worker.clone().map(|w| {
                Arc::new(sandbox::Pool::new(
                    w,
                    settings.code.workers,
                    settings.code.maximum,
                ))
            }),
            settings,
            streams: Default::default(),
        }
    }

    /// A Telegram Bot API client for a bot token.
    pub fn telegram(&self, token: &str) -> channels::telegram::Telegram {
        channels::telegram::Telegram::new(&self.settings.telegram_api_url, token, self.http.clone())
    }

    /// A team's provider by name and a client for it. A provider the team does
    /// not have is a configuration problem of the chatbot, not of the request.
    pub async fn provider(
        &self,
        team_id: domain::TeamId,
        name: &str,
    ) -> Result<(ProviderAccess, Arc<dyn LlmClient>), TurnError> {
        self.provider_at(None, team_id, name).await
    }

    /// `provider`, from the catalog when the turn read its count `at`.
    pub async fn provider_at(
        &self,
        at: Option<domain::catalog::Epoch>,
        team_id: domain::TeamId,
        name: &str,
    ) -> Result<(ProviderAccess, Arc<dyn LlmClient>), TurnError> {
        let access = match at {
            Some(at) => {
                let d = &self.domain;
                d.catalog
                    .provider(d, &d.secrets, at, team_id, name)
                    .await
                    .map(|p| (*p).clone())
                    .map_err(provider_error)?
            }
            None => self.provider_access(team_id, name).await?,
        };
        let client = self.client(&access)?;
        Ok((access, client))
    }

    /// A team's provider by name, its credential opened.
    pub async fn provider_access(
        &self,
        team_id: domain::TeamId,
        name: &str,
    ) -> Result<ProviderAccess, TurnError> {
        domain::providers::access(&self.domain, &self.domain.secrets, team_id, name)
            .await
            .map_err(provider_error)
    }

    /// A client for a team provider, with the retry policy applied.
    pub fn client(&self, p: &ProviderAccess) -> Result<Arc<dyn LlmClient>, TurnError> {
        let cfg = self.provider_config(p)?;
        let kind = cfg.kind;
        let inner: Arc<dyn LlmClient> = match kind {
            ProviderKind::Openai => {
                Arc::new(llm::openai::OpenAi::new(cfg.clone(), self.http.clone()))
            }
            ProviderKind::Anthropic => Arc::new(llm::anthropic::Anthropic::new(
                cfg.clone(),
                self.http.clone(),
            )),
            ProviderKind::Gemini => {
                Arc::new(llm::gemini::Gemini::new(cfg.clone(), self.http.clone()))
            }
            ProviderKind::Builtin => Arc::new(llm::builtin::Builtin),
        };
        Ok(Arc::new(
            llm::retry::Retrying::new(inner, cfg.max_retries)
                .with_base_delay(self.settings.retry_base_delay),
        ))
    }

    /// How calls to a team provider are made (its endpoint, key, timeout).
    pub fn provider_config(&self, p: &ProviderAccess) -> Result<ProviderConfig, TurnError> {
        let kind = ProviderKind::parse(&p.kind).ok_or_else(|| {
            TurnError::Config(format!(
                "provider {:?} has unknown type {:?}",
                p.name, p.kind
            ))
        })?;
        let mut cfg = ProviderConfig::new(kind);
        cfg.base_url = p.base_url.clone();
        cfg.api_key = p.api_key.clone();
        cfg.headers = p.headers.clone();
        cfg.timeout = p
            .timeout_secs
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.settings.provider_timeout, Duration::from_secs);
        cfg.max_retries = self.settings.max_retries;
        Ok(cfg)
    }
}

/// A provider the team does not have is the chatbot's configuration problem.
fn provider_error(e: domain::Error) -> TurnError {
    match e {
        domain::Error::BadRequest(m) => TurnError::Config(m),
        other => TurnError::Domain(other),
    }
}
