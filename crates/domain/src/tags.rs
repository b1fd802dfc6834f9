//! Tags on sessions and messages. User tags (`is_system = false`, category
//! `""`) are created on demand by the API; system tags (version tags on
//! replies…) only by the platform, and the API never removes them.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
};
use store::entity::{message_tag, session_tag, tag};

use crate::conn::{Reads, Writes, insert_new};
use crate::ids::TeamId;
use crate::{Error, Result};

pub const VERSION_CATEGORY: &str = "experiment_version";
/// Tags a pipeline puts on its reply (output tags, chosen routes).
pub const BOT_RESPONSE_CATEGORY: &str = "bot_response";
pub const MAX_NAME_LEN: usize = 100;

/// Finds or creates a tag; race-safe through the unique key.
pub async fn ensure(
    db: &impl Writes,
    team_id: TeamId,
    name: &str,
    is_system: bool,
    category: &str,
    created_by: Option<i64>,
) -> Result<i64> {
    let db = db.writer();
    if name.chars().count() > MAX_NAME_LEN {
        return Err(Error::BadRequest(format!(
            "tag names are at most {MAX_NAME_LEN} characters"
        )));
    }
    let find = || {
        tag::Entity::find()
            .filter(tag::Column::TeamId.eq(team_id))
            .filter(tag::Column::Name.eq(name))
            .filter(tag::Column::IsSystem.eq(is_system))
            .filter(tag::Column::Category.eq(category))
    };
    if let Some(t) = find().one(db).await? {
        return Ok(t.id);
    }
    insert_new(
        db,
        tag::Entity,
        [
            (tag::Column::TeamId, team_id.0.into()),
            (tag::Column::Name, name.into()),
            (tag::Column::IsSystem, is_system.into()),
            (tag::Column::Category, category.into()),
            (tag::Column::CreatedBy, created_by.into()),
            (tag::Column::CreatedAt, store::now().into()),
        ],
        [
            tag::Column::TeamId,
            tag::Column::Name,
            tag::Column::IsSystem,
            tag::Column::Category,
        ],
    )
    .await?;
    find()
        .one(db)
        .await?
        .map(|t| t.id)
        .ok_or_else(|| Error::internal("tag vanished after a conflict"))
}

/// Attaches user tags to a session (idempotent).
pub async fn add_to_session(
    db: &impl Writes,
    team_id: TeamId,
    session_id: i64,
    names: &[String],
    user_id: Option<i64>,
) -> Result<()> {
    let db = db.writer();
    for name in names {
        let tag_id = ensure(db, team_id, name, false, "", user_id).await?;
        insert_new(
            db,
            session_tag::Entity,
            [
                (session_tag::Column::TeamId, team_id.into()),
                (session_tag::Column::SessionId, session_id.into()),
                (session_tag::Column::TagId, tag_id.into()),
                (session_tag::Column::UserId, user_id.into()),
                (session_tag::Column::CreatedAt, store::now().into()),
            ],
            [session_tag::Column::SessionId, session_tag::Column::TagId],
        )
        .await?;
    }
    Ok(())
}

