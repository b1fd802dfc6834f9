//! The console's usage page over HTTP: today's messages, sessions, active
//! participants, cost and tokens as the API made them, per chatbot family
//! (all its versions) and per model; the range and chatbot filters and what
//! they refuse; another team's usage never shows.

use chatstudio_testkit::{TestApp, TestTeam, both_backends};
use domain::teams::Role;
use serde_json::json;

/// An echo chatbot named `name` on the team's `local` provider.
async fn echo(app: &TestApp, team: &TestTeam, name: &str) -> uuid::Uuid {
    let pipeline = domain::pipeline::Pipeline::single_llm("local", "echo", "");
    app.chatbot_with(team, name, json!({ "pipeline": pipeline }))
        .await
}

async fn say(app: &TestApp, team: &TestTeam, bot: uuid::Uuid, text: &str) {
    let (s, body) = app.api_message(team, bot, text).await;
    assert_eq!(s, 200, "{body}");
}

/// The text of one day's cell in a metric's table.
fn cell(body: &str, metric: &str, day: &str) -> String {
    let table = &body[body
        .find(&format!("data-metric=\"{metric}\""))
        .unwrap_or_else(|| panic!("no {metric} table in {body}"))..];
    let table = &table[..table.find("</table>").unwrap()];
    let row = format!("<th scope=\"row\">{day}</th><td>");
    let at = table
        .find(&row)
        .unwrap_or_else(|| panic!("no {day} in the {metric} table: {table}"))
        + row.len();
    table[at..at + table[at..].find("</td>").unwrap()].to_string()
}

fn total(body: &str, metric: &str) -> String {
    let open = format!("data-total=\"{metric}\">");
    let at = body
        .find(&open)
        .unwrap_or_else(|| panic!("no {metric} total"))
        + open.len();
    body[at..at + body[at..].find('<').unwrap()].to_string()
}

/// The table a `data-table` names (to its end).
fn table<'a>(body: &'a str, name: &str) -> &'a str {
    let t = &body[body
        .find(&format!("data-table=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} table"))..];
    &t[..t.find("</table>").unwrap()]
}

/// The console's USD format (8 places).
fn money(e8: i64) -> String {
    format!("${}.{:08}", e8 / 100_000_000, e8 % 100_000_000)
}

struct Acme {
    team: TestTeam,
    alpha: uuid::Uuid,
    beta: uuid::Uuid,
}

/// Acme: Alpha (published first, so its turns run its v1 snapshot)
/// answers twice, Beta once, and one more session on Beta, opened over the
/// API, has no message and stays in setup; the local model costs $1,000 per 1M input tokens. Another team has
/// a busy chatbot of its own.
async fn acme(app: &TestApp) -> Acme {
    let team = app.team("acme").await;
    app.provider(&team, "local", "builtin", None, None).await;
    app.price_echo_input(&team, "1000").await;
    let alpha = echo(app, &team, "Alpha").await;
    app.publish(&team, alpha, "v1", true).await;
    let beta = echo(app, &team, "Beta").await;
    say(app, &team, alpha, "one").await;
    say(app, &team, alpha, "two").await;
    say(app, &team, beta, "three").await;
    let (s, body) = app.api_session(&team.key, beta, "walk-in").await;
    assert_eq!(s, 201, "{body}");

    let other = app.team("other").await;
    let theirs = app.echo_bot(&other).await;
    for text in ["a", "b", "c"] {
        say(app, &other, theirs, text).await;
    }
    Acme { team, alpha, beta }
}

