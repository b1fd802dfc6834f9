//! Voice notes and files on push channels: downloaded through the platform,
//! stored and attached to the human message, voice notes transcribed and
//! answered by voice — against fake Telegram, Graph and OpenAI-compatible
//! speech servers that check the exact requests.

use chatstudio_testkit::{Options, TestApp, TestTeam, both_backends};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::telegram::{SECRET, TOKEN, sent, telegram_accepts, telegram_channel, webhook};
use crate::whatsapp::{APP_SECRET, PHONE_ID, meta_accepts, meta_channel, notification, post};

pub const HEARD: &str = "what time is the clinic open";
pub const VOICE_NOTE: &[u8] = b"OggS\x00voice-note-bytes";
pub const SPOKEN: &[u8] = b"OggS\x00spoken-reply-bytes";

fn fakes() -> Options {
    Options {
        fake_telegram: true,
        fake_whatsapp: true,
        ..Default::default()
    }
}

/// A fake OpenAI-compatible speech server: transcribes everything as
/// [`HEARD`] and speaks [`SPOKEN`].
pub async fn speech_server() -> MockServer {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/audio/transcriptions"))
        .and(header("authorization", "Bearer sk-voice"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"text": HEARD})))
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/audio/speech"))
        .and(header("authorization", "Bearer sk-voice"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "audio/ogg")
                .set_body_bytes(SPOKEN),
        )
        .mount(&fake)
        .await;
    fake
}

/// An echo bot whose voice is `voice`, with the speech provider `oa`.
pub async fn voice_bot(app: &TestApp, team: &TestTeam, speech: &MockServer, voice: Value) -> Uuid {
    app.provider(team, "local", "builtin", None, None).await;
    app.provider(
        team,
        "oa",
        "openai",
        Some(&format!("{}/v1", speech.uri())),
        Some("sk-voice"),
    )
    .await;
    let pipeline =
        serde_json::to_value(domain::pipeline::Pipeline::single_llm("local", "echo", "")).unwrap();
    app.chatbot_with(team, "Voice", json!({"pipeline": pipeline, "voice": voice}))
        .await
}

pub fn reciprocal() -> Value {
    json!({"voice_response_behaviour": "reciprocal",
           "transcription": {"provider": "oa"},
           "speech": {"provider": "oa", "voice": "nova"}})
}

fn tg_voice(id: i64, chat: i64) -> Value {
    json!({"update_id": id, "message": {"message_id": id, "date": 0,
        "from": {"id": chat, "first_name": "Ana"}, "chat": {"id": chat, "type": "private"},
        "voice": {"duration": 2, "mime_type": "audio/ogg", "file_id": "VOICE-1", "file_unique_id": "u1", "file_size": 18}}})
}

async fn telegram_files(fake: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!("/bot{TOKEN}/getFile")))
        .and(body_partial_json(json!({"file_id": "VOICE-1"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"file_id": "VOICE-1", "file_unique_id": "u1", "file_size": 18, "file_path": "voice/file_7.oga"}})))
        .mount(fake)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/file/bot{TOKEN}/voice/file_7.oga")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(VOICE_NOTE))
        .mount(fake)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{TOKEN}/sendVoice")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "result": {"message_id": 9, "date": 0, "chat": {"id": 1, "type": "private"}}})))
        .mount(fake)
        .await;
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub async fn requests_to(fake: &MockServer, suffix: &str) -> Vec<wiremock::Request> {
    fake.received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path().ends_with(suffix))
        .collect()
}

/// The only session's detail, as the API shows it.
pub async fn detail(app: &TestApp, team: &TestTeam) -> Value {
    let list = app.get_json("/api/sessions/", &team.key).await;
    let id = list["results"][0]["id"].as_str().unwrap().to_string();
    app.get_json(&format!("/api/sessions/{id}/"), &team.key)
        .await
}

