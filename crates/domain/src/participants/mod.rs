//! Participants: chat identities, unique per (team, platform, identifier),
//! and their per-chatbot data (`data`), as conversations and the management
//! API (`listing`, `upsert`) use them.

pub mod data;
pub mod listing;
pub mod upsert;

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use store::constraints::PARTICIPANT_IDENTITY;
use store::entity::participant;
use uuid::Uuid;

pub use listing::{DataEntry, Detail, Filter, list};
pub use upsert::{ScheduleInput, Upsert, UpsertItem, upsert};

use crate::channels::Platform;
use crate::conn::{Reads, Writes};
use crate::ids::{ParticipantId, TeamId, UserId};
use crate::text_enum::stored;
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct Participant {
    pub id: ParticipantId,
    pub public_id: Uuid,
    pub identifier: String,
    pub platform: Platform,
    pub name: String,
}

impl Participant {
    fn from_row(m: participant::Model) -> Result<Self> {
        Ok(Participant {
            id: ParticipantId(m.id),
            public_id: m.public_id,
            platform: stored(&m.platform)?,
            identifier: m.identifier,
            name: m.name,
        })
    }
}

/// Finds or creates the participant `(team, platform, identifier)`; safe
/// against a concurrent create of the same participant.
pub async fn get_or_create(
    db: &(impl Reads + Writes),
    team_id: TeamId,
    platform: Platform,
    identifier: &str,
    user_id: Option<UserId>,
) -> Result<Participant> {
    let find = || {
        participant::Entity::find()
            .filter(participant::Column::TeamId.eq(team_id))
            .filter(participant::Column::Platform.eq(platform))
            .filter(participant::Column::Identifier.eq(identifier))
    };
    // Read where reads go: on SQLite the writer is one connection that every
    // turn's writes queue for, and a participant almost always exists.
    if let Some(p) = find().one(db.reader()).await? {
        return Participant::from_row(p);
    }
    let db = db.writer();
    let now = store::now();
    let res = participant::ActiveModel {
        public_id: Set(Uuid::new_v4()),
        team_id: Set(team_id.0),
        platform: Set(platform.as_str().to_string()),
        identifier: Set(identifier.to_string()),
        name: Set(String::new()),
        remote_id: Set(String::new()),
        user_id: Set(user_id.map(i64::from)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await;
    match res {
        Ok(p) => Participant::from_row(p),
        Err(e) if PARTICIPANT_IDENTITY.violated_by(&e) => find()
            .one(db)
            .await?
            .map(Participant::from_row)
            .transpose()?
            .ok_or_else(|| Error::internal("participant vanished after a conflict")),
        Err(e) => Err(e.into()),
    }
}

/// A participant nobody knows (a keyless or embed-key widget visitor).
pub async fn create_anonymous(
    db: &impl Writes,
    team_id: TeamId,
    platform: Platform,
    remote_id: &str,
) -> Result<Participant> {
    let id = Uuid::new_v4();
    let now = store::now();
    let m = participant::ActiveModel {
        public_id: Set(id),
        team_id: Set(team_id.0),
        platform: Set(platform.as_str().to_string()),
        identifier: Set(format!("anon:{id}")),
        name: Set("Anonymous".into()),
        remote_id: Set(remote_id.to_string()),
        user_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db.writer())
    .await?;
    Participant::from_row(m)
}

pub async fn set_name(db: &impl Writes, id: ParticipantId, name: &str) -> Result<()> {
    participant::Entity::update_many()
        .col_expr(participant::Column::Name, Expr::value(name))
        .col_expr(participant::Column::UpdatedAt, Expr::value(store::now()))
        .filter(participant::Column::Id.eq(id))
        .exec(db.writer())
        .await?;
    Ok(())
}

pub async fn get(db: &impl Reads, id: ParticipantId) -> Result<Option<Participant>> {
    participant::Entity::find_by_id(id.0)
        .one(db.reader())
        .await?
        .map(Participant::from_row)
        .transpose()
}

/// A team's participant by identifier: the API channel's if there is one,
/// else the first on any platform.
pub async fn by_identifier(
    db: &impl Reads,
    team_id: TeamId,
    identifier: &str,
) -> Result<Option<Participant>> {
    let rows = participant::Entity::find()
        .filter(participant::Column::TeamId.eq(team_id))
        .filter(participant::Column::Identifier.eq(identifier))
        .all(db.reader())
        .await?;
    let api = rows
        .iter()
        .position(|r| r.platform == Platform::Api.as_str());
    let row = match api {
        Some(i) => rows.into_iter().nth(i),
        None => rows.into_iter().next(),
    };
    row.map(Participant::from_row).transpose()
}
