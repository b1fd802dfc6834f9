//! File bytes live in an object store: a local directory under the data dir by
//! default, or any S3-compatible bucket (`--files-url s3://bucket/prefix`, with
//! the usual `AWS_*` variables for credentials, region and endpoint). Rows in
//! `files` are team-scoped; the bytes are streamed, never loaded whole.

pub mod uploads;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use store::entity::{file, session_file};

use crate::conn::{Reads, Writes, insert_new};
use crate::ids::TeamId;
use crate::{Error, Result};

pub const NOT_FOUND: &str = "Not found.";

#[derive(Clone)]
pub struct FileStore {
    inner: Arc<dyn ObjectStore>,
    describe: String,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileStore({})", self.describe)
    }
}

impl FileStore {
    /// `url`: `s3://bucket[/prefix]`, `file:///abs/dir`, or `None` for `<data_dir>/files`.
    pub fn open(url: Option<&str>, data_dir: &Path) -> Result<Self> {
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            None => {
                let dir = data_dir.join("files");
                Self::local(&dir)
            }
            Some(u) if u.starts_with("file://") => Self::local(Path::new(&u["file://".len()..])),
            Some(u) if u.starts_with("s3://") => {
                let rest = &u["s3://".len()..];
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                // One TLS stack (rustls on ring) for the whole process.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| Error::BadRequest(format!("files URL {u}: {e}")))?;
                let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
                };
                Ok(Self {
                    inner,
                    describe: u.to_string(),
                })
            }
            Some(u) => Err(Error::BadRequest(format!(
                "unsupported files URL {u}: use s3://bucket/prefix or file:///dir"
            ))),
        }
    }

    fn local(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| Error::internal(format!("file store: {e}")))?;
        Ok(Self {
            inner: Arc::new(fs),
            describe: dir.display().to_string(),
        })
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.inner
            .put(&StorePath::from(key), PutPayload::from(bytes))
            .await
            .map_err(|e| Error::internal(format!("storing a file: {e}")))?;
        Ok(())
    }

    /// The object's bytes as a stream, or `None` when it is missing.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<Option<BoxStream<'static, std::io::Result<Bytes>>>> {
        match self.inner.get(&StorePath::from(key)).await {
            Ok(r) => Ok(Some(r.into_stream().map_err(std::io::Error::other).boxed())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::internal(format!("reading a file: {e}"))),
        }
    }
}

/// An object being written piece by piece (uploads are never held whole in memory).
pub struct StreamingPut {
    writer: object_store::WriteMultipart,
    pub key: String,
    pub size: usize,
}

impl StreamingPut {
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .wait_for_capacity(4)
            .await
            .map_err(|e| Error::internal(format!("storing a file: {e}")))?;
        self.writer.write(bytes);
        self.size += bytes.len();
        Ok(())
    }

    pub async fn finish(self) -> Result<()> {
        self.writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| Error::internal(format!("storing a file: {e}")))
    }

    pub async fn abort(self) {
        let _ = self.writer.abort().await;
    }
}

impl FileStore {
    /// Starts writing a new object under a fresh key for a team's file.
    pub async fn begin(&self, team_id: TeamId, name: &str) -> Result<StreamingPut> {
        let key = new_key(team_id, name);
        let upload = self
            .inner
            .put_multipart(&StorePath::from(key.as_str()))
            .await
            .map_err(|e| Error::internal(format!("storing a file: {e}")))?;
        Ok(StreamingPut {
            writer: object_store::WriteMultipart::new(upload),
            key,
            size: 0,
        })
    }

    pub async fn delete(&self, key: &str) {
        let _ = self.inner.delete(&StorePath::from(key)).await;
    }
}

/// A generated key (team, random id, and the name's extension when it is a
/// short plain one): nothing a caller names reaches the store's paths, so
/// no name is too long or too strange to store.
fn new_key(team_id: TeamId, name: &str) -> String {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| (1..=10).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(|e| format!(".{}", e.to_ascii_lowercase()))
        .unwrap_or_default();
    format!("{team_id}/{}{ext}", uuid::Uuid::new_v4().simple())
}

