//! The console in a real browser (Debian's Chromium, headless): sign in,
//! create a chatbot from YAML, publish it, try it with a streamed reply,
//! find the session by filter, read its transcript with trace and cost,
//! export CSV, check that a chat viewer cannot edit, and open an OAuth
//! application's consent page. Screenshots of each
//! page go to `target/console-screenshots/` (not committed), and each page is
//! audited with axe-core (WCAG 2 A and AA; serious and critical failures fail
//! the test).

use std::path::PathBuf;

use chatstudio_testkit::browser::Browser;
use chatstudio_testkit::console::PASSWORD;
use chatstudio_testkit::{Backend, TestApp};
use domain::teams::Role;
use serde_json::json;

const BOT_FILE: &str = "name: Greeter\ndescription: Says hello back\nconfig:\n  pipeline:\n    nodes:\n      - {id: start, type: start}\n      - {id: greet, type: llm, params: {provider: local, model: echo, prompt: Greet people.}}\n      - {id: end, type: end}\n    edges:\n      - {from: start, to: greet}\n      - {from: greet, to: end}\n";

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots")
}

async fn sign_in(b: &Browser, app: &TestApp, email: &str) {
    b.goto(&app.url("/login/")).await;
    b.type_in("#email", email).await;
    b.type_in("#password", PASSWORD).await;
    b.click("form button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser() {
    let Some(b) = Browser::start(&shots()).await else {
        return;
    };
    let app = TestApp::start(Backend::Sqlite).await.unwrap();
    let team = app.team("acme").await;
    app.provider(&team, "local", "builtin", None, None).await;
    app.member(&team, "ada@acme.org", Role::ChatbotAdmin).await;
    app.member(&team, "viewer@acme.org", Role::ChatViewer).await;

    b.goto(&app.url("/")).await;
    assert!(b.url().await.ends_with("/login/"));
    b.screenshot("01-sign-in").await;
    sign_in(&b, &app, "ada@acme.org").await;
    b.wait_text("h1", "Chatbots").await;
    b.screenshot("02-chatbots").await;

    // A chatbot from YAML, then its first version, published.
    b.fill("#yaml", BOT_FILE).await;
    b.click("form[action$='/chatbots/new/'] button").await;
    b.wait_text("h1", "Greeter").await;
    b.type_in("#description", "First greeter").await;
    b.click("form[action$='/versions/'] button").await;
    let versions = b.wait_text("main", "First greeter").await;
    assert!(versions.contains("published"), "{versions}");
    b.screenshot("03-chatbot").await;

    // Try it: the reply streams in, then its path and cost.
    b.click("a[href$='/try/']").await;
    b.wait_text("h1", "Try Greeter").await;
    b.type_in("#try-message", "Hello from the browser").await;
    b.click("#try-form button").await;
    b.wait_text("#try-log", "You said: Hello from the browser")
        .await;
    let info = b.wait_text("#try-log .trace-info", "cost: $").await;
    assert!(info.contains("path: start → greet"), "{info}");
    b.screenshot("04-try-it").await;
    let session = b
        .script(
            "return document.getElementById('try').dataset.session;",
            json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_string();

    // The session, found by filtering on the chatbot.
    b.goto(&app.url("/a/acme/sessions/")).await;
    b.script(
        "const s = document.getElementById('chatbot'); \
         s.value = [...s.options].find(o => o.text === 'Greeter').value;",
        json!([]),
    )
    .await;
    b.click("form.filters button").await;
    let list = b.wait_text("main", &session[..8]).await;
    assert!(list.contains("1 sessions"), "{list}");
    b.screenshot("05-sessions").await;
    b.click(&format!("a[href$='/sessions/{session}/']")).await;
    let transcript = b.wait_text("main", "Transcript").await;
    for want in [
        "Hello from the browser",
        "You said:",
        "greet",
        "Cost by model",
        "$0.00000000",
    ] {
        assert!(transcript.contains(want), "{want} in {transcript}");
    }
    b.screenshot("06-transcript").await;

    // The other pages a chatbot admin uses, each drawn once.
    for (path, heading, shot) in [
        ("/a/acme/participants/", "Participants", "07-participants"),
        ("/a/acme/usage/", "Usage", "08-usage"),
    ] {
        b.goto(&app.url(path)).await;
        b.wait_text("h1", heading).await;
        b.screenshot(shot).await;
    }
    b.goto(&app.url("/a/acme/chatbots/")).await;
    b.click("main table a").await;
    b.click("a[href$='/channels/']").await;
    b.wait_text("h1", "Channels of Greeter").await;
    b.type_in("#domains", "www.example.org").await;
    b.click("form[action$='/channels/widget/'] button").await;
    let shown = b.wait_text(".shown", "embed key").await;
    assert!(shown.contains("shown once"), "{shown}");
    b.screenshot("09-channels").await;
    let here = b.url().await;
    let at = here.find("/chatbots/").unwrap() + "/chatbots/".len();
    b.goto(&format!("{}edit/", &here[..at + 37])).await;
    b.wait_text("h1", "Edit").await;
    b.screenshot("09b-edit").await;

    // The CSV the list links to, fetched as the page would.
    b.goto(&app.url("/a/acme/sessions/")).await;
    let csv = b
        .script(
            "const a = document.querySelector('a[href*=\"export.csv\"]'); \
             return fetch(a.href).then(r => r.text());",
            json!([]),
        )
        .await;
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("session_id,chatbot,"), "{csv}");
    assert!(csv.contains("Hello from the browser"), "{csv}");

    // A chat viewer reads but cannot edit.
    b.click(".who button").await;
    b.wait_text("h1", "Sign in").await;
    sign_in(&b, &app, "viewer@acme.org").await;
    let page = b.wait_text("main", "Greeter").await;
    assert!(!page.contains("New chatbot from a file"), "{page}");
    b.click("main table a").await;
    let bot_page = b.wait_text("h1", "Greeter").await;
    let main = b.text("main").await;
    assert!(
        !main.contains("Try it") && !main.contains("Create version"),
        "{bot_page}: {main}"
    );
    b.goto(&app.url("/a/acme/team/")).await;
    b.wait_text("main", "does not allow").await;
    b.screenshot("10-viewer-refused").await;

    // The OAuth consent page: the application, its scopes, allow.
    let (client, _) = domain::oauth::apps::create(
        &app.domain,
        team.id,
        None,
        domain::oauth::NewApp {
            name: "Reporting dashboard".into(),
            kind: domain::oauth::AppKind::User,
            public: true,
            redirect_uris: vec!["http://127.0.0.1:9/callback".into()],
            chatbots: vec![],
            pkce_required: true,
        },
    )
    .await
    .unwrap();
    b.goto(&app.url(&format!(
        "/o/authorize/?response_type=code&client_id={}&scope=sessions:read&state=s1\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        client.client_id
    )))
    .await;
    let consent = b.wait_text("main", "List and Read Sessions").await;
    assert!(consent.contains("Reporting dashboard"), "{consent}");
    b.screenshot("11-consent").await;

    let failures = b.accessibility();
    assert!(
        failures.is_empty(),
        "accessibility (axe-core, WCAG 2 AA):\n{}",
        failures.join("\n")
    );
    b.close().await;
    app.finish().await;
}