both_backends!(
    a_telegram_voice_note_is_heard_and_answered_by_voice,
    fakes(),
    async |app: &TestApp| {
        let tg = telegram_accepts(app).await;
        telegram_files(tg).await;
        let speech = speech_server().await;
        let team = app.team("a").await;
        let bot = voice_bot(app, &team, &speech, reciprocal()).await;
        let ch = telegram_channel(app, bot).await;
        assert_eq!(webhook(app, ch, SECRET, &tg_voice(1, 42)).await, 200);
        app.settle().await;

        // The voice note went to the transcriber as a file, with the model.
        let stt = requests_to(&speech, "/audio/transcriptions").await;
        assert_eq!(stt.len(), 1);
        assert!(contains(&stt[0].body, VOICE_NOTE));
        assert!(contains(&stt[0].body, b"whisper-1"));
        // The reply was spoken with the chatbot's voice and sent as a voice note.
        let tts = requests_to(&speech, "/audio/speech").await;
        let asked: Value = serde_json::from_slice(&tts[0].body).unwrap();
        assert_eq!(
            asked,
            json!({"model": "tts-1", "voice": "nova", "input": format!("You said: {HEARD}"), "response_format": "opus"})
        );
        let voice = requests_to(tg, "/sendVoice").await;
        assert_eq!(voice.len(), 1);
        assert!(contains(&voice[0].body, SPOKEN));
        assert!(contains(&voice[0].body, b"name=\"chat_id\"\r\n\r\n42"));
        assert!(sent(tg).await.is_empty(), "no text reply besides the voice");

        // The transcript is the human message; the audio is its attachment.
        let d = detail(app, &team).await;
        let human = &d["messages"][0];
        assert_eq!(
            (human["role"].as_str(), human["content"].as_str()),
            (Some("user"), Some(HEARD))
        );
        assert_eq!(human["attachments"][0]["content_type"], "audio/ogg");
        assert_eq!(human["attachments"][0]["size"], VOICE_NOTE.len());
        let url = human["attachments"][0]["content_url"].as_str().unwrap();
        let path = url.strip_prefix(&app.base).unwrap();
        let bytes = app.get(path, &team.key).await.bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), VOICE_NOTE);

        // Text is answered by text (reciprocal).
        assert_eq!(
            webhook(
                app,
                ch,
                SECRET,
                &crate::telegram::update(2, 42, Some("thanks"))
            )
            .await,
            200
        );
        app.settle().await;
        assert_eq!(
            sent(tg).await,
            vec![("42".to_string(), "You said: thanks".to_string())]
        );
        assert_eq!(requests_to(tg, "/sendVoice").await.len(), 1);
    }
);

both_backends!(
    voice_that_cannot_be_heard_is_said_so,
    fakes(),
    async |app: &TestApp| {
        let tg = telegram_accepts(app).await;
        telegram_files(tg).await;
        // The transcriber refuses the request.
        let speech = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/audio/transcriptions"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "Invalid file format.", "type": "invalid_request_error"}})))
            .mount(&speech)
            .await;
        let team = app.team("a").await;
        let bot = voice_bot(app, &team, &speech, reciprocal()).await;
        let ch = telegram_channel(app, bot).await;
        assert_eq!(webhook(app, ch, SECRET, &tg_voice(1, 42)).await, 200);
        app.settle().await;
        assert_eq!(
            sent(tg).await,
            vec![(
                "42".to_string(),
                "Sorry, I could not make out your voice message. Please try again, or write your message."
                    .to_string()
            )]
        );
        let failed = app
            .rows(
                "SELECT status, CAST(result AS TEXT) FROM jobs WHERE kind = 'channel.turn'",
                &["status", "result"],
            )
            .await;
        assert_eq!(failed[0]["status"], "failed");
        assert!(
            failed[0]["result"]
                .as_str()
                .unwrap()
                .contains("Invalid file format"),
            "{failed:?}"
        );

        // A chatbot without transcription apologises for voice notes.
        let other = app.team("b").await;
        let plain = app.echo_bot(&other).await;
        let ch2 = domain::channels::telegram::add(
            &app.domain.db.write,
            &app.domain.secrets,
            plain,
            TOKEN,
            "second-secret",
            json!({"username": "Other"}),
        )
        .await
        .unwrap()
        .id;
        assert_eq!(
            webhook(app, ch2, "second-secret", &tg_voice(5, 43)).await,
            200
        );
        app.settle().await;
        assert_eq!(
            sent(tg).await[1],
            (
                "43".to_string(),
                "Sorry, voice messages are not supported yet. Please send your message as text."
                    .to_string()
            )
        );
    }
);

async fn meta_media(fake: &MockServer, id: &str, bytes: &'static [u8], mime: &str) {
    let url = format!("{}/media-cdn/{id}", fake.uri());
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{id}")))
        .and(header("authorization", "Bearer EAAG-system-user-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messaging_product": "whatsapp", "url": url, "mime_type": mime, "sha256": "x", "file_size": bytes.len(), "id": id})))
        .mount(fake)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/media-cdn/{id}")))
        .and(header("authorization", "Bearer EAAG-system-user-token"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", mime)
                .set_body_bytes(bytes),
        )
        .mount(fake)
        .await;
}