/// The longest file name kept (the column's size); longer names keep their
/// first characters and their extension.
pub const MAX_NAME_CHARS: usize = 255;

fn display_name(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.to_string();
    }
    let ext: String = match name.rsplit_once('.') {
        Some((_, e)) if e.chars().count() <= 16 => format!(".{e}"),
        _ => String::new(),
    };
    let keep = MAX_NAME_CHARS - ext.chars().count() - 1;
    let head: String = name.chars().take(keep).collect();
    format!("{head}…{ext}")
}

/// Stores bytes under a new key of the team's and returns the key (the
/// file is recorded later, by [`record`], in the transaction that uses it).
pub async fn store_bytes(
    files: &FileStore,
    team_id: TeamId,
    name: &str,
    bytes: Bytes,
) -> Result<String> {
    let key = new_key(team_id, name);
    files.put(&key, bytes).await?;
    Ok(key)
}

/// Records a file whose bytes are already stored under `key`.
pub async fn record(
    db: &impl Writes,
    team_id: TeamId,
    name: &str,
    key: &str,
    content_type: &str,
    size: i64,
    purpose: &str,
) -> Result<StoredFile> {
    let db = db.writer();
    let m = file::ActiveModel {
        team_id: Set(team_id.0),
        name: Set(display_name(name)),
        storage_key: Set(Some(key.to_string())),
        content_type: Set(content_type.to_string()),
        size: Set(Some(size)),
        purpose: Set(purpose.to_string()),
        is_archived: Set(false),
        created_at: Set(store::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(StoredFile {
        id: m.id,
        name: m.name,
        content_type: m.content_type,
        size: m.size,
    })
}

#[derive(Debug, Clone)]
pub struct StoredFile {
    pub id: i64,
    pub name: String,
    pub content_type: String,
    pub size: Option<i64>,
}

/// Stores bytes and records the file for a team.
pub async fn create(
    db: &impl Reads,
    files: &FileStore,
    team_id: TeamId,
    name: &str,
    content_type: &str,
    purpose: &str,
    bytes: Bytes,
) -> Result<StoredFile> {
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    let key = store_bytes(files, team_id, name, bytes).await?;
    record(
        db.reader(),
        team_id,
        name,
        &key,
        content_type,
        size,
        purpose,
    )
    .await
}

/// Links a file to a session's chat (so transcripts may show it); linking
/// twice is a no-op.
pub async fn attach_to_session(
    db: &impl Writes,
    session_id: i64,
    file_id: i64,
    tool_type: &str,
) -> Result<()> {
    let db = db.writer();
    insert_new(
        db,
        session_file::Entity,
        [
            (session_file::Column::SessionId, session_id.into()),
            (session_file::Column::FileId, file_id.into()),
            (session_file::Column::ToolType, tool_type.into()),
            (session_file::Column::CreatedAt, store::now().into()),
        ],
        [
            session_file::Column::SessionId,
            session_file::Column::FileId,
            session_file::Column::ToolType,
        ],
    )
    .await?;
    Ok(())
}

/// A team's live file with its bytes; another team's, archived or
/// content-less files and missing objects are all "not found".
pub async fn open_for_download(
    db: &impl Reads,
    files: &FileStore,
    team_id: TeamId,
    id: i64,
) -> Result<(StoredFile, BoxStream<'static, std::io::Result<Bytes>>)> {
    let db = db.reader();
    let m = file::Entity::find_by_id(id)
        .filter(file::Column::TeamId.eq(team_id))
        .filter(file::Column::IsArchived.eq(false))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(NOT_FOUND))?;
    let key = m
        .storage_key
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::not_found(NOT_FOUND))?;
    let stream = files
        .get(&key)
        .await?
        .ok_or_else(|| Error::not_found(NOT_FOUND))?;
    Ok((
        StoredFile {
            id: m.id,
            name: m.name,
            content_type: m.content_type,
            size: m.size,
        },
        stream,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_generated_and_names_bounded() {
        let long = format!("{}.png", "a".repeat(300));
        let k = new_key(TeamId(7), &long);
        assert!(
            k.starts_with("7/") && k.ends_with(".png") && k.len() < 50,
            "{k}"
        );
        assert!(!new_key(TeamId(7), "../../etc/passwd").contains(".."));
        assert!(
            !new_key(TeamId(7), "x.p/ng").contains('/')
                || new_key(TeamId(7), "x.p/ng").matches('/').count() == 1
        );
        let shown = display_name(&long);
        assert_eq!(shown.chars().count(), MAX_NAME_CHARS);
        assert!(shown.ends_with("….png"));
        assert_eq!(display_name("short.txt"), "short.txt");
        let wide = "é".repeat(400);
        assert_eq!(display_name(&wide).chars().count(), MAX_NAME_CHARS);
    }
}

/// Stores bytes as a file that is deleted with its link's end (what a
/// channel that takes media by URL is sent: a spoken reply on Twilio).
pub async fn create_shared(
    db: &impl Writes,
    files: &FileStore,
    team_id: TeamId,
    name: &str,
    content_type: &str,
    bytes: Bytes,
) -> Result<StoredFile> {
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    let key = store_bytes(files, team_id, name, bytes).await?;
    let f = record(
        db.writer(),
        team_id,
        name,
        &key,
        content_type,
        size,
        "message_media",
    )
    .await?;
    file::Entity::update_many()
        .col_expr(
            file::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(store::now() + SHARE_LIFETIME),
        )
        .filter(file::Column::Id.eq(f.id))
        .exec(db.writer())
        .await?;
    Ok(f)
}

/// How long a shared file link works.
pub const SHARE_LIFETIME: chrono::Duration = chrono::Duration::days(7);

/// A token for a file's public link (`/files/shared/{token}`): what a
/// participant on a channel that cannot carry the file itself is sent. It
/// names the team and file, and expires.
pub fn share_token(
    signer: &crate::pagination::CursorSigner,
    team_id: TeamId,
    file_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String> {
    let expires = (now + SHARE_LIFETIME).timestamp();
    signer.sign(&format!("file|{}|{file_id}|{expires}", team_id.0))
}

/// The (team, file) a share token names, while it has not expired.
pub fn shared(
    signer: &crate::pagination::CursorSigner,
    token: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(TeamId, i64)> {
    let text = signer.verify(token)?;
    let parts: Vec<&str> = text.split('|').collect();
    let ["file", team, file, expires] = parts.as_slice() else {
        return None;
    };
    let expires: i64 = expires.parse().ok()?;
    (now.timestamp() < expires).then_some(())?;
    Some((TeamId(team.parse().ok()?), file.parse().ok()?))
}

#[cfg(test)]
mod share_tests {
    use super::*;

    #[test]
    fn share_tokens_name_their_file_until_they_expire() {
        use base64::Engine as _;
        let signer = crate::pagination::CursorSigner::new(b"k");
        let now = chrono::Utc::now();
        let t = share_token(&signer, TeamId(3), 42, now).unwrap();
        assert_eq!(shared(&signer, &t, now), Some((TeamId(3), 42)));
        assert_eq!(shared(&signer, &t, now + SHARE_LIFETIME), None);
        assert_eq!(
            shared(&crate::pagination::CursorSigner::new(b"other"), &t, now),
            None
        );
        let (p, m) = t.split_once('.').unwrap();
        let forged = format!(
            "{}.{m}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("file|3|43|9999999999")
        );
        assert_eq!(shared(&signer, &forged, now), None);
        assert!(p.len() > 4);
    }
}
