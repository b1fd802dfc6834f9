//! WhatsApp through Meta's Cloud API: the webhook's handshake and signature,
//! each inbound kind, replies, the 24-hour window, classified send errors,
//! proactive messages and a disabled channel — against a fake Graph API
//! that checks the exact requests.

use chatstudio_testkit::{Options, TestApp, TestTeam, both_backends};
use domain::messaging::{self, Credentials};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::telegram::EchoBot;

pub const PHONE_ID: &str = "106540352242922";
pub const APP_SECRET: &str = "meta-app-secret";
pub const VERIFY_TOKEN: &str = "meta-verify-token";
const ACCESS_TOKEN: &str = "EAAG-system-user-token";
const WEBHOOK: &str = "/channels/whatsapp/meta/incoming_message";

pub fn fake_whatsapp() -> Options {
    Options {
        fake_whatsapp: true,
        ..Default::default()
    }
}

/// The fake Graph API answers every send to our number.
pub async fn meta_accepts(app: &TestApp) -> &MockServer {
    let fake = app.whatsapp();
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE_ID}/messages")))
        .and(header(
            "authorization",
            format!("Bearer {ACCESS_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "27821234567", "wa_id": "27821234567"}],
            "messages": [{"id": "wamid.OUT"}],
        })))
        .mount(fake)
        .await;
    fake
}

pub async fn meta_provider(app: &TestApp, team: &TestTeam, language: &str) {
    let t = domain::teams::by_slug(&app.domain.db.read, &team.slug)
        .await
        .unwrap();
    messaging::add(
        &app.domain.db.write,
        &app.domain.secrets,
        t.id,
        "meta",
        Credentials::MetaCloudApi {
            business_id: "WABA1".into(),
            access_token: ACCESS_TOKEN.into(),
            app_secret: APP_SECRET.into(),
            verify_token: VERIFY_TOKEN.into(),
            template_language_code: language.into(),
        },
    )
    .await
    .unwrap();
}

/// [`EchoBot`] on a Meta channel on [`PHONE_ID`].
pub async fn meta_echo_bot(app: &TestApp) -> EchoBot<'_> {
    let fake = meta_accepts(app).await;
    let team = app.team("a").await;
    let bot = app.echo_bot(&team).await;
    let channel = meta_channel(app, &team, bot).await;
    EchoBot {
        fake,
        team,
        bot,
        channel,
    }
}

/// A Meta provider and a channel on [`PHONE_ID`] for the chatbot.
pub async fn meta_channel(app: &TestApp, team: &TestTeam, bot: Uuid) -> Uuid {
    meta_provider(app, team, "pt_BR").await;
    let t = domain::teams::by_slug(&app.domain.db.read, &team.slug)
        .await
        .unwrap();
    let access = messaging::by_name(&app.domain.db.read, &app.domain.secrets, t.id, "meta")
        .await
        .unwrap();
    domain::channels::whatsapp::add(&app.domain.db.write, bot, &access, "+15550001111", PHONE_ID)
        .await
        .unwrap()
        .id
}

/// A notification as Meta posts it, for our number.
pub fn notification(phone_number_id: &str, messages: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "27821234567"}],
        "messages": messages,
    }}]}]})
}

pub fn text(id: &str, body: &str) -> Value {
    json!({"from": "27821234567", "id": id, "timestamp": "1717000000", "type": "text", "text": {"body": body}})
}

/// Posts a notification signed with `secret` (`None`: unsigned).
pub async fn post(app: &TestApp, body: &Value, secret: Option<&str>) -> u16 {
    let raw = serde_json::to_vec(body).unwrap();
    let mut rb = app
        .client
        .post(app.url(WEBHOOK))
        .header("content-type", "application/json");
    if let Some(s) = secret {
        rb = rb.header(
            "X-Hub-Signature-256",
            channels::whatsapp_meta::sign(s, &raw),
        );
    }
    rb.body(raw).send().await.unwrap().status().as_u16()
}

/// The bodies of the sends the fake received, in order.
pub async fn sent(fake: &MockServer) -> Vec<Value> {
    fake.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/messages"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn text_send(body: &str) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "27821234567",
           "type": "text", "text": {"preview_url": false, "body": body}})
}