/// Detaches the team's non-system tags with these names from a session.
pub async fn remove_from_session(
    db: &impl Writes,
    team_id: TeamId,
    session_id: i64,
    names: &[String],
) -> Result<()> {
    let db = db.writer();
    let ids: Vec<i64> = tag::Entity::find()
        .select_only()
        .column(tag::Column::Id)
        .filter(tag::Column::TeamId.eq(team_id))
        .filter(tag::Column::IsSystem.eq(false))
        .filter(tag::Column::Name.is_in(names.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(());
    }
    session_tag::Entity::delete_many()
        .filter(session_tag::Column::SessionId.eq(session_id))
        .filter(session_tag::Column::TagId.is_in(ids))
        .exec(db)
        .await?;
    Ok(())
}

/// Tag names per session, each list sorted by name: one query for any number of sessions.
pub async fn session_tag_names(
    db: &impl Reads,
    session_ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>> {
    names_by::<session_tag::Entity>(
        db,
        session_tag::Column::SessionId,
        session_tag::Column::TagId,
        session_ids,
    )
    .await
}

/// Tag names per message, sorted: one query for a whole transcript.
pub async fn message_tag_names(
    db: &impl Reads,
    message_ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>> {
    names_by::<message_tag::Entity>(
        db,
        message_tag::Column::MessageId,
        message_tag::Column::TagId,
        message_ids,
    )
    .await
}

/// Tag names per owner through a link table (`owner`, `tag_id`).
async fn names_by<E: EntityTrait>(
    db: &impl Reads,
    owner: E::Column,
    tag_id: E::Column,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(i64, String)> = E::find()
        .select_only()
        .column(owner)
        .column_as(Expr::col((tag::Entity, tag::Column::Name)), "name")
        .join(
            sea_orm::JoinType::InnerJoin,
            E::belongs_to(tag::Entity)
                .from(tag_id)
                .to(tag::Column::Id)
                .into(),
        )
        .filter(owner.is_in(ids.iter().copied()))
        .order_by_asc(Expr::col((tag::Entity, tag::Column::Name)))
        .into_tuple()
        .all(db.reader())
        .await?;
    for (id, name) in rows {
        out.entry(id).or_default().push(name);
    }
    Ok(out)
}

/// Tags a message with a system tag (e.g. its version tag).
pub async fn tag_message(
    db: &impl Writes,
    team_id: TeamId,
    message_id: i64,
    name: &str,
    category: &str,
) -> Result<()> {
    let db = db.writer();
    // The tag usually exists (a version tag is on every reply of the
    // version): one statement then, the tag's id read in the insert.
    let existing = Query::select()
        .expr(Expr::val(team_id.0))
        .expr(Expr::val(message_id))
        .column(tag::Column::Id)
        .expr(Expr::val(store::now()))
        .from(tag::Entity)
        .and_where(tag::Column::TeamId.eq(team_id))
        .and_where(tag::Column::Name.eq(name))
        .and_where(tag::Column::IsSystem.eq(true))
        .and_where(tag::Column::Category.eq(category))
        .to_owned();
    let insert = Query::insert()
        .into_table(message_tag::Entity)
        .columns([
            message_tag::Column::TeamId,
            message_tag::Column::MessageId,
            message_tag::Column::TagId,
            message_tag::Column::CreatedAt,
        ])
        .select_from(existing)
        .map_err(|e| Error::internal(format!("message tag: {e}")))?
        .on_conflict(
            OnConflict::columns([message_tag::Column::MessageId, message_tag::Column::TagId])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    if db.execute(&insert).await?.rows_affected() == 1 {
        return Ok(());
    }
    let tag_id = ensure(db, team_id, name, true, category, None).await?;
    insert_new(
        db,
        message_tag::Entity,
        [
            (message_tag::Column::TeamId, team_id.into()),
            (message_tag::Column::MessageId, message_id.into()),
            (message_tag::Column::TagId, tag_id.into()),
            (message_tag::Column::CreatedAt, store::now().into()),
        ],
        [message_tag::Column::MessageId, message_tag::Column::TagId],
    )
    .await?;
    Ok(())
}

/// The team's tags named one of `names` (of any category).
pub async fn ids_named(
    db: &impl sea_orm::ConnectionTrait,
    team_id: TeamId,
    names: &[String],
) -> Result<Vec<i64>> {
    Ok(tag::Entity::find()
        .select_only()
        .column(tag::Column::Id)
        .filter(tag::Column::TeamId.eq(team_id))
        .filter(tag::Column::Name.is_in(names.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?)
}

/// The condition "the session carries one of the tags `ids`", as a
/// subquery. Ids, not names joined to `tags`: PostgreSQL then reads how many
/// sessions carry them from its statistics of `session_tags.tag_id` (a join
/// through the names it estimates as a few dozen for any tag, and so looked
/// up every session of a tag carried by thousands to sort them, where
/// walking the list until a page is full costs a fraction of that).
pub fn sessions_with_tag_ids(team_id: TeamId, ids: &[i64]) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column((session_tag::Entity, session_tag::Column::SessionId))
        .from(session_tag::Entity)
        .and_where(Expr::col((session_tag::Entity, session_tag::Column::TeamId)).eq(team_id))
        .and_where(
            Expr::col((session_tag::Entity, session_tag::Column::TagId)).is_in(ids.iter().copied()),
        )
        .to_owned()
}

/// Sessions with a message carrying one of these version tags, as a subquery.
pub fn sessions_with_version_tags(
    team_id: TeamId,
    names: &[String],
) -> sea_orm::sea_query::SelectStatement {
    use store::entity::message;
    Query::select()
        .column((message::Entity, message::Column::SessionId))
        .from(message_tag::Entity)
        .inner_join(
            tag::Entity,
            Expr::col((tag::Entity, tag::Column::Id))
                .equals((message_tag::Entity, message_tag::Column::TagId)),
        )
        .inner_join(
            message::Entity,
            Expr::col((message::Entity, message::Column::Id))
                .equals((message_tag::Entity, message_tag::Column::MessageId)),
        )
        .and_where(Expr::col((tag::Entity, tag::Column::TeamId)).eq(team_id))
        .and_where(Expr::col((tag::Entity, tag::Column::Category)).eq(VERSION_CATEGORY))
        .and_where(Expr::col((tag::Entity, tag::Column::Name)).is_in(names.iter().cloned()))
        .to_owned()
}
