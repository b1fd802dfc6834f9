//! First-start work: instance secrets and the demo team.

use rand::Rng;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, PaginatorTrait, Set};
use serde_json::json;
use store::entity::{setting, team};

use crate::conn::{Reads, Writes};
use crate::secrets::SecretBox;
use crate::{Db, Error, Result, chatbots, keys, teams};
use store::constraints::SETTING_KEY;

/// Returns the named instance secret, creating it if absent. It is stored
/// sealed with the instance key, so a copy of the database alone cannot
/// forge session tokens or cursors; a value an older version stored in the
/// clear is sealed in place the first time it is read. Concurrent first
/// starts race on the primary key; the loser reads the winner's value.
pub async fn instance_secret(db: &Db, secrets: &SecretBox, name: &str) -> Result<Vec<u8>> {
    let decode = |hex_text: &str| {
        hex::decode(hex_text).map_err(|e| Error::internal(format!("setting {name}: {e}")))
    };
    if let Some(s) = setting::Entity::find_by_id(name.to_string())
        .one(&db.write)
        .await?
    {
        if SecretBox::is_sealed(&s.value) {
            return decode(&secrets.open(&s.value)?);
        }
        let plain = decode(&s.value)?;
        let mut am: setting::ActiveModel = s.into();
        am.value = Set(secrets.seal(&hex::encode(&plain))?);
        am.update(&db.write).await?;
        return Ok(plain);
    }
    let mut secret = [0u8; 32];
    rand::rng().fill(&mut secret);
    let res = setting::ActiveModel {
        key: Set(name.to_string()),
        value: Set(secrets.seal(&hex::encode(secret))?),
    }
    .insert(&db.write)
    .await;
    match res {
        Ok(_) => Ok(secret.to_vec()),
        Err(e) if SETTING_KEY.violated_by(&e) => {
            let s = setting::Entity::find_by_id(name.to_string())
                .one(&db.write)
                .await?
                .ok_or_else(|| Error::internal(format!("setting {name} vanished")))?;
            if SecretBox::is_sealed(&s.value) {
                decode(&secrets.open(&s.value)?)
            } else {
                decode(&s.value)
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// What the first start created, printed once to the operator.
#[derive(Debug, Clone)]
pub struct DemoSeed {
    pub api_key: String,
    pub chatbot_id: uuid::Uuid,
    /// The owner's console sign-in, the password shown once.
    pub console_email: String,
    pub console_password: String,
}

pub const DEMO_TEAM: &str = "demo";

/// On an empty database, creates team `demo` with its owner, a read-write key and
/// a demo chatbot. Returns `None` when any team exists already (later starts, or
/// another process that won the race).
pub async fn seed_demo<C: ConnectionTrait + sea_orm::TransactionTrait + Reads + Writes>(
    db: &C,
    secrets: &crate::secrets::SecretBox,
) -> Result<Option<DemoSeed>> {
    if team::Entity::find().count(db).await? > 0 {
        return Ok(None);
    }
    let (team, owner) = match teams::create(db, DEMO_TEAM, Some("Demo")).await {
        Ok(t) => t,
        Err(Error::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let (_, api_key) = keys::create(db, team.id, owner, "demo", false).await?;
    crate::providers::add(
        db,
        secrets,
        team.id,
        crate::providers::NewProvider {
            name: "builtin".into(),
            kind: "builtin".into(),
            ..Default::default()
        },
    )
    .await?;
    let bot = chatbots::create(
        db,
        team.id,
        Some(owner),
        "Demo bot",
        Some("A ready-made chatbot that answers offline with the built-in model."),
        Some(json!({
            "pipeline": {
                "nodes": [
                    {"id": "start", "type": "start"},
                    {"id": "llm", "type": "llm", "params": {
                        "provider": "builtin", "model": "echo",
                        "prompt": "You are a friendly demo assistant.",
                        "history": {"mode": "max_history_length", "max_history_length": 10}
                    }},
                    {"id": "end", "type": "end"}
                ],
                "edges": [
                    {"from": "start", "to": "llm"},
                    {"from": "llm", "to": "end"}
                ]
            }
        })),
    )
    .await?;
    chatbots::create_version(db, team.id, bot.id, "Initial version", true).await?;
    let console_email = crate::users::email(db, crate::UserId(owner)).await?;
    let console_password = crate::keys::random_alnum(20);
    crate::users::set_password(
        db,
        &console_email,
        &crate::users::Password::new(console_password.clone()),
    )
    .await?;
    Ok(Some(DemoSeed {
        api_key,
        chatbot_id: bot.id,
        console_email,
        console_password,
    }))
}