both_backends!(
    the_handshake_answers_a_provider_s_token_only,
    fake_whatsapp(),
    async |app: &TestApp| {
        let team = app.team("a").await;
        meta_provider(app, &team, "en").await;
        let get = async |query: &str| {
            let r = app
                .client
                .get(app.url(&format!("{WEBHOOK}?{query}")))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        };
        assert_eq!(
            get(&format!(
                "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
            ))
            .await,
            (200, "1158201444".to_string())
        );
        assert_eq!(
            get("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")
                .await
                .0,
            403
        );
        assert_eq!(
            get(&format!(
                "hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"
            ))
            .await
            .0,
            403
        );
        assert_eq!(get("hub.mode=subscribe&hub.challenge=1").await.0, 403);
    }
);

both_backends!(
    meta_messages_are_answered_once_and_signed_ones_only,
    fake_whatsapp(),
    async |app: &TestApp| {
        let EchoBot { fake, .. } = meta_echo_bot(app).await;
        let hi = notification(PHONE_ID, json!([text("wamid.1", "hi")]));
        // Bad or missing signatures: 403 and nothing stored.
        assert_eq!(post(app, &hi, Some("not-the-secret")).await, 403);
        assert_eq!(post(app, &hi, None).await, 403);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM inbound_events").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM participants").await, 0);
        // Signed: answered; a redelivery changes nothing.
        assert_eq!(post(app, &hi, Some(APP_SECRET)).await, 200);
        assert_eq!(post(app, &hi, Some(APP_SECRET)).await, 200);
        app.settle().await;
        assert_eq!(sent(fake).await, vec![text_send("You said: hi")]);
        assert_eq!(
            app.rows(
                "SELECT platform, identifier FROM participants",
                &["platform", "identifier"]
            )
            .await,
            vec![json!({"platform": "whatsapp", "identifier": "+27821234567"})]
        );

        // A button reply is what it says; a sticker is apologised for, named.
        let more = notification(
            PHONE_ID,
            json!([
                {"from": "27821234567", "id": "wamid.2", "timestamp": "1717000001", "type": "interactive",
                 "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}}},
                {"from": "27821234567", "id": "wamid.3", "timestamp": "1717000002", "type": "sticker",
                 "sticker": {"id": "MEDIA1", "mime_type": "image/webp", "sha256": "x", "animated": false}},
            ]),
        );
        assert_eq!(post(app, &more, Some(APP_SECRET)).await, 200);
        app.settle().await;
        // Each message has its own job: their replies may pass each other.
        let mut replies: Vec<String> = sent(fake).await[1..]
            .iter()
            .map(|b| b["text"]["body"].as_str().unwrap().to_string())
            .collect();
        replies.sort();
        assert_eq!(
            replies,
            [
                "Sorry, sticker messages are not supported yet. Please send your message as text.",
                "You said: Yes please"
            ]
        );

        // `/reset` ends the session (by the user) and starts another.
        assert_eq!(
            post(
                app,
                &notification(PHONE_ID, json!([text("wamid.4", "/reset")])),
                Some(APP_SECRET)
            )
            .await,
            200
        );
        app.settle().await;
        assert_eq!(sent(fake).await[3], text_send("Conversation reset"));
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM sessions WHERE ended_at IS NOT NULL")
                .await,
            1
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 2);

        // Another number, statuses, or a body that is not a notification: nothing stored.
        let events = app.scalar("SELECT COUNT(*) FROM inbound_events").await;
        assert_eq!(
            post(
                app,
                &notification("999", json!([text("wamid.5", "hi")])),
                Some(APP_SECRET)
            )
            .await,
            200
        );
        let statuses = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_ID},
            "statuses": [{"id": "wamid.OUT", "status": "delivered", "timestamp": "1717000003", "recipient_id": "27821234567"}]}}]}]});
        assert_eq!(post(app, &statuses, Some(APP_SECRET)).await, 200);
        assert_eq!(
            post(app, &json!(["not", "a", "notification"]), Some(APP_SECRET)).await,
            400
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM inbound_events").await,
            events
        );
        app.settle().await;
        assert_eq!(sent(fake).await.len(), 4);
    }
);

