//! The daily usage rollups kept in the write path against a recount of the
//! rows they summarise (the migration's SQL), after every kind of write that
//! adds to them: turns on the API channel and the OpenAI endpoint, sessions
//! opened over the API with earlier messages (in setup: they count only once
//! a turn moves them out), consent on Telegram (messages while the session
//! waits), resets, costs; the migration that fills them; the usage page's
//! numbers while a session leaves setup.

use std::collections::BTreeMap;

use chatstudio_testkit::{TestApp, TestTeam, both_backends};
use chrono::Utc;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};

use crate::telegram::{SECRET, fake_telegram, telegram_accepts, telegram_channel, update, webhook};

type Table = BTreeMap<String, Vec<i64>>;

/// Both rollup tables as key → numbers (rows that add nothing left out), as
/// `db` sees them.
async fn read(db: &impl ConnectionTrait) -> (Table, Table) {
    let rows =
        |sql: &str| sea_orm::Statement::from_string(db.get_database_backend(), sql.to_string());
    let mut days = Table::new();
    for r in db
        .query_all_raw(rows(
            "SELECT team_id, day, chatbot_id, model, messages, sessions, tokens, cost_e8 \
             FROM usage_days",
        ))
        .await
        .unwrap()
    {
        let key = format!(
            "{}|{}|{}|{}",
            r.try_get_by_index::<i64>(0).unwrap(),
            r.try_get_by_index::<String>(1).unwrap(),
            r.try_get_by_index::<i64>(2).unwrap(),
            r.try_get_by_index::<String>(3).unwrap()
        );
        let n: Vec<i64> = (4..8).map(|i| r.try_get_by_index(i).unwrap()).collect();
        if n.iter().any(|x| *x != 0) {
            days.insert(key, n);
        }
    }
    let mut active = Table::new();
    for r in db
        .query_all_raw(rows(
            "SELECT team_id, day, chatbot_id, participant_id FROM usage_active",
        ))
        .await
        .unwrap()
    {
        let key: Vec<String> = [0, 2, 3]
            .iter()
            .map(|i| r.try_get_by_index::<i64>(*i).unwrap().to_string())
            .chain([r.try_get_by_index::<String>(1).unwrap()])
            .collect();
        active.insert(key.join("|"), Vec::new());
    }
    (days, active)
}

/// The rollups as the write path left them equal a recount from the rows
/// (done in a transaction that is rolled back).
pub async fn rollups_match_recount(app: &TestApp) {
    let db = &app.domain.db.write;
    let kept = read(db).await;
    let txn = db.begin().await.unwrap();
    store::usage_rollups::recount(&txn, None).await.unwrap();
    let recounted = read(&txn).await;
    txn.rollback().await.unwrap();
    assert_eq!(kept.0, recounted.0, "usage_days against a recount");
    assert_eq!(kept.1, recounted.1, "usage_active against a recount");
}

async fn today(app: &TestApp, team: &TestTeam) -> domain::usage::Counts {
    let d = Utc::now().date_naive();
    domain::usage::daily(&app.domain, team.id, d, d, None)
        .await
        .unwrap()
        .totals
}

