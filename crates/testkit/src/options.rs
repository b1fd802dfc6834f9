//! How a test app is started: its workers, limits and which fakes stand in
//! for the platforms it calls.

#[derive(Debug, Clone)]
pub struct Options {
    /// Job workers inside the server (0: jobs wait for a worker the test starts).
    pub workers: usize,
    pub chat_rate: api::ratelimit::Rate,
    /// Where Telegram calls go (a wiremock fake); none leaves the default, which tests never reach.
    pub telegram_api_url: Option<String>,
    /// Start a fake Telegram Bot API ([`crate::TestApp::telegram`]) and send Telegram
    /// calls there; the test mounts the answers it wants.
    pub fake_telegram: bool,
    /// Start a fake WhatsApp provider API ([`crate::TestApp::whatsapp`]): Meta's
    /// Graph API, Twilio's and Turn's calls go there (their paths differ);
    /// the test mounts the answers it wants.
    pub fake_whatsapp: bool,
    /// Start a mail sink ([`crate::TestApp::smtp`]) and send pipeline emails there.
    pub smtp_sink: bool,
    /// The server's `--public-url`.
    pub public_url: Option<String>,
    /// The HTTP server's timeouts and connection cap.
    pub http: server::http::Limits,
    /// MiB per window uploaded per channel, and per client.
    pub upload_quota: (api::ratelimit::Rate, api::ratelimit::Rate),
    /// Where code nodes run (see [`crate::code_workers`]); none by default.
    pub code: engine::CodeSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 2,
            chat_rate: api::ratelimit::Rate {
                limit: 1000,
                window_secs: 300,
            },
            telegram_api_url: None,
            fake_telegram: false,
            fake_whatsapp: false,
            smtp_sink: false,
            public_url: None,
            http: Default::default(),
            upload_quota: (
                api::ratelimit::Rate {
                    limit: 2048,
                    window_secs: 3600,
                },
                api::ratelimit::Rate {
                    limit: 2048,
                    window_secs: 3600,
                },
            ),
            code: Default::default(),
        }
    }
}

impl Options {
    /// No workers in the server: queued jobs wait for ones the test starts
    /// (in process or as `worker` processes).
    pub fn no_workers() -> Self {
        Self {
            workers: 0,
            ..Default::default()
        }
    }
}
