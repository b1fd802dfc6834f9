//! Participants as the management API lists them, with their data rows.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use store::entity::{chatbot, participant, participant_data};
use uuid::Uuid;

use crate::channels::Platform;
use crate::conn::{Reads, Writes};
use crate::ids::{ParticipantId, TeamId};
use crate::pagination::{self, Listing, Order, Page, PageRequest, Position};
use crate::text_enum::stored;
use crate::{Domain, Result};

#[derive(Debug, Clone)]
pub struct DataEntry {
    pub chatbot: String,
    pub chatbot_id: Uuid,
    pub data: Value,
    pub connect_channel_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Detail {
    pub id: Uuid,
    pub identifier: String,
    pub name: String,
    pub platform: Platform,
    pub remote_id: String,
    pub data: Vec<DataEntry>,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub identifier: Option<String>,
    pub platform: Option<Platform>,
    pub chatbot: Option<Uuid>,
}

/// Data rows of these participants (optionally of one chatbot family), in
/// creation order, with their chatbots: two queries.
pub(super) async fn data_rows<C: ConnectionTrait + Reads + Writes>(
    db: &C,
    ids: &[i64],
    family: Option<i64>,
) -> Result<HashMap<i64, Vec<DataEntry>>> {
    let mut out: HashMap<i64, Vec<DataEntry>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q = participant_data::Entity::find()
        .filter(participant_data::Column::ParticipantId.is_in(ids.iter().copied()));
    if let Some(f) = family {
        q = q.filter(participant_data::Column::ChatbotId.eq(f));
    }
    let rows = q
        .order_by_asc(participant_data::Column::CreatedAt)
        .order_by_asc(participant_data::Column::Id)
        .all(db)
        .await?;
    let bot_ids: Vec<i64> = rows.iter().map(|r| r.chatbot_id).collect();
    let bots: HashMap<i64, chatbot::Model> = if bot_ids.is_empty() {
        HashMap::new()
    } else {
        chatbot::Entity::find()
            .filter(chatbot::Column::Id.is_in(bot_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|b| (b.id, b))
            .collect()
    };
    for pd in rows {
        let Some(bot) = bots.get(&pd.chatbot_id) else {
            continue;
        };
        out.entry(pd.participant_id).or_default().push(DataEntry {
            chatbot: bot.name.clone(),
            chatbot_id: bot.public_id,
            data: serde_json::from_str(&pd.data).unwrap_or_else(|_| json!({})),
            connect_channel_id: pd
                .system_metadata
                .get("commcare_connect_channel_id")
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| v.as_i64().map(|i| i.to_string()))
                }),
        });
    }
    Ok(out)
}

pub(super) fn detail(p: participant::Model, data: Vec<DataEntry>) -> Result<Detail> {
    Ok(Detail {
        id: p.public_id,
        identifier: p.identifier,
        name: p.name,
        platform: stored(&p.platform)?,
        remote_id: p.remote_id,
        data,
    })
}

/// A page of the team's participants, newest first.
pub async fn list(
    domain: &Domain,
    team_id: TeamId,
    filter: &Filter,
    req: &PageRequest,
) -> Result<Page<Detail>> {
    let db = &domain.db.read;
    let mut q = participant::Entity::find().filter(participant::Column::TeamId.eq(team_id));
    if let Some(i) = &filter.identifier {
        q = q.filter(participant::Column::Identifier.eq(i.clone()));
    }
    if let Some(p) = &filter.platform {
        q = q.filter(participant::Column::Platform.eq(*p));
    }
    let mut family = None;
    if let Some(c) = filter.chatbot {
        let row = chatbot::Entity::find()
            .filter(chatbot::Column::TeamId.eq(team_id))
            .filter(chatbot::Column::PublicId.eq(c))
            .one(db)
            .await?;
        let fid = row.map_or(-1, |r| r.working_version_id.unwrap_or(r.id));
        family = Some(fid);
        q = q.filter(
            participant::Column::Id.in_subquery(
                Query::select()
                    .column(participant_data::Column::ParticipantId)
                    .from(participant_data::Entity)
                    .and_where(Expr::col(participant_data::Column::ChatbotId).eq(fid))
                    .to_owned(),
            ),
        );
    }
    let listing = Listing::<participant::Entity> {
        kind: "participants",
        order: Order::Desc,
        created_at: participant::Column::CreatedAt,
        id: participant::Column::Id,
    };
    let page = pagination::paginate(db, &domain.cursors, &listing, q, req, |m| Position {
        created_at: m.created_at,
        id: m.id,
    })
    .await?;
    let ids: Vec<i64> = page.items.iter().map(|p| p.id).collect();
    let mut data = data_rows(db, &ids, family).await?;
    page.try_map(|p| {
        let d = data.remove(&p.id).unwrap_or_default();
        detail(p, d)
    })
}

/// One of the team's participants (by public id) with their data per
/// chatbot, and their row id.
pub async fn one(domain: &Domain, team_id: TeamId, id: Uuid) -> Result<(ParticipantId, Detail)> {
    let db = &domain.db.read;
    let p = participant::Entity::find()
        .filter(participant::Column::TeamId.eq(team_id))
        .filter(participant::Column::PublicId.eq(id))
        .one(db)
        .await?
        .ok_or_else(|| crate::Error::not_found("No Participant matches the given query."))?;
    let row = ParticipantId(p.id);
    let mut data = data_rows(db, &[p.id], None).await?;
    let d = data.remove(&p.id).unwrap_or_default();
    Ok((row, detail(p, d)?))
}
