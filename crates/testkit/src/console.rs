//! A browser-like client of the console: keeps its cookies, follows no
//! redirects (tests look at them), posts forms as browsers encode them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};

use crate::{TestApp, TestTeam};

/// What a page answered.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Set-Cookie` line that sets `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }
}

pub struct ConsoleClient {
    base: String,
    client: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

impl ConsoleClient {
    pub fn new(base: &str) -> Self {
        ConsoleClient {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    pub fn set(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .unwrap()
            .insert(name.to_string(), value.to_string());
    }

    /// The token forms carry (the `csrftoken` cookie, as pages embed it).
    pub fn csrf(&self) -> String {
        self.cookie("csrftoken").unwrap_or_default()
    }

    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().unwrap();
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Page {
        let r = rb
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        for c in headers.get_all(SET_COOKIE).iter() {
            let c = c.to_str().unwrap();
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            let mut jar = self.cookies.lock().unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                jar.remove(k);
            } else {
                jar.insert(k.to_string(), v.to_string());
            }
        }
        let body = r.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    /// Posts a form as a browser encodes it.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            self.request(reqwest::Method::POST, path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    /// Posts a form with this sign-in's CSRF token added.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf();
        let mut all = vec![("csrfmiddlewaretoken", token.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    /// Opens the sign-in page (for its token), then signs in.
    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        let form = self.get("/login/").await;
        assert_eq!(form.status, 200, "{}", form.body);
        self.submit("/login/", &[("email", email), ("password", password)])
            .await
    }
}

/// The password every test member gets.
pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    pub fn console(&self) -> ConsoleClient {
        ConsoleClient::new(&self.base)
    }

    /// A member of `team` with `role` who can sign in with [`PASSWORD`].
    pub async fn member(&self, team: &TestTeam, email: &str, role: domain::teams::Role) {
        domain::users::add_to_team(
            &self.domain.db.write,
            team.id,
            email,
            role,
            Some(&domain::users::Password::new(PASSWORD)),
        )
        .await
        .unwrap();
    }

    /// A console client signed in as a new member of `team` with `role`.
    pub async fn signed_in(&self, team: &TestTeam, role: domain::teams::Role) -> ConsoleClient {
        let email = format!("{}@{}.example.org", role.as_str(), team.slug);
        self.member(team, &email, role).await;
        let c = self.console();
        let p = c.sign_in(&email, PASSWORD).await;
        assert_eq!(p.status, 303, "sign-in: {}", p.body);
        c
    }
}
