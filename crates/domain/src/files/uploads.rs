//! Files participants upload in a chat session: staged for a day, attached
//! to a message when it names them, deleted (bytes and row) if nobody does.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::{Value, json};
use store::entity::file;

use crate::ids::SessionId;
use crate::sessions::Session;
use crate::{Domain, Error, Result};

pub const UPLOAD_PURPOSE: &str = "message_media";

/// Unattached uploads expire after a day.
pub const UPLOAD_TTL_HOURS: i64 = 24;

/// One upload whose bytes are already in the object store, validated.
#[derive(Debug, Clone)]
pub struct Staged {
    pub key: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
}

/// Records a batch of stored uploads for a session in one transaction; on
/// failure the stored objects are removed, so a batch lands whole or not at all.
pub async fn record_uploads(
    domain: &Domain,
    session: &Session,
    uploaded_by: &str,
    participant_name: &str,
    participant_remote_id: &str,
    uploads: Vec<Staged>,
) -> Result<Vec<super::StoredFile>> {
    let result = async {
        let tx = domain.begin().await?;
        let mut out = Vec::new();
        let expires = store::now() + chrono::Duration::hours(UPLOAD_TTL_HOURS);
        for u in &uploads {
            let f = super::record(
                &*tx,
                session.team_id,
                &u.name,
                &u.key,
                &u.content_type,
                u.size,
                UPLOAD_PURPOSE,
            )
            .await?;
            file::Entity::update_many()
                .col_expr(file::Column::ExpiresAt, Expr::value(expires))
                .col_expr(
                    file::Column::Metadata,
                    Expr::value(json!({
                        "session_id": session.external_id,
                        "uploaded_by": uploaded_by,
                        "participant_name": participant_name,
                        "participant_remote_id": participant_remote_id,
                    })),
                )
                .filter(file::Column::Id.eq(f.id))
                .exec(&*tx)
                .await?;
            out.push(f);
        }
        tx.commit().await?;
        Ok::<_, Error>(out)
    }
    .await;
    if result.is_err() {
        for u in &uploads {
            domain.files.delete(&u.key).await;
        }
    }
    result
}

/// How many expired uploads one sweep deletes (the rest wait for the next).
const SWEEP_BATCH: u64 = 500;

/// Deletes uploads nobody attached before they expired, row and bytes.
/// Each row goes first, still expired, so an upload attached meanwhile
/// (which clears its expiry) keeps its bytes; a sweep cut short between the
/// two leaves at most one object behind. Answers how many went.
pub async fn expire_uploads(domain: &Domain) -> Result<u64> {
    let expired = file::Entity::find()
        .filter(file::Column::ExpiresAt.lt(store::now()))
        .limit(SWEEP_BATCH)
        .all(&domain.db.read)
        .await?;
    let mut gone = 0;
    for f in expired {
        let res = file::Entity::delete_many()
            .filter(file::Column::Id.eq(f.id))
            .filter(file::Column::ExpiresAt.lt(store::now()))
            .exec(&domain.db.write)
            .await?;
        if res.rows_affected == 1 {
            if let Some(key) = &f.storage_key {
                domain.files.delete(key).await;
            }
            gone += 1;
        }
    }
    Ok(gone)
}

/// The session's unexpired uploads among `ids` (any other id is left out).
pub async fn uploads_of(domain: &Domain, session: &Session, ids: &[i64]) -> Result<Vec<i64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(file::Entity::find()
        .filter(file::Column::TeamId.eq(session.team_id))
        .filter(file::Column::Id.is_in(ids.iter().copied()))
        .filter(file::Column::Purpose.eq(UPLOAD_PURPOSE))
        .filter(file::Column::IsArchived.eq(false))
        .all(&domain.db.write)
        .await?
        .into_iter()
        .filter(|f| {
            f.metadata
                .as_ref()
                .and_then(|md| md.get("session_id"))
                .and_then(Value::as_str)
                == Some(session.external_id.as_str())
        })
        .map(|f| f.id)
        .collect())
}

/// Attaches an upload to its session for good: it no longer expires.
pub async fn attach_upload(
    db: &sea_orm::DatabaseTransaction,
    session_id: SessionId,
    file_id: i64,
) -> Result<()> {
    super::attach_to_session(db, session_id.0, file_id, "ocs_attachments").await?;
    file::Entity::update_many()
        .col_expr(
            file::Column::ExpiresAt,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .filter(file::Column::Id.eq(file_id))
        .exec(db)
        .await?;
    Ok(())
}
