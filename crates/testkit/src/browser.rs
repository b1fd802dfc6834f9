//! A real browser for console tests: Debian's Chromium, headless, driven
//! through chromedriver's W3C WebDriver protocol (plain JSON over HTTP, so no
//! driver crate is needed). Without Chromium the test is skipped on a
//! laptop and fails under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const AXE_RUN: &str = "const done = arguments[arguments.length - 1]; \
    axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}}) \
      .then(r => done(r.violations \
        .filter(v => v.impact === 'serious' || v.impact === 'critical') \
        .map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', ')))) \
      .catch(e => done(['axe failed: ' + e]));";

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    shots: PathBuf,
    /// axe-core's source, when installed: every screenshotted page is audited.
    axe: Option<String>,
    violations: std::sync::Mutex<Vec<String>>,
}

/// axe-core (Deque's WCAG checker), from `CHATSTUDIO_AXE_JS` or where
/// `.ci/run` installs it. CI must have it; elsewhere the audit is skipped.
fn axe_source() -> Option<String> {
    let path = std::env::var("CHATSTUDIO_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/chatstudio-ci-npm/node_modules/axe-core/axe.min.js")
        });
    let source = std::fs::read_to_string(&path).ok();
    if source.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "CI needs axe-core at {} (.ci/run installs it)",
            path.display()
        );
        eprintln!(
            "accessibility audit skipped: no axe-core at {}",
            path.display()
        );
    }
    source
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    names.iter().map(PathBuf::from).find(|p| p.exists())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; screenshots go to `shots`.
    /// `None` (skip) when Chromium is not installed outside CI.
    pub async fn start(shots: &Path) -> Option<Browser> {
        let chromium = find_binary(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let driver = find_binary(&["/usr/bin/chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                std::env::var("CI").is_err(),
                "CI needs Debian's chromium and chromium-driver (.ci/run installs them)"
            );
            eprintln!("skipping: no /usr/bin/chromium or /usr/bin/chromedriver");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = crate::http_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--no-first-run", "--no-default-browser-check"]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {r}"))
            .to_string();
        std::fs::create_dir_all(shots).unwrap();
        Some(Browser {
            driver: child,
            base,
            session,
            http,
            shots: shots.to_path_buf(),
            axe: axe_source(),
            violations: Default::default(),
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut rb = self.http.request(method, url);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let v: Value = rb.send().await.unwrap().json().await.unwrap();
        if let Some(err) = v["value"].get("error") {
            panic!("webdriver {path}: {err}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Runs a script in the page; its return value.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    pub async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Types into a field, as a person would.
    pub async fn type_in(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Sets a field's value at once (long texts such as a chatbot file).
    pub async fn fill(&self, css: &str, text: &str) {
        self.script(
            "document.querySelector(arguments[0]).value = arguments[1];",
            json!([css, text]),
        )
        .await;
    }

    pub async fn text(&self, css: &str) -> String {
        self.script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until the element's text contains `want`; the text.
    pub async fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let t = self.text(css).await;
            if t.contains(want) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {want:?}; it shows {t:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the page, named for what it shows.
    pub async fn screenshot(&self, name: &str) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
        self.audit(name).await;
    }

    /// Runs axe-core's WCAG 2 A and AA rules on the page; what fails with a
    /// serious or critical impact is kept for [`Browser::accessibility`].
    pub async fn audit(&self, name: &str) {
        let Some(axe) = &self.axe else { return };
        self.script(axe, json!([])).await;
        let found = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({"script": AXE_RUN, "args": []})),
            )
            .await;
        let mut v = self.violations.lock().unwrap();
        for f in found.as_array().unwrap() {
            v.push(format!("{name}: {}", f.as_str().unwrap()));
        }
    }

    /// The accessibility failures the audited pages had.
    pub fn accessibility(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    pub async fn close(mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