both_backends!(
    todays_usage_per_metric_chatbot_and_model,
    async |app: &TestApp| {
        let Acme { team, alpha, beta } = acme(app).await;
        let t = team.id.0;
        // What the page must agree with, straight from the tables.
        assert_eq!(
            app.scalar(&format!(
                "SELECT COUNT(*) FROM messages WHERE team_id = {t} AND role IN ('human', 'ai')"
            ))
            .await,
            6
        );
        assert_eq!(
            app.scalar(&format!(
                "SELECT COUNT(*) FROM sessions WHERE team_id = {t}"
            ))
            .await,
            3
        );
        assert_eq!(
            app.scalar(&format!(
                "SELECT COUNT(*) FROM sessions WHERE team_id = {t} AND status = 'setup'"
            ))
            .await,
            1
        );
        // Alpha's turns ran its v1 snapshot: their usage names that row, not
        // the family's; the chatbot filter must still find it.
        let on_snapshot = format!(
            "FROM usage_records u JOIN chatbots c ON c.id = u.chatbot_id \
         WHERE u.team_id = {t} AND c.working_version_id IS NOT NULL"
        );
        assert!(app.scalar(&format!("SELECT COUNT(*) {on_snapshot}")).await > 0);
        let tokens = app
            .scalar(&format!(
                "SELECT CAST(SUM(quantity) AS BIGINT) FROM usage_records WHERE team_id = {t}"
            ))
            .await;
        let input = app
        .scalar(&format!("SELECT CAST(SUM(quantity) AS BIGINT) FROM usage_records WHERE team_id = {t} AND service_kind = 'llm_input'"))
        .await;
        let cost = app
            .scalar(&format!(
                "SELECT CAST(SUM(cost_e8) AS BIGINT) FROM usage_records WHERE team_id = {t}"
            ))
            .await;
        assert!(input > 0 && tokens > input, "{input} of {tokens}");
        // $1,000 per 1M tokens is 1e5 units of 1e-8 USD a token; output is free.
        assert_eq!(cost, input * 100_000);

        let c = app.signed_in(&team, Role::ChatViewer).await;
        let p = c.get("/a/acme/usage/").await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(
            p.body
                .contains("href=\"/a/acme/usage/\" aria-current=\"page\">Usage</a>")
        );
        assert!(
            p.body.contains("<label for=\"from\">") && p.body.contains("<label for=\"chatbot\">")
        );
        let today = chrono::Utc::now().date_naive();
        let day = today.to_string();
        let first = (today - chrono::Days::new(29)).to_string();
        assert!(
            p.body.contains(&format!("value=\"{first}\"")),
            "30 days by default"
        );
        assert_eq!(p.body.matches("<svg ").count(), 4);
        assert_eq!(p.body.matches("role=\"img\"").count(), 4);
        // Four tables of 30 days each (a day's row header is its date).
        assert_eq!(
            p.body
                .matches(&format!("<th scope=\"row\">{first}</th>"))
                .count(),
            4
        );

        assert_eq!(cell(&p.body, "messages", &day), "6");
        assert_eq!(cell(&p.body, "sessions", &day), "2");
        // The API's one user wrote every human message, to both chatbots.
        assert_eq!(cell(&p.body, "participants", &day), "1");
        assert_eq!(cell(&p.body, "cost", &day), money(cost));
        assert_eq!(cell(&p.body, "messages", &first), "0");
        assert_eq!(total(&p.body, "messages"), "6");
        assert_eq!(total(&p.body, "sessions"), "2");
        assert_eq!(total(&p.body, "participants"), "1");
        assert_eq!(total(&p.body, "cost"), money(cost));
        assert!(p.body.contains(&format!("<desc>{first}: 0; ")));

        // Alpha: 2 turns, Beta: 1; the cost follows the turns (same prompt size).
        let bots = table(&p.body, "chatbots");
        let alpha_row =
            format!("<a href=\"/a/acme/chatbots/{alpha}/\">Alpha</a></th>\n    <td>4</td>");
        let beta_row =
            format!("<a href=\"/a/acme/chatbots/{beta}/\">Beta</a></th>\n    <td>2</td>");
        assert!(bots.contains(&alpha_row), "{bots}");
        assert!(bots.contains(&beta_row), "{bots}");
        assert!(bots.find("Alpha").unwrap() < bots.find("Beta").unwrap());
        let models = table(&p.body, "models");
        assert!(
            models.contains(&format!(
                "<th scope=\"row\">echo</th><td>{tokens}</td><td>{}</td>",
                money(cost)
            )),
            "{models}"
        );

        // One chatbot: every version of Alpha, nothing of Beta.
        let p = c.get(&format!("/a/acme/usage/?chatbot={alpha}")).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(cell(&p.body, "messages", &day), "4");
        assert_eq!(cell(&p.body, "sessions", &day), "1");
        assert_eq!(cell(&p.body, "participants", &day), "1");
        assert!(!table(&p.body, "chatbots").contains("Beta"));
        assert!(p.body.contains(&format!(
            "<option value=\"{alpha}\" selected>Alpha</option>"
        )));
        let alpha_tokens = app
            .scalar(&format!(
                "SELECT CAST(SUM(u.quantity) AS BIGINT) {on_snapshot}"
            ))
            .await;
        assert!(alpha_tokens > 0 && alpha_tokens < tokens);
        assert!(table(&p.body, "models").contains(&format!("<td>{alpha_tokens}</td>")));

        // Beta alone: the session still in setup is not one started.
        let p = c
            .get(&format!(
                "/a/acme/usage/?chatbot={beta}&from={day}&to={day}"
            ))
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(cell(&p.body, "messages", &day), "2");
        assert_eq!(cell(&p.body, "sessions", &day), "1");
        assert_eq!(cell(&p.body, "participants", &day), "1");
        assert_eq!(
            p.body
                .matches(&format!("<th scope=\"row\">{day}</th>"))
                .count(),
            4
        );
    }
);

both_backends!(
    ranges_and_chatbots_the_page_refuses,
    async |app: &TestApp| {
        let team = app.team("acme").await;
        let other = app.team("other").await;
        let theirs = app.echo_bot(&other).await;
        say(app, &other, theirs, "private").await;
        let c = app.signed_in(&team, Role::ChatViewer).await;

        for bad in [
            "from=2025-13-01",
            "to=2025-02-30",
            "from=yesterday",
            "from=2025-01-02&to=2025-01-01",
            "from=2024-01-01&to=2025-01-01",
            "chatbot=not-an-id",
        ] {
            let p = c.get(&format!("/a/acme/usage/?{bad}")).await;
            assert_eq!(p.status, 400, "{bad}: {}", p.body);
        }
        // A whole leap year is the longest range.
        let p = c.get("/a/acme/usage/?from=2024-01-01&to=2024-12-31").await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(
            p.body.matches("<th scope=\"row\">2024-02-29</th>").count(),
            4
        );
        assert!(p.body.contains("No chatbot was used in this range."));

        // Another team's chatbot, like one that does not exist, is not found.
        for id in [theirs, uuid::Uuid::new_v4()] {
            let p = c.get(&format!("/a/acme/usage/?chatbot={id}")).await;
            assert_eq!(p.status, 404, "{id}: {}", p.body);
        }
        // Nor does another team's usage leak into this one's.
        let p = c.get("/a/acme/usage/").await;
        assert_eq!(p.status, 200);
        let day = chrono::Utc::now().date_naive().to_string();
        assert_eq!(cell(&p.body, "messages", &day), "0");
        assert_eq!(total(&p.body, "sessions"), "0");
        assert_eq!(total(&p.body, "participants"), "0");
        assert!(p.body.contains("No model was used in this range."));
        // And another team's page is not there for this member.
        assert_eq!(c.get("/a/other/usage/").await.status, 404);
    }
);
