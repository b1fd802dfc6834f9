//! WhatsApp through Twilio and Turn.io: their webhooks' signatures, the
//! channel each call reaches, and the exact sends, against fakes of their
//! APIs.

use base64::Engine as _;
use chatstudio_testkit::{TestApp, TestTeam, both_backends};
use domain::messaging::{self, Credentials};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::voice::{
    HEARD, SPOKEN, VOICE_NOTE, contains, detail, reciprocal, requests_to, speech_server, voice_bot,
};
use crate::whatsapp::fake_whatsapp;

const SID: &str = "AC0123456789abcdef";
const TWILIO_TOKEN: &str = "twilio-auth-token";
const TWILIO_NUMBER: &str = "+14155238886";
const TURN_TOKEN: &str = "turn-token";
const TURN_SECRET: &str = "turn-hook-secret";

async fn channel(app: &TestApp, team: &TestTeam, bot: Uuid, creds: Credentials, number: &str) {
    let t = domain::teams::by_slug(&app.domain.db.read, &team.slug)
        .await
        .unwrap();
    let name = creds.kind().as_str();
    messaging::add(&app.domain.db.write, &app.domain.secrets, t.id, name, creds)
        .await
        .unwrap();
    let access = messaging::by_name(&app.domain.db.read, &app.domain.secrets, t.id, name)
        .await
        .unwrap();
    domain::channels::whatsapp::add(&app.domain.db.write, bot, &access, number, number)
        .await
        .unwrap();
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn twilio_message(sid: &str, body: &str) -> Vec<(String, String)> {
    form(&[
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ProfileName", "Ana"),
        ("MessageType", "text"),
        ("SmsSid", sid),
        ("WaId", "27821234567"),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", &format!("whatsapp:{TWILIO_NUMBER}")),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", SID),
        ("From", "whatsapp:+27821234567"),
        ("ApiVersion", "2010-04-01"),
    ])
}

async fn post_twilio(app: &TestApp, params: &[(String, String)], token: Option<&str>) -> u16 {
    let url = app.url("/channels/twilio/incoming_message");
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    let mut rb = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(t) = token {
        rb = rb.header(
            "X-Twilio-Signature",
            channels::twilio::sign(t, &url, params),
        );
    }
    rb.body(body).send().await.unwrap().status().as_u16()
}

async fn twilio_sends(fake: &MockServer) -> Vec<Vec<(String, String)>> {
    fake.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/Messages.json"))
        .map(|r| form_urlencoded::parse(&r.body).into_owned().collect())
        .collect()
}

both_backends!(
    twilio_messages_are_signed_routed_by_number_and_answered,
    fake_whatsapp(),
    async |app: &TestApp| {
        let fake = app.whatsapp();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TWILIO_TOKEN}"))
        );
        Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
            .and(header("authorization", basic.as_str()))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})),
            )
            .mount(fake)
            .await;
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let creds = Credentials::Twilio {
            account_sid: SID.into(),
            auth_token: TWILIO_TOKEN.into(),
            template_content_sid: None,
        };
        channel(app, &team, bot, creds, TWILIO_NUMBER).await;
        let hi = twilio_message("SM100", "hi");
        assert_eq!(post_twilio(app, &hi, Some("wrong-token")).await, 403);
        assert_eq!(post_twilio(app, &hi, None).await, 403);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM inbound_events").await, 0);
        assert_eq!(post_twilio(app, &hi, Some(TWILIO_TOKEN)).await, 200);
        assert_eq!(post_twilio(app, &hi, Some(TWILIO_TOKEN)).await, 200);
        // A status callback stores nothing.
        let status = form(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "delivered"),
            ("To", "whatsapp:+27821234567"),
            ("From", &format!("whatsapp:{TWILIO_NUMBER}")),
            ("AccountSid", SID),
        ]);
        assert_eq!(post_twilio(app, &status, Some(TWILIO_TOKEN)).await, 200);
        app.settle().await;
        assert_eq!(
            twilio_sends(fake).await,
            vec![form(&[
                ("From", &format!("whatsapp:{TWILIO_NUMBER}")),
                ("To", "whatsapp:+27821234567"),
                ("Body", "You said: hi"),
            ])]
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM inbound_events").await, 1);

        // Outside the window Twilio refuses free-form text (63016): the job fails saying so.
        fake.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"code": 63016, "message": "Failed to send freeform message because you are outside the allowed window.", "status": 400})))
            .mount(fake)
            .await;
        app.trigger_bot_settled(&team, bot, "whatsapp", "+27821234567", "hello?")
            .await;
        let failed = app
            .rows(
                "SELECT status, last_error, CAST(result AS TEXT) FROM jobs WHERE kind = 'bot.send'",
                &["status", "error", "result"],
            )
            .await;
        assert_eq!(failed[0]["status"], "failed");
        assert!(
            failed[0].to_string().contains("24-hour window"),
            "{failed:?}"
        );
    }
);

