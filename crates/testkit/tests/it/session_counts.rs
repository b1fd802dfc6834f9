//! The first page's `count` of the session lists (API and console) against
//! the sessions themselves, for every combination of filters, while
//! sessions are made on every channel, move through consent, become active,
//! end and are tagged; the counter rows against the sessions they count;
//! the migration that fills them; the console's bounded count.

use std::collections::{BTreeMap, BTreeSet};

use chatstudio_testkit::console::ConsoleClient;
use chatstudio_testkit::{TestApp, TestTeam, both_backends};
use domain::channels::widget::AuthLevel;
use domain::teams::Role;
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::telegram::{SECRET, fake_telegram, telegram_accepts, telegram_channel, update, webhook};

const ORIGIN: &str = "https://www.example.com";

/// One session as the filters see it.
#[derive(Debug)]
struct Row {
    chatbot_row: i64,
    status: String,
    platform: Option<String>,
    participant: String,
    created_day: String,
    tags: BTreeSet<String>,
}

/// The team's sessions, read straight from the tables.
async fn sessions_of(app: &TestApp, team: &TestTeam) -> Vec<Row> {
    let t = team.id.0;
    let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in app
        .rows(
            &format!(
                "SELECT s.external_id, g.name FROM session_tags st \
                 JOIN sessions s ON s.id = st.session_id JOIN tags g ON g.id = st.tag_id \
                 WHERE s.team_id = {t}"
            ),
            &["id", "name"],
        )
        .await
    {
        tags.entry(r["id"].as_str().unwrap().into())
            .or_default()
            .insert(r["name"].as_str().unwrap().into());
    }
    // The UTC day each session started, as the console's day filter reads it.
    let day = match app.domain.db.backend() {
        sea_orm::DbBackend::Postgres => "to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        _ => "substr(s.created_at, 1, 10)",
    };
    app.rows(
        &format!(
            "SELECT s.external_id, s.chatbot_id, s.status, s.platform, p.identifier, {day} \
             FROM sessions s JOIN participants p ON p.id = s.participant_id WHERE s.team_id = {t}"
        ),
        &["id", "bot", "status", "platform", "who", "created"],
    )
    .await
    .into_iter()
    .map(|r| {
        let id = r["id"].as_str().unwrap().to_string();
        Row {
            chatbot_row: r["bot"].as_i64().unwrap(),
            status: r["status"].as_str().unwrap().into(),
            platform: r["platform"].as_str().map(str::to_string),
            participant: r["who"].as_str().unwrap().into(),
            created_day: r["created"].as_str().unwrap()[..10].to_string(),
            tags: tags.remove(&id).unwrap_or_default(),
        }
    })
    .collect()
}

/// The counter rows against the sessions they count, for every team:
/// (team, chatbot row, status, platform) → n, zero rows left out.
async fn counters_match_sessions(app: &TestApp) {
    let cols = ["team", "bot", "status", "platform", "n"];
    let as_map = |rows: Vec<Value>| -> BTreeMap<String, i64> {
        rows.into_iter()
            .filter(|r| r["n"].as_i64() != Some(0))
            .map(|r| {
                let key = cols[..4]
                    .iter()
                    .map(|c| r[*c].to_string())
                    .collect::<Vec<_>>()
                    .join("|");
                (key, r["n"].as_i64().unwrap())
            })
            .collect()
    };
    let counters = as_map(
        app.rows(
            "SELECT team_id, chatbot_id, status, platform, n FROM session_counts",
            &cols,
        )
        .await,
    );
    let sessions = as_map(
        app.rows(
            "SELECT team_id, chatbot_id, status, COALESCE(platform, ''), COUNT(*) FROM sessions \
             GROUP BY team_id, chatbot_id, status, COALESCE(platform, '')",
            &cols,
        )
        .await,
    );
    assert_eq!(counters, sessions, "session_counts against sessions");
}

/// A console filter of the sessions page.
#[derive(Debug, Default, Clone)]
struct Filter {
    chatbot: Option<(Uuid, Vec<i64>)>,
    status: Option<&'static str>,
    channel: Option<&'static str>,
    participant: Option<String>,
    tags: Vec<&'static str>,
    day: Option<String>,
}

impl Filter {
    fn matches(&self, s: &Row) -> bool {
        self.chatbot
            .as_ref()
            .is_none_or(|(_, rows)| rows.contains(&s.chatbot_row))
            && self.status.is_none_or(|st| s.status == st)
            && self
                .channel
                .is_none_or(|ch| s.platform.as_deref() == Some(ch))
            && self
                .participant
                .as_ref()
                .is_none_or(|p| &s.participant == p)
            && (self.tags.is_empty() || self.tags.iter().any(|t| s.tags.contains(*t)))
            && self.day.as_ref().is_none_or(|d| &s.created_day == d)
    }