fn template_send(language: &str, body: &str) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "27821234567",
           "type": "template", "template": {"name": "new_bot_message", "language": {"code": language},
           "components": [{"type": "body", "parameters": [{"type": "text", "parameter_name": "bot_message", "text": body}]}]}})
}

both_backends!(
    outside_the_window_bot_messages_go_as_the_template,
    fake_whatsapp(),
    async |app: &TestApp| {
        let EchoBot {
            fake, team, bot, ..
        } = meta_echo_bot(app).await;
        let trigger = async |text: &str| {
            app.trigger_bot_settled(&team, bot, "whatsapp", "+27821234567", text)
                .await;
        };
        // Never wrote: the template, in the provider's language.
        trigger("Your appointment is tomorrow.").await;
        assert_eq!(
            sent(fake).await,
            vec![template_send("pt_BR", "Your appointment is tomorrow.")]
        );
        // Wrote just now: free-form text.
        assert_eq!(
            post(
                app,
                &notification(PHONE_ID, json!([text("wamid.1", "ok")])),
                Some(APP_SECRET)
            )
            .await,
            200
        );
        app.settle().await;
        trigger("See you then.").await;
        let out = sent(fake).await;
        assert_eq!(out[1], text_send("You said: ok"));
        assert_eq!(out[2], text_send("See you then."));
        // Wrote more than 24 hours ago: the template again.
        let day_ago = chrono::Utc::now() - chrono::Duration::hours(25);
        {
            use sea_orm::EntityTrait;
            use sea_orm::sea_query::Expr;
            store::entity::message::Entity::update_many()
                .col_expr(
                    store::entity::message::Column::CreatedAt,
                    Expr::value(day_ago),
                )
                .exec(&app.domain.db.write)
                .await
                .unwrap();
        }
        trigger("Still there?").await;
        assert_eq!(sent(fake).await[3], template_send("pt_BR", "Still there?"));
    }
);

both_backends!(
    send_errors_are_classified,
    fake_whatsapp(),
    async |app: &TestApp| {
        let fake = app.whatsapp();
        let error = |code: i64, status: u16| {
            ResponseTemplate::new(status).set_body_json(json!({"error": {
                "message": "(#x) failure", "type": "OAuthException", "code": code, "fbtrace_id": "A"}}))
        };
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        meta_channel(app, &team, bot).await;
        // Meta still refuses free-form for the window (131047): the template goes instead.
        Mock::given(method("POST"))
            .and(path(format!("/v21.0/{PHONE_ID}/messages")))
            .respond_with(error(131_047, 400))
            .up_to_n_times(1)
            .mount(fake)
            .await;
        let fake = meta_accepts(app).await;
        assert_eq!(
            post(
                app,
                &notification(PHONE_ID, json!([text("wamid.1", "hi")])),
                Some(APP_SECRET)
            )
            .await,
            200
        );
        app.settle().await;
        let out = sent(fake).await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], template_send("pt_BR", "You said: hi"));

        // Undeliverable (131026): recorded as blocked, not tried again.
        fake.reset().await;
        Mock::given(method("POST"))
            .respond_with(error(131_026, 400))
            .mount(fake)
            .await;
        app.trigger_bot_settled(&team, bot, "whatsapp", "+27821234567", "hello?")
            .await;
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'bot.send' AND status = 'failed' AND attempts = 1").await,
            1
        );
        app.trigger_bot_settled(&team, bot, "whatsapp", "+27821234567", "again?")
            .await;
        assert_eq!(
            sent(fake).await.len(),
            1,
            "a blocked participant is not tried again"
        );

        // Rate limited (130429): retried, and delivered once Meta lets it through.
        fake.reset().await;
        Mock::given(method("POST"))
            .respond_with(error(130_429, 400))
            .up_to_n_times(1)
            .mount(fake)
            .await;
        let fake = meta_accepts(app).await;
        let other = json!({"from": "27829999999", "id": "wamid.9", "timestamp": "1717000000", "type": "text", "text": {"body": "yo"}});
        assert_eq!(
            post(
                app,
                &notification(PHONE_ID, json!([other])),
                Some(APP_SECRET)
            )
            .await,
            200
        );
        app.settle().await;
        let out = sent(fake).await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[1]["to"], "27829999999");
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'channel.turn' AND status = 'succeeded' AND attempts = 2").await,
            1
        );
    }
);