async fn post_turn(app: &TestApp, bot: Uuid, body: &Value, secret: Option<&str>) -> u16 {
    let raw = serde_json::to_vec(body).unwrap();
    let mut rb = app
        .client
        .post(app.url(&format!("/channels/whatsapp/turn/{bot}/incoming_message")))
        .header("content-type", "application/json");
    if let Some(s) = secret {
        rb = rb.header(
            "X-Turn-Hook-Signature",
            channels::whatsapp_turn::sign(s, &raw),
        );
    }
    rb.body(raw).send().await.unwrap().status().as_u16()
}

fn turn_message(id: &str, body: &str) -> Value {
    json!({"contacts": [{"profile": {"name": "Ana"}, "wa_id": "27821234567"}],
           "messages": [{"from": "27821234567", "id": id, "timestamp": "1717000000", "type": "text", "text": {"body": body}}]})
}

both_backends!(
    turn_messages_are_checked_when_a_secret_is_set_and_answered,
    fake_whatsapp(),
    async |app: &TestApp| {
        let fake = app.whatsapp();
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .and(header(
                "authorization",
                format!("Bearer {TURN_TOKEN}").as_str(),
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"messages": [{"id": "gBEGkYiEB1VXAglK1ZEqA1YKPrU"}]})),
            )
            .mount(fake)
            .await;
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let creds = Credentials::Turnio {
            auth_token: TURN_TOKEN.into(),
            hmac_secret: Some(TURN_SECRET.into()),
        };
        channel(app, &team, bot, creds, "+27600000001").await;
        let hi = turn_message("ABGGFlA5Fpa", "hi");
        assert_eq!(post_turn(app, bot, &hi, None).await, 403);
        assert_eq!(post_turn(app, bot, &hi, Some("wrong")).await, 403);
        assert_eq!(
            post_turn(app, Uuid::new_v4(), &hi, Some(TURN_SECRET)).await,
            404
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM inbound_events").await, 0);
        assert_eq!(post_turn(app, bot, &hi, Some(TURN_SECRET)).await, 200);
        assert_eq!(post_turn(app, bot, &hi, Some(TURN_SECRET)).await, 200);
        // Statuses and system messages are not conversation.
        let status = json!({"statuses": [{"id": "gB1", "status": "read", "recipient_id": "27821234567", "timestamp": "1717000001"}]});
        assert_eq!(post_turn(app, bot, &status, Some(TURN_SECRET)).await, 200);
        let system = json!({"messages": [{"from": "27821234567", "id": "sys1", "type": "system", "system": {"body": "changed number"}}]});
        assert_eq!(post_turn(app, bot, &system, Some(TURN_SECRET)).await, 200);
        app.settle().await;
        let sent: Vec<Value> = fake
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        assert_eq!(
            sent,
            vec![
                json!({"preview_url": false, "recipient_type": "individual", "to": "27821234567",
                        "type": "text", "text": {"body": "You said: hi"}})
            ]
        );

        // Without a secret the webhook is open, as the original's.
        let other = app.team("b").await;
        let bot_b = app.echo_bot(&other).await;
        let creds = Credentials::Turnio {
            auth_token: TURN_TOKEN.into(),
            hmac_secret: None,
        };
        channel(app, &other, bot_b, creds, "+27600000002").await;
        assert_eq!(
            post_turn(app, bot_b, &turn_message("B1", "yo"), None).await,
            200
        );
        app.settle().await;
        assert_eq!(fake.received_requests().await.unwrap().len(), 2);

        // Turn's errors are classified: an invalid user (1013) is recorded as blocked.
        fake.reset().await;
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"errors": [{"code": 1013, "title": "User is not valid", "details": "the recipient is not a WhatsApp user"}]})))
            .mount(fake)
            .await;
        app.trigger_bot_settled(&other, bot_b, "whatsapp", "+27821234567", "ping")
            .await;
        let job = app
            .rows(
                "SELECT status, CAST(result AS TEXT) FROM jobs WHERE kind = 'bot.send'",
                &["status", "result"],
            )
            .await;
        assert_eq!(job[0]["status"], "failed");
        assert!(
            job[0]["result"]
                .as_str()
                .unwrap()
                .contains("blocked the bot"),
            "{job:?}"
        );
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM participant_data WHERE CAST(system_metadata AS TEXT) LIKE '%blocked_reason%'")
                .await,
            1
        );
    }
);