    fn query(&self) -> String {
        let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let mut q = Vec::new();
        if let Some((bot, _)) = &self.chatbot {
            q.push(format!("chatbot={bot}"));
        }
        if let Some(st) = self.status {
            q.push(format!("status={st}"));
        }
        if let Some(ch) = self.channel {
            q.push(format!("channel={ch}"));
        }
        if let Some(p) = &self.participant {
            q.push(format!("participant={}", enc(p)));
        }
        if !self.tags.is_empty() {
            q.push(format!("tag={}", enc(&self.tags.join(","))));
        }
        if let Some(d) = &self.day {
            q.push(format!("from={d}&to={d}"));
        }
        q.join("&")
    }
}

/// The count a console sessions page states, and the sessions it lists.
fn console_count(body: &str, slug: &str) -> (String, usize) {
    let end = body
        .find(" sessions.</p>")
        .unwrap_or_else(|| panic!("no count on the page: {body}"));
    let start = body[..end].rfind('>').unwrap() + 1;
    let listed = body
        .matches(&format!("<td><a href=\"/a/{slug}/sessions/"))
        .count();
    (body[start..end].to_string(), listed)
}

/// Every combination of the counters' filters (chatbot, status, channel),
/// and the filters counted from the sessions alone and with those.
fn filters(bots: &[(Uuid, Vec<i64>)], rows: &[Row]) -> Vec<Filter> {
    let mut out = Vec::new();
    let chatbots = std::iter::once(None).chain(bots.iter().cloned().map(Some));
    for chatbot in chatbots {
        for status in [
            None,
            Some("setup"),
            Some("pending"),
            Some("active"),
            Some("pending-review"),
            Some("complete"),
        ] {
            for channel in [
                None,
                Some("api"),
                Some("embedded_widget"),
                Some("telegram"),
                Some("web"),
            ] {
                out.push(Filter {
                    chatbot: chatbot.clone(),
                    status,
                    channel,
                    ..Default::default()
                });
            }
        }
    }
    let today = chrono::Utc::now().date_naive();
    let days = [today.to_string(), today.pred_opt().unwrap().to_string()];
    let people: BTreeSet<&str> = rows.iter().map(|r| r.participant.as_str()).collect();
    let mut fallbacks = Vec::new();
    for p in people {
        fallbacks.push(Filter {
            participant: Some(p.to_string()),
            ..Default::default()
        });
    }
    for tags in [vec!["t1"], vec!["t2"], vec!["t1", "t2"], vec!["none-such"]] {
        fallbacks.push(Filter {
            tags,
            ..Default::default()
        });
    }
    for d in days {
        fallbacks.push(Filter {
            day: Some(d),
            ..Default::default()
        });
    }
    // Each fallback also with a counter filter beside it.
    for f in fallbacks.clone() {
        fallbacks.push(Filter {
            status: Some("active"),
            ..f.clone()
        });
        fallbacks.push(Filter {
            chatbot: bots.first().cloned(),
            channel: Some("api"),
            ..f
        });
    }
    out.extend(fallbacks);
    out
}

/// The console's and the API's first pages agree with the sessions for
/// every filter (the API has the chatbot and tag filters).
async fn counts_agree(
    app: &TestApp,
    team: &TestTeam,
    console: &ConsoleClient,
    bots: &[(Uuid, Vec<i64>)],
) {
    counters_match_sessions(app).await;
    let rows = sessions_of(app, team).await;
    assert!(rows.len() < 50, "one console page shows them all");
    for f in filters(bots, &rows) {
        let want = rows.iter().filter(|s| f.matches(s)).count();
        let page = console
            .get(&format!("/a/{}/sessions/?{}", team.slug, f.query()))
            .await;
        assert_eq!(page.status, 200, "{f:?}");
        let (count, listed) = console_count(&page.body, &team.slug);
        assert_eq!((count, listed), (want.to_string(), want), "console {f:?}");
        let api_filter =
            f.status.is_none() && f.channel.is_none() && f.participant.is_none() && f.day.is_none();
        if api_filter {
            let mut q = vec!["page_size=1500".to_string()];
            if let Some((bot, _)) = &f.chatbot {
                q.push(format!("experiment={bot}"));
            }
            if !f.tags.is_empty() {
                q.push(format!("tags={}", f.tags.join(",")));
            }
            let v = app
                .get_json(&format!("/api/sessions/?{}", q.join("&")), &team.key)
                .await;
            let results = v["results"].as_array().unwrap().len();
            assert_eq!(
                (v["count"].clone(), results),
                (json!(want), want),
                "API {f:?}"
            );
        }
    }
}