both_backends!(
    whatsapp_images_are_kept_and_voice_notes_answered_by_voice,
    fakes(),
    async |app: &TestApp| {
        let wa = meta_accepts(app).await;
        Mock::given(method("POST"))
            .and(path(format!("/v21.0/{PHONE_ID}/media")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "UPLOADED-1"})))
            .mount(wa)
            .await;
        meta_media(wa, "2001", b"\xff\xd8\xffjpeg-bytes", "image/jpeg").await;
        meta_media(wa, "2002", VOICE_NOTE, "audio/ogg; codecs=opus").await;
        let speech = speech_server().await;
        let team = app.team("a").await;
        let voice = json!({"voice_response_behaviour": "always", "transcription": {"provider": "oa"}, "speech": {"provider": "oa"}});
        let bot = voice_bot(app, &team, &speech, voice).await;
        meta_channel(app, &team, bot).await;
        let image = json!({"from": "27821234567", "id": "wamid.img", "timestamp": "1717000000", "type": "image",
            "image": {"caption": "is this rash serious?", "mime_type": "image/jpeg", "sha256": "x", "id": "2001"}});
        assert_eq!(
            post(
                app,
                &notification(PHONE_ID, json!([image])),
                Some(APP_SECRET)
            )
            .await,
            200
        );
        app.settle().await;
        let d = detail(app, &team).await;
        assert_eq!(d["messages"][0]["content"], "is this rash serious?");
        assert_eq!(
            d["messages"][0]["attachments"][0]["content_type"],
            "image/jpeg"
        );
        assert_eq!(d["messages"][0]["attachments"][0]["name"], "image.jpg");

        let note = json!({"from": "27821234567", "id": "wamid.voice", "timestamp": "1717000001", "type": "audio",
            "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "2002", "voice": true}});
        assert_eq!(
            post(
                app,
                &notification(PHONE_ID, json!([note])),
                Some(APP_SECRET)
            )
            .await,
            200
        );
        app.settle().await;
        // `always`: both replies were spoken: uploaded, then sent by the media id.
        let uploads = requests_to(wa, &format!("/{PHONE_ID}/media")).await;
        assert_eq!(uploads.len(), 2);
        assert!(contains(&uploads[1].body, SPOKEN));
        assert!(contains(
            &uploads[1].body,
            b"name=\"messaging_product\"\r\n\r\nwhatsapp"
        ));
        let sends: Vec<Value> = requests_to(wa, &format!("/{PHONE_ID}/messages"))
            .await
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        assert_eq!(sends.len(), 2);
        for s in &sends {
            assert_eq!(s["type"], "audio");
            assert_eq!(s["audio"], json!({"id": "UPLOADED-1"}));
            assert_eq!(s["to"], "27821234567");
        }
        let d = detail(app, &team).await;
        assert_eq!(d["messages"][2]["content"], HEARD);
        assert_eq!(
            d["messages"][2]["attachments"][0]["content_type"],
            "audio/ogg"
        );
    }
);

both_backends!(
    a_failing_speech_server_or_platform_is_not_silence,
    fakes(),
    async |app: &TestApp| {
        let tg = telegram_accepts(app).await;
        telegram_files(tg).await;
        // Transcription works, speech does not: the reply goes as text.
        let speech = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/audio/transcriptions"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"text": HEARD})))
            .mount(&speech)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/audio/speech"))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(json!({"error": {"message": "voice not found"}})),
            )
            .mount(&speech)
            .await;
        let team = app.team("a").await;
        let bot = voice_bot(app, &team, &speech, reciprocal()).await;
        let ch = telegram_channel(app, bot).await;
        assert_eq!(webhook(app, ch, SECRET, &tg_voice(1, 42)).await, 200);
        app.settle().await;
        assert_eq!(
            sent(tg).await,
            vec![("42".to_string(), format!("You said: {HEARD}"))]
        );
        assert!(requests_to(tg, "/sendVoice").await.is_empty());

        // The platform refuses the file: the participant is told, nothing is stored.
        let photo = json!({"update_id": 2, "message": {"message_id": 2, "date": 0,
            "from": {"id": 42, "first_name": "Ana"}, "chat": {"id": 42, "type": "private"},
            "photo": [{"file_id": "GONE", "file_unique_id": "g", "width": 1, "height": 1}]}});
        Mock::given(method("POST"))
            .and(path(format!("/bot{TOKEN}/getFile")))
            .and(body_partial_json(json!({"file_id": "GONE"})))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"ok": false, "error_code": 400, "description": "Bad Request: wrong file_id or the file is temporarily unavailable"})))
            .mount(tg)
            .await;
        let files = app.scalar("SELECT COUNT(*) FROM files").await;
        assert_eq!(webhook(app, ch, SECRET, &photo).await, 200);
        app.settle().await;
        assert_eq!(
            sent(tg).await[1],
            (
                "42".to_string(),
                "Sorry, I could not receive your file. Please try sending it again.".to_string()
            )
        );
        assert_eq!(app.scalar("SELECT COUNT(*) FROM files").await, files);
    }
);