both_backends!(
    twilio_and_turn_voice_notes_are_fetched_and_heard,
    fake_whatsapp(),
    async |app: &TestApp| {
        let fake = app.whatsapp();
        let speech = speech_server().await;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TWILIO_TOKEN}"))
        );
        // Twilio: the media URL is fetched with the account's credentials.
        let media_path = format!("/2010-04-01/Accounts/{SID}/Messages/MM1/Media/ME1");
        Mock::given(method("GET"))
            .and(path(media_path.clone()))
            .and(header("authorization", basic.as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "audio/ogg")
                    .set_body_bytes(VOICE_NOTE),
            )
            .mount(fake)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM2"})))
            .mount(fake)
            .await;
        let team = app.team("a").await;
        let bot = voice_bot(app, &team, &speech, reciprocal()).await;
        let creds = Credentials::Twilio {
            account_sid: SID.into(),
            auth_token: TWILIO_TOKEN.into(),
            template_content_sid: None,
        };
        channel(app, &team, bot, creds, TWILIO_NUMBER).await;
        let mut note = twilio_message("MM1", "");
        note.retain(|(k, _)| k != "NumMedia" && k != "MessageType");
        let url = format!("{}{media_path}", fake.uri());
        note.extend(form(&[
            ("NumMedia", "1"),
            ("MessageType", "audio"),
            ("MediaContentType0", "audio/ogg"),
            ("MediaUrl0", &url),
        ]));
        assert_eq!(post_twilio(app, &note, Some(TWILIO_TOKEN)).await, 200);
        app.settle().await;
        assert!(contains(
            &requests_to(&speech, "/audio/transcriptions").await[0].body,
            VOICE_NOTE
        ));
        // Twilio takes voice only by a public URL: the reply goes as text.
        assert_eq!(
            twilio_sends(fake).await,
            vec![form(&[
                ("From", &format!("whatsapp:{TWILIO_NUMBER}")),
                ("To", "whatsapp:+27821234567"),
                ("Body", &format!("You said: {HEARD}")),
            ])]
        );
        let d = detail(app, &team).await;
        assert_eq!(d["messages"][0]["content"], HEARD);

        // Turn: fetched by media id; the spoken reply is uploaded, then sent by its id.
        Mock::given(method("GET"))
            .and(path("/v1/media/f0a1-voice"))
            .and(header(
                "authorization",
                format!("Bearer {TURN_TOKEN}").as_str(),
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "audio/ogg")
                    .set_body_bytes(VOICE_NOTE),
            )
            .mount(fake)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/media"))
            .and(header("content-type", "audio/ogg"))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(json!({"media": [{"id": "turn-media-9"}]})),
            )
            .mount(fake)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"messages": [{"id": "gB2"}]})),
            )
            .mount(fake)
            .await;
        let other = app.team("b").await;
        let turn_bot = voice_bot(app, &other, &speech, reciprocal()).await;
        let creds = Credentials::Turnio {
            auth_token: TURN_TOKEN.into(),
            hmac_secret: None,
        };
        channel(app, &other, turn_bot, creds, "+27600000003").await;
        let body = json!({"contacts": [{"profile": {"name": "Ana"}, "wa_id": "27821234567"}],
            "messages": [{"from": "27821234567", "id": "turn-v1", "timestamp": "1717000000", "type": "voice",
                          "voice": {"id": "f0a1-voice", "mime_type": "audio/ogg; codecs=opus"}}]});
        // Turn names voice notes `voice` (the Business API) or `audio`.
        assert_eq!(post_turn(app, turn_bot, &body, None).await, 200);
        app.settle().await;
        let upload = requests_to(fake, "/v1/media").await;
        assert_eq!(upload.len(), 1);
        assert_eq!(upload[0].body, SPOKEN);
        let sends: Vec<Value> = requests_to(fake, "/v1/messages")
            .await
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        assert_eq!(
            sends,
            vec![
                json!({"recipient_type": "individual", "to": "27821234567", "type": "audio", "audio": {"id": "turn-media-9"}})
            ]
        );
    }
);