/// A chatbot's public id and its rows (no versions made here: its working
/// version alone), found by its name in the team.
async fn bot_rows(app: &TestApp, team: &TestTeam, bot: Uuid, name: &str) -> (Uuid, Vec<i64>) {
    let rows = app
        .rows(
            &format!(
                "SELECT id FROM chatbots WHERE team_id = {} AND name = '{name}'",
                team.id.0
            ),
            &["id"],
        )
        .await;
    (
        bot,
        rows.iter().map(|r| r["id"].as_i64().unwrap()).collect(),
    )
}

async fn end_by_api(app: &TestApp, team: &TestTeam, id: &str) {
    let r = app
        .request(
            Method::POST,
            &format!("/api/sessions/{id}/end_experiment_session/"),
            Some(&team.key),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn tag(app: &TestApp, team: &TestTeam, id: &str, tags: &[&str]) {
    let (s, v) = app
        .post_json(
            &format!("/api/sessions/{id}/tags/"),
            &team.key,
            &json!({ "tags": tags }),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

both_backends!(
    counts_follow_every_session_write,
    fake_telegram(),
    async |app: &TestApp| {
        telegram_accepts(app).await;
        let team = app.team("a").await;
        let other = app.team("b").await;
        app.provider(&team, "local", "builtin", None, None).await;
        // The first asks Telegram participants for consent (pending until given).
        let (first, second) = app
            .consenting_and_plain_bots(&team, ("First", "Second"))
            .await;
        let elsewhere = app.echo_bot(&other).await;
        let console = app.signed_in(&team, Role::Owner).await;

        // The API's own sessions (setup, no channel), in both teams.
        let mut made = Vec::new();
        for (bot, who) in [(first, "p1"), (first, "p2"), (second, "p3")] {
            let (s, v) = app.api_session(&team.key, bot, who).await;
            assert_eq!(s, 201, "{v}");
            made.push(v["id"].as_str().unwrap().to_string());
        }
        let (s, _) = app.api_session(&other.key, elsewhere, "p9").await;
        assert_eq!(s, 201);
        // The API channel (active), twice in one session, then a reset and one more.
        for text in ["hello", "again", "/reset", "after the reset"] {
            let (s, v) = app.api_message(&team, second, text).await;
            assert_eq!(s, 200, "{v}");
        }
        // The OpenAI endpoint: a new session per call.
        for _ in 0..2 {
            let (s, v) = app
                .post_json(
                    &format!("/api/openai/{first}/chat/completions"),
                    &team.key,
                    &json!({"model": "any", "messages": [{"role": "user", "content": "hi"}]}),
                )
                .await;
            assert_eq!(s, 200, "{v}");
        }
        // Widget sessions (active from the start).
        let (_, key) = app
            .widget(first, &["*.example.com"], AuthLevel::EmbedKey)
            .await;
        let w = app.widget_client(&key, ORIGIN);
        let widget_sessions = [w.start(first).await, w.start(first).await];
        // Telegram: one waits for consent, one gives it, one is reset after.
        let ch = telegram_channel(app, first).await;
        for (id, chat, text) in [
            (1, 41, "hello"),
            (2, 42, "hello"),
            (3, 42, "1"),
            (4, 43, "hello"),
            (5, 43, "1"),
            (6, 43, "/reset"),
        ] {
            assert_eq!(
                webhook(app, ch, SECRET, &update(id, chat, Some(text))).await,
                200
            );
            app.settle().await;
        }
        app.settle().await;
        let bots = [
            bot_rows(app, &team, first, "First").await,
            bot_rows(app, &team, second, "Second").await,
        ];
        // Every status and channel these paths make is there to be counted.
        let rows = sessions_of(app, &team).await;
        let seen = |f: fn(&Row) -> String| rows.iter().map(f).collect::<BTreeSet<_>>();
        assert_eq!(
            seen(|r| r.status.clone()),
            ["active", "pending", "pending-review", "setup"]
                .map(String::from)
                .into()
        );
        assert_eq!(
            seen(|r| r.platform.clone().unwrap_or_default()),
            ["", "api", "embedded_widget", "telegram"]
                .map(String::from)
                .into()
        );
        counts_agree(app, &team, &console, &bots).await;

        // Ends (API, console, and an ended session ended again) and tags.
        end_by_api(app, &team, &made[0]).await;
        end_by_api(app, &team, &made[0]).await;
        let p = console
            .submit(&format!("/a/a/sessions/{}/end/", widget_sessions[0]), &[])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        tag(app, &team, &made[1], &["t1"]).await;
        tag(app, &team, &made[2], &["t1", "t2"]).await;
        tag(app, &team, &widget_sessions[1], &["t2"]).await;
        counts_agree(app, &team, &console, &bots).await;

        // The other team's sessions are its own.
        let v = app.get_json("/api/sessions/", &other.key).await;
        assert_eq!(v["count"], json!(1));
    }
);

both_backends!(
    counts_are_filled_by_their_migration,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        for who in ["p1", "p2"] {
            assert_eq!(app.api_session(&team.key, bot, who).await.0, 201);
        }
        assert_eq!(app.api_message(&team, bot, "hello").await.0, 200);
        // Back to before the counters (and anything after them), then up again:
        // the migration counts the sessions already there.
        app.remigrate_from("m0014_session_counts").await;
        counters_match_sessions(app).await;
        assert_eq!(
            app.get_json("/api/sessions/", &team.key).await["count"],
            json!(3)
        );
    }
);

both_backends!(console_counts_are_bounded, async |app: &TestApp| {
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    assert_eq!(app.api_message(&team, bot, "hello").await.0, 200);
    // More sessions than the console counts for a filter the counters do not
    // answer, written by SQL (copies of the one session, active on `api`)
    // with their counter (the one at 1; setup's is at 0 since it moved).
    let t = team.id.0;
    let extra = domain::sessions::listing::CONSOLE_COUNT_LIMIT + 1;
    let db = &app.domain.db.write;
    let copy = format!(
        "INSERT INTO sessions (external_id, team_id, participant_id, chatbot_id, channel_id, \
         status, state, platform, version_number, metadata, ended_at, ended_by, \
         first_activity_at, last_activity_at, created_at, updated_at, session_token_required) \
         SELECT 'copy-' || n.k, team_id, participant_id, chatbot_id, channel_id, status, state, \
         platform, version_number, metadata, ended_at, ended_by, first_activity_at, \
         last_activity_at, created_at, updated_at, session_token_required \
         FROM sessions, (WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n \
         WHERE k < {extra}) SELECT k FROM n) n WHERE team_id = {t}"
    );
    db.execute_unprepared(&copy).await.unwrap();
    db.execute_unprepared(&format!(
        "UPDATE session_counts SET n = n + {extra} WHERE team_id = {t} AND n = 1"
    ))
    .await
    .unwrap();
    let total = extra + 1;
    let c = app.signed_in(&team, Role::Owner).await;
    // The counters answer exactly however many there are.
    let p = c.get("/a/a/sessions/").await;
    assert!(
        p.body.contains(&format!("<p>{total} sessions.</p>")),
        "{}",
        p.body
    );
    let today = chrono::Utc::now().date_naive();
    let p = c.get(&format!("/a/a/sessions/?from={today}")).await;
    let limit = domain::sessions::listing::CONSOLE_COUNT_LIMIT;
    assert!(
        p.body
            .contains(&format!("<p>More than {limit} sessions.</p>")),
        "{}",
        p.body
    );
    // The API's count, from the counters too.
    let v = app.get_json("/api/sessions/?page_size=1", &team.key).await;
    assert_eq!(v["count"], json!(total));

    // A tag on every one of them: more than the tag filter reads as ids.
    let (s, v) = app
        .post_json(
            &format!("/api/sessions/{}/tags/", app.only_session().await),
            &team.key,
            &json!({"tags": ["bulk"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    db.execute_unprepared(&format!(
        "INSERT INTO session_tags (team_id, session_id, tag_id, user_id, created_at) \
         SELECT s.team_id, s.id, t.id, NULL, s.created_at FROM sessions s, tags t \
         WHERE s.team_id = {t} AND t.name = 'bulk' AND s.external_id LIKE 'copy-%'"
    ))
    .await
    .unwrap();
    for filter in [
        "tag=bulk",
        "tag=bulk&status=active",
        "tag=bulk,other&channel=api",
    ] {
        let p = c.get(&format!("/a/a/sessions/?{filter}")).await;
        assert!(
            p.body
                .contains(&format!("<p>More than {limit} sessions.</p>")),
            "{filter}: {}",
            p.body
        );
        assert_eq!(p.body.matches("<td><a href=\"/a/a/sessions/").count(), 50);
    }
    let p = c.get("/a/a/sessions/?tag=bulk&status=pending").await;
    assert!(p.body.contains("<p>0 sessions.</p>"), "{}", p.body);
    for q in ["tags=bulk", &format!("tags=bulk,other&experiment={bot}")] {
        let v = app
            .get_json(&format!("/api/sessions/?page_size=1&{q}"), &team.key)
            .await;
        assert_eq!(v["count"], json!(total), "{q}");
        assert_eq!(v["results"].as_array().unwrap().len(), 1);
    }
});