both_backends!(
    rollups_follow_every_write,
    fake_telegram(),
    async |app: &TestApp| {
        telegram_accepts(app).await;
        let team = app.team("a").await;
        let other = app.team("b").await;
        app.provider(&team, "local", "builtin", None, None).await;
        app.price_echo_input(&team, "1000").await;
        let (consenting, plain) = app
            .consenting_and_plain_bots(&team, ("Consent", "Plain"))
            .await;
        let theirs = app.echo_bot(&other).await;

        // A session opened over the API with earlier messages stays in setup:
        // nothing of it counts yet.
        let (s, v) = app
            .post_json(
                "/api/sessions/",
                &team.key,
                &json!({"experiment": plain, "participant": "imported", "messages": [
                    {"role": "user", "content": "earlier question"},
                    {"role": "assistant", "content": "earlier answer"},
                ]}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let imported = v["id"].as_str().unwrap().to_string();
        rollups_match_recount(app).await;
        assert_eq!(today(app, &team).await, domain::usage::Counts::default());

        // A turn in it moves it out of setup: its earlier messages count too.
        let (s, v) = app
            .post_json(
                &format!("/api/chat/{imported}/message/"),
                &team.key,
                &json!({"message": "now"}),
            )
            .await;
        assert!(s == 200 || s == 202, "{s} {v}");
        app.settle().await;
        rollups_match_recount(app).await;
        let after = today(app, &team).await;
        assert_eq!((after.messages, after.sessions), (4, 1), "{after:?}");
        assert_eq!(after.participants, 1);
        assert!(after.cost_e8 > 0, "priced input: {after:?}");

        // The API channel with a reset, the OpenAI endpoint, the other team.
        for text in ["hello", "/reset", "after the reset"] {
            assert_eq!(app.api_message(&team, plain, text).await.0, 200);
        }
        let (s, v) = app
            .post_json(
                &format!("/api/openai/{consenting}/chat/completions"),
                &team.key,
                &json!({"model": "any", "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(app.api_message(&other, theirs, "theirs").await.0, 200);
        // Telegram: one waits for consent, one gives it and talks on.
        let ch = telegram_channel(app, consenting).await;
        for (id, chat, text) in [
            (1, 51, "hello"),
            (2, 52, "hello"),
            (3, 52, "1"),
            (4, 52, "more"),
        ] {
            assert_eq!(
                webhook(app, ch, SECRET, &update(id, chat, Some(text))).await,
                200
            );
            app.settle().await;
        }
        rollups_match_recount(app).await;

        // A failing turn in a new session: its usage counts, its messages
        // wait with their session in setup.
        let failing = app
            .chatbot_with(
                &team,
                "Failing",
                json!({"pipeline": chatstudio_testkit::fixtures::failing_template_pipeline()}),
            )
            .await;
        let (s, v) = app.api_message(&team, failing, "I am Ana").await;
        assert!((400..600).contains(&s), "{s} {v}");
        rollups_match_recount(app).await;

        // The page's numbers are the recount's, per chatbot too.
        let d = Utc::now().date_naive();
        let u = domain::usage::daily(&app.domain, team.id, d, d, Some(consenting))
            .await
            .unwrap();
        let t = team.id.0;
        let consent_rows = format!(
            "SELECT id FROM chatbots WHERE team_id = {t} AND (id = {c} OR working_version_id = {c})",
            c = app
                .scalar(&format!(
                    "SELECT id FROM chatbots WHERE team_id = {t} AND name = 'Consent' \
                     AND working_version_id IS NULL"
                ))
                .await
        );
        let counted = app
            .scalar(&format!(
                "SELECT COUNT(*) FROM messages m JOIN sessions s ON s.id = m.session_id \
                 WHERE s.chatbot_id IN ({consent_rows}) AND s.status <> 'setup' \
                 AND m.role IN ('human', 'ai')"
            ))
            .await;
        assert_eq!(u.totals.messages, counted);
        assert!(counted > 0);
        assert_eq!(u.chatbots.len(), 1, "{:?}", u.chatbots);
    }
);

both_backends!(
    rollups_are_filled_by_their_migration,
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        assert_eq!(app.api_session(&team.key, bot, "p1").await.0, 201);
        for text in ["hello", "again"] {
            assert_eq!(app.api_message(&team, bot, text).await.0, 200);
        }
        let before: Value = json!(format!("{:?}", read(&app.domain.db.write).await));
        app.remigrate_from("m0016_usage_rollups").await;
        let after: Value = json!(format!("{:?}", read(&app.domain.db.write).await));
        assert_eq!(before, after);
        let totals = today(app, &team).await;
        assert_eq!(
            (totals.messages, totals.sessions, totals.participants),
            (4, 1, 1)
        );
    }
);