both_backends!(
    sms_through_twilio_is_answered_by_sms,
    fake_whatsapp(),
    async |app: &TestApp| {
        let fake = app.whatsapp();
        Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM3"})))
            .mount(fake)
            .await;
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let t = domain::teams::by_slug(&app.domain.db.read, &team.slug)
            .await
            .unwrap();
        messaging::add(
            &app.domain.db.write,
            &app.domain.secrets,
            t.id,
            "twilio",
            Credentials::Twilio {
                account_sid: SID.into(),
                auth_token: TWILIO_TOKEN.into(),
                template_content_sid: None,
            },
        )
        .await
        .unwrap();
        let access = messaging::by_name(&app.domain.db.read, &app.domain.secrets, t.id, "twilio")
            .await
            .unwrap();
        domain::channels::whatsapp::add_sms(&app.domain.db.write, bot, &access, TWILIO_NUMBER)
            .await
            .unwrap();
        let sms = form(&[
            ("MessageSid", "SM900"),
            ("SmsSid", "SM900"),
            ("AccountSid", SID),
            ("From", "+27821234567"),
            ("To", TWILIO_NUMBER),
            ("Body", "hello by sms"),
            ("NumMedia", "0"),
        ]);
        // A WhatsApp message to the same number finds no WhatsApp channel: nothing stored.
        assert_eq!(
            post_twilio(app, &twilio_message("SM901", "hi"), Some(TWILIO_TOKEN)).await,
            200
        );
        assert_eq!(post_twilio(app, &sms, Some("bad")).await, 403);
        assert_eq!(post_twilio(app, &sms, Some(TWILIO_TOKEN)).await, 200);
        app.settle().await;
        assert_eq!(
            twilio_sends(fake).await,
            vec![form(&[
                ("From", TWILIO_NUMBER),
                ("To", "+27821234567"),
                ("Body", "You said: hello by sms"),
            ])]
        );
        assert_eq!(
            app.rows("SELECT platform, identifier FROM participants", &["p", "i"])
                .await,
            vec![json!({"p": "sms", "i": "+27821234567"})]
        );
        // The API's platform choices are the contract's: `sms` is not one.
        let (s, v) = app
            .trigger_bot(&team, bot, "sms", "+27821234567", "x")
            .await;
        assert_eq!(s, 400, "{v}");
    }
);

