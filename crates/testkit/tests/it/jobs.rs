//! The job queue: a worker that dies mid-job, and idempotent chat turns.

use std::time::Duration;

use chatstudio_testkit::{Options, TestApp, both_backends};
use domain::jobs::{self, NewJob};
use serde_json::json;

/// Jobs wait for the workers each test starts itself.
fn no_workers() -> Options {
    Options::no_workers()
}

both_backends!(
    a_dead_workers_job_is_retried_once_its_lease_lapses,
    no_workers(),
    async |app: &TestApp| {
        for _ in 0..3 {
            jobs::enqueue(&app.domain.db.write, NewJob::<jobs::Ping>::new(json!({})))
                .await
                .unwrap();
        }
        // A worker claims one job with a short lease and then "crashes": it never
        // heartbeats or finishes.
        let claimed = jobs::claim(&app.domain.db, "doomed-worker", Duration::from_millis(300))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.attempts, 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let workers = app.run_workers(2);
        assert_eq!(
            app.wait_until("SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'", 3)
                .await,
            3
        );
        workers.stop().await;
        assert_eq!(
            app.scalar(&format!(
                "SELECT attempts FROM jobs WHERE id = {}",
                claimed.id
            ))
            .await,
            2,
            "retried once"
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE runs <> 1")
                .await,
            0,
            "each ran to completion once"
        );
        // The crashed worker coming back cannot finish a job it no longer holds.
        assert!(
            !jobs::finish(
                &app.domain.db.write,
                claimed.id,
                "doomed-worker",
                jobs::Finished::Succeeded(json!({})),
            )
            .await
            .unwrap()
        );
        assert_eq!(
            app.scalar(&format!("SELECT runs FROM jobs WHERE id = {}", claimed.id))
                .await,
            1
        );
    }
);

both_backends!(
    a_turn_written_before_a_crash_is_not_answered_twice,
    no_workers(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let (_, key) = app
            .widget(
                bot,
                &["*.example.com"],
                domain::channels::widget::AuthLevel::EmbedKey,
            )
            .await;
        let widget = app.widget_client(&key, "https://a.example.com");
        let sid = widget.start(bot).await;
        let (_, accepted) = widget.send(&sid, "once").await;
        // A worker claims the turn, writes the reply, and dies before marking the job done.
        let job = jobs::claim(&app.domain.db, "doomed", Duration::from_millis(200))
            .await
            .unwrap()
            .unwrap();
        let session = domain::sessions::get(&app.domain.db.read, job.session_id.unwrap())
            .await
            .unwrap()
            .unwrap();
        let chatbot = domain::chatbots::resolve(&app.domain.db.read, team.id, bot, Some(0))
            .await
            .unwrap();
        let mid = domain::MessageId(job.payload["message_id"].as_i64().unwrap());
        app.engine
            .run_turn(&session, &chatbot, mid, "once".into(), None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let workers = app.run_workers(1);
        assert_eq!(
            app.wait_until("SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'", 1)
                .await,
            1
        );
        workers.stop().await;
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM messages WHERE role = 'ai'")
                .await,
            1,
            "no duplicate reply"
        );
        let task = accepted["task_id"].as_str().unwrap();
        let (_, polled) = widget.poll(&sid, task).await;
        assert_eq!(polled["message"]["content"], "You said: once");
    }
);

both_backends!(
    a_racing_twin_enqueued_in_a_transaction_leaves_it_usable,
    Options::no_workers(),
    async |app: &TestApp| {
        use domain::jobs::Ping;
        let job = || NewJob::<Ping>::new(serde_json::json!({})).idempotency_key("twin".into());
        let first = app.domain.begin().await.unwrap();
        let id1 = first.enqueue(job()).await.unwrap();
        let domain = app.domain.clone();
        // The twin's INSERT waits for the first transaction (PostgreSQL) or
        // its BEGIN does (SQLite's one writer); either way it must find the
        // first job and its own transaction must go on.
        let twin = tokio::spawn(async move {
            let tx = domain.begin().await.unwrap();
            let id = tx.enqueue(job()).await.unwrap();
            let other = tx
                .enqueue(NewJob::<Ping>::new(serde_json::json!({})))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            (id, other)
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        first.commit().await.unwrap();
        let (id2, other) = twin.await.unwrap();
        assert_eq!(id1, id2);
        assert_ne!(other, id1);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, 2);
    }
);

both_backends!(
    a_session_s_jobs_are_claimed_one_at_a_time_in_order,
    no_workers(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let (s, v) = app.api_session(&team.key, bot, "p1").await;
        assert_eq!(s, 201, "{v}");
        let session =
            domain::sessions::by_external_id(&app.domain, team.id, v["id"].as_str().unwrap())
                .await
                .unwrap()
                .unwrap()
                .id;
        let ping = || NewJob::<jobs::Ping>::new(json!({}));
        let first = jobs::enqueue(&app.domain.db.write, ping().session(session))
            .await
            .unwrap();
        let second = jobs::enqueue(&app.domain.db.write, ping().session(session))
            .await
            .unwrap();
        let other = jobs::enqueue(&app.domain.db.write, ping()).await.unwrap();
        let lease = Duration::from_secs(30);
        let a = jobs::claim(&app.domain.db, "w1", lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.task_id, first);
        // The session's second job waits for its first; a job of no session does not.
        let b = jobs::claim(&app.domain.db, "w2", lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.task_id, other);
        assert!(
            jobs::claim(&app.domain.db, "w2", lease)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            jobs::finish(
                &app.domain.db.write,
                a.id,
                "w1",
                jobs::Finished::Succeeded(json!({}))
            )
            .await
            .unwrap()
        );
        let c = jobs::claim(&app.domain.db, "w2", lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.task_id, second);
    }
);
