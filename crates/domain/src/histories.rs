//! Pipeline histories: the conversation a node with `history: {type: node}`
//! keeps of its own exchanges, or one shared by every node naming it
//! (`type: named`). Stored per session like messages, with the same summary
//! checkpoints, so the three history modes read them the same way.

use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set};
use store::entity::pipeline_history_message as row;

use crate::Result;
use crate::conn::{Reads, Writes};
use crate::ids::SessionId;
use crate::messages::{MessageRole, StoredMessage, checkpoint_window};

/// One exchange a node adds to a pipeline history, written with its turn.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryWrite {
    /// `node:<id>` or `named:<name>` (see `pipeline::HistoryScope`).
    pub name: String,
    pub human: String,
    pub ai: String,
    /// A summary checkpoint: on this stored row, or on the new human row (`None`).
    pub checkpoint: Option<(Option<i64>, String)>,
}

/// The newest `limit` messages of a history, from its latest checkpoint on.
pub async fn load(
    db: &impl Reads,
    session_id: SessionId,
    name: &str,
    limit: u64,
) -> Result<Vec<StoredMessage>> {
    let scope = Condition::all()
        .add(row::Column::SessionId.eq(session_id))
        .add(row::Column::HistoryName.eq(name));
    let rows = checkpoint_window::<row::Entity, _>(
        db.reader(),
        scope,
        (row::Column::Id, row::Column::Summary),
        &[row::Column::Id],
        limit,
    )
    .await?;
    rows.into_iter()
        .map(|m| StoredMessage::read(m.id, &m.role, m.content, m.summary, m.created_at))
        .collect()
}

/// Appends an exchange (inside the turn's transaction).
pub async fn append(db: &impl Writes, session_id: SessionId, w: &HistoryWrite) -> Result<()> {
    let db = db.writer();
    let now = store::now();
    let (on_row, on_new) = match &w.checkpoint {
        Some((Some(id), s)) => (Some((*id, s.clone())), None),
        Some((None, s)) => (None, Some(s.clone())),
        None => (None, None),
    };
    if let Some((id, summary)) = on_row {
        row::Entity::update_many()
            .col_expr(
                row::Column::Summary,
                sea_orm::sea_query::Expr::value(summary),
            )
            .filter(row::Column::Id.eq(id))
            .filter(row::Column::SessionId.eq(session_id))
            .exec(db)
            .await?;
    }
    for (role, content, summary) in [
        (MessageRole::Human, &w.human, on_new),
        (MessageRole::Ai, &w.ai, None),
    ] {
        row::ActiveModel {
            session_id: Set(session_id.0),
            history_name: Set(w.name.clone()),
            role: Set(role.as_str().into()),
            content: Set(content.clone()),
            summary: Set(summary),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(())
}