both_backends!(
    twilio_voice_replies_go_by_link_when_the_public_url_is_known,
    chatstudio_testkit::Options {
        fake_whatsapp: true,
        public_url: Some("http://chat.example.test".into()),
        ..Default::default()
    },
    async |app: &TestApp| {
        let fake = app.whatsapp();
        let speech = speech_server().await;
        Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM4"})))
            .mount(fake)
            .await;
        let team = app.team("a").await;
        let voice = json!({"voice_response_behaviour": "always", "speech": {"provider": "oa"}});
        let bot = voice_bot(app, &team, &speech, voice).await;
        let creds = Credentials::Twilio {
            account_sid: SID.into(),
            auth_token: TWILIO_TOKEN.into(),
            template_content_sid: None,
        };
        channel(app, &team, bot, creds, TWILIO_NUMBER).await;
        // Signed for the public URL, which is what Twilio calls.
        let params = twilio_message("SM500", "hi");
        let url = "http://chat.example.test/channels/twilio/incoming_message";
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        let r = app
            .client
            .post(app.url("/channels/twilio/incoming_message"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "X-Twilio-Signature",
                channels::twilio::sign(TWILIO_TOKEN, url, &params),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        app.settle().await;
        let sends = twilio_sends(fake).await;
        assert_eq!(sends.len(), 1, "{sends:?}");
        let media = sends[0]
            .iter()
            .find(|(k, _)| k == "MediaUrl")
            .unwrap()
            .1
            .clone();
        let link = media.strip_prefix("http://chat.example.test").unwrap();
        assert!(link.starts_with("/files/shared/"), "{media}");
        let spoken = app.client.get(app.url(link)).send().await.unwrap();
        assert_eq!(spoken.status(), 200);
        assert_eq!(spoken.bytes().await.unwrap().as_ref(), SPOKEN);
    }
);

both_backends!(
    twilio_uses_the_content_template_outside_the_window,
    fake_whatsapp(),
    async |app: &TestApp| {
        let fake = app.whatsapp();
        Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM7"})))
            .mount(fake)
            .await;
        let team = app.team("a").await;
        let bot = app.echo_bot(&team).await;
        let creds = Credentials::Twilio {
            account_sid: SID.into(),
            auth_token: TWILIO_TOKEN.into(),
            template_content_sid: Some("HX0123456789abcdef".into()),
        };
        channel(app, &team, bot, creds, TWILIO_NUMBER).await;
        let trigger = async |text: &str| {
            app.trigger_bot_settled(&team, bot, "whatsapp", "+27821234567", text)
                .await;
        };
        // Never wrote: the template, the text as its variable.
        trigger("Your results are ready.").await;
        assert_eq!(
            twilio_sends(fake).await,
            vec![form(&[
                ("From", &format!("whatsapp:{TWILIO_NUMBER}")),
                ("To", "whatsapp:+27821234567"),
                ("ContentSid", "HX0123456789abcdef"),
                ("ContentVariables", r#"{"1":"Your results are ready."}"#),
            ])]
        );
        // Wrote just now: free-form text.
        assert_eq!(
            post_twilio(app, &twilio_message("SM70", "ok"), Some(TWILIO_TOKEN)).await,
            200
        );
        app.settle().await;
        trigger("See you.").await;
        let sends = twilio_sends(fake).await;
        assert_eq!(sends.len(), 3);
        assert_eq!(sends[2][2], ("Body".to_string(), "See you.".to_string()));
        // A template SID is checked when the provider is added.
        let t = domain::teams::by_slug(&app.domain.db.read, &team.slug)
            .await
            .unwrap();
        let bad = Credentials::Twilio {
            account_sid: SID.into(),
            auth_token: TWILIO_TOKEN.into(),
            template_content_sid: Some("not-a-sid".into()),
        };
        let e = messaging::add(&app.domain.db.write, &app.domain.secrets, t.id, "bad", bad)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("HX"), "{e}");
    }
);