both_backends!(
    a_disabled_channel_says_so_and_stores_nothing,
    fake_whatsapp(),
    async |app: &TestApp| {
        let EchoBot {
            fake,
            team,
            bot,
            channel: ch,
            ..
        } = meta_echo_bot(app).await;
        domain::channels::set_enabled(
            &app.domain.db.write,
            ch,
            false,
            Some("We are closed until Monday.".into()),
        )
        .await
        .unwrap();
        assert_eq!(
            post(
                app,
                &notification(PHONE_ID, json!([text("wamid.1", "hi")])),
                Some(APP_SECRET)
            )
            .await,
            200
        );
        app.settle().await;
        assert_eq!(
            sent(fake).await,
            vec![text_send("We are closed until Monday.")]
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM participants").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM messages").await, 0);
        // Bot-initiated messages are not sent on a disabled channel either.
        domain::channels::set_enabled(&app.domain.db.write, ch, true, None)
            .await
            .unwrap();
        assert_eq!(
            post(
                app,
                &notification(PHONE_ID, json!([text("wamid.2", "hi")])),
                Some(APP_SECRET)
            )
            .await,
            200
        );
        app.settle().await;
        domain::channels::set_enabled(&app.domain.db.write, ch, false, None)
            .await
            .unwrap();
        let (s, v) = app
            .trigger_bot(&team, bot, "whatsapp", "+27821234567", "psst")
            .await;
        assert_eq!(
            (s, &v["detail"]),
            (
                400,
                &json!("The whatsapp channel for this chatbot is disabled.")
            )
        );
        app.settle().await;
        assert_eq!(sent(fake).await.len(), 2);
    }
);

both_backends!(
    schedules_reach_whatsapp_participants,
    fake_whatsapp(),
    async |app: &TestApp| {
        let EchoBot {
            fake, team, bot, ..
        } = meta_echo_bot(app).await;
        let (s, v) = app
            .post_json("/api/participants", &team.key, &json!({"identifier": "27821234567", "platform": "whatsapp", "data": [{"experiment": bot, "schedules": [{"id": "wa", "name": "Wa", "prompt": "Say hi", "date": "2030-01-02T09:00:00Z"}]}]}))
            .await;
        assert_eq!(s, 200, "{v}");
        let due = chrono::DateTime::parse_from_rfc3339("2030-01-02T09:00:01Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            domain::schedules::tick(&app.domain.db, due, 100)
                .await
                .unwrap(),
            1
        );
        app.domain.job_signal.notify_waiters();
        app.settle().await;
        // Nobody wrote yet: the schedule's message goes as the template.
        assert_eq!(
            sent(fake).await,
            vec![template_send("pt_BR", "You said: [Instruction] Say hi")]
        );
    }
);

both_backends!(
    messages_sent_together_are_answered_in_order,
    fake_whatsapp(),
    async |app: &TestApp| {
        let EchoBot { fake, .. } = meta_echo_bot(app).await;
        let burst: Vec<Value> = (1..=6)
            .map(|i| text(&format!("wamid.{i}"), &format!("part {i}")))
            .collect();
        assert_eq!(
            post(app, &notification(PHONE_ID, json!(burst)), Some(APP_SECRET)).await,
            200
        );
        app.settle().await;
        let replies: Vec<String> = sent(fake)
            .await
            .iter()
            .map(|b| b["text"]["body"].as_str().unwrap().to_string())
            .collect();
        let want: Vec<String> = (1..=6).map(|i| format!("You said: part {i}")).collect();
        assert_eq!(replies, want);
        // The turns are jobs of the one session: what keeps them in order.
        assert_eq!(
            app.scalar("SELECT COUNT(DISTINCT session_id) FROM jobs WHERE kind = 'channel.turn'")
                .await,
            1
        );
    }
);
