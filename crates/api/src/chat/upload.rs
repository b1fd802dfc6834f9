//! `POST /api/chat/{session}/upload/`: files streamed to the object store,
//! checked by name and by content, recorded for the session as a batch.

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::files::uploads::{self, Staged};
use domain::sessions::SessionStatus;
use domain::sessions::access::Use;
use serde_json::json;
use utoipa::ToSchema;

use super::{PeerAddr, client_ip, error, header_str, on_session};
use crate::{ApiError, AppState};

pub const MAX_UPLOAD: usize = 50 * 1024 * 1024;
/// Room for the 50 MB limit to be crossed and reported as such.
pub(super) const UPLOAD_BODY_LIMIT: usize = 2 * MAX_UPLOAD + 1024 * 1024;

const ALLOWED_EXTENSIONS: &[&str] = &[
    ".txt", ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".csv", ".jpg", ".jpeg", ".png", ".gif",
    ".webp", ".mp4", ".mov", ".avi", ".mp3", ".wav", ".html", ".htm", ".css", ".js", ".xml", ".md",
    ".ics", ".vcf", ".rtf", ".tsv", ".yaml", ".yml", ".py", ".c",
];
const BLOCKED_IMAGES: &[&str] = &[".svg", ".svgz", ".bmp", ".tif", ".tiff"];
const ALLOWED_IMAGES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/heif",
];

fn extension(name: &str) -> String {
    match name.rfind('.') {
        Some(i) if i > 0 => name[i..].to_ascii_lowercase(),
        _ => String::new(),
    }
}

fn unsupported_image(name: &str) -> String {
    format!(
        "The image `{name}` is not a supported image type. Supported types: GIF, HEIC, HEIF, JPEG, PNG, WEBP."
    )
}

/// Signatures of formats that are never text, whatever a part claims.
const MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xce\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xca\xfe\xba\xbe", "application/x-mach-binary"),
    (b"\x00asm", "application/wasm"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"PK\x03\x04", "application/zip"),
];

/// The content type from the bytes, independent of the claimed type and the
/// name where the bytes tell: markup is looked into (an SVG or HTML document
/// behind a comment, a doctype or an XML prolog is still one), binary
/// formats by their signatures; else from the name; else octet-stream.
/// Office documents are zip files: their name's type is kept.
fn sniff(name: &str, bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(2048)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('<') {
        if t.contains("<svg") {
            return "image/svg+xml".into();
        }
        if ["<html", "<!doctype html", "<script", "<body", "<iframe"]
            .iter()
            .any(|m| t.contains(m))
        {
            return "text/html".into();
        }
    }
    let by_name = mime_guess::from_path(name)
        .first_or_octet_stream()
        .to_string();
    for (magic, mime) in MAGIC {
        if head.starts_with(magic) {
            if *mime == "application/zip" && by_name.starts_with("application/vnd.openxmlformats") {
                return by_name;
            }
            return (*mime).into();
        }
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return "image/webp".into();
    }
    by_name
}

/// Whether the first bytes read as text: UTF-8 (a character cut at the end
/// of the sample allowed), no NUL, and no binary signature.
fn looks_textual(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    valid && !head.contains(&0) && !MAGIC.iter().any(|(m, _)| head.starts_with(m))
}

#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = UploadedFile)]
pub struct UploadedView {
    pub id: i64,
    pub name: String,
    pub size: i64,
    pub content_type: String,
}

/// Upload files
#[utoipa::path(
    post,
    path = "/api/chat/{session_id}/upload/",
    operation_id = "chat_upload_file",
    tag = "Chat",
    params(("session_id" = String, Path)),
    request_body(content_type = "multipart/form-data", description = "`files` parts (50 MB each and in total)"),
    responses((status = 201, description = "the stored files")),
    security(("embedKeyAuth" = []), ("apiKeyAuth" = []))
)]
pub async fn upload(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    Path(session_id): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let content_type = header_str(&headers, "content-type")
        .unwrap_or("")
        .to_string();
    on_session(
        &state,
        &headers,
        (&session_id, Use::Write, peer),
        move |st, a| async move {
            let mut multipart = multipart.map_err(|_| {
                let ct = &content_type;
                ApiError::Detail(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("Unsupported media type \"{ct}\" in request."),
                )
            })?;
            if a.status == SessionStatus::Complete {
                return Err(error("Session has ended"));
            }
            let channel_bucket = match a.session.channel_id {
                Some(c) => format!("upload-channel:{}", c.0),
                None => format!("upload-team:{}", a.session.team_id.0),
            };
            let client_bucket = format!("upload-client:{}", client_ip(peer));
            if let Some(refusal) = st.upload_quota.exhausted(&channel_bucket, &client_bucket) {
                return Ok(refusal);
            }
            let (mut staged, mut name_field, mut remote_field) =
                (Vec::<Staged>::new(), String::new(), String::new());
            let mut total = 0usize;
            let mut first_error: Option<String> = None;
            let outcome: Result<(), ApiError> = async {
                while let Some(mut field) = multipart
                    .next_field()
                    .await
                    .map_err(|e| error(&format!("Malformed upload: {e}")))?
                {
                    match field.name().unwrap_or("") {
                        "files" => {
                            let name = field.file_name().unwrap_or("upload").to_string();
                            if name.contains('\0') {
                                return Err(crate::nul::field_error("files"));
                            }
                            let claimed = field
                                .content_type()
                                .unwrap_or("application/octet-stream")
                                .to_string();
                            // Bytes go to the store as they arrive; the first 2 KB are kept to sniff the type.
                            let mut put = st.domain.files.begin(a.session.team_id, &name).await?;
                            let mut head = Vec::new();
                            let mut too_big = false;
                            while let Some(chunk) = field
                                .chunk()
                                .await
                                .map_err(|e| error(&format!("Malformed upload: {e}")))?
                            {
                                if put.size + chunk.len() > MAX_UPLOAD {
                                    too_big = true;
                                    break;
                                }
                                if head.len() < 2048 {
                                    head.extend_from_slice(
                                        &chunk[..chunk.len().min(2048 - head.len())],
                                    );
                                }
                                put.write(&chunk).await?;
                            }
                            let size = put.size;
                            let ext = extension(&name);
                            let sniffed = sniff(&name, &head);
                            let problem = if too_big {
                                Some(format!("File '{name}' exceeds maximum size of 50MB"))
                            } else if BLOCKED_IMAGES.contains(&ext.as_str()) {
                                Some(unsupported_image(&name))
                            } else if !(ALLOWED_EXTENSIONS.contains(&ext.as_str())
                                || claimed.starts_with("text/") && looks_textual(&head))
                            {
                                Some(format!(
                                    "File type '{ext}' is not supported. Allowed types: {}",
                                    ALLOWED_EXTENSIONS.join(", ")
                                ))
                            } else if sniffed.starts_with("image/")
                                && !ALLOWED_IMAGES.contains(&sniffed.as_str())
                            {
                                Some(unsupported_image(&name))
                            } else {
                                None
                            };
                            total += size;
                            let key = put.key.clone();
                            if problem.is_none() && first_error.is_none() {
                                put.finish().await?;
                                staged.push(Staged {
                                    key,
                                    name,
                                    content_type: sniffed,
                                    size: i64::try_from(size).unwrap_or(i64::MAX),
                                });
                            } else {
                                put.abort().await;
                                if first_error.is_none() {
                                    first_error = problem;
                                }
                            }
                            if too_big || total > MAX_UPLOAD {
                                break;
                            }
                        }
                        "participant_name" => name_field = field.text().await.unwrap_or_default(),
                        "participant_remote_id" => {
                            remote_field = field.text().await.unwrap_or_default()
                        }
                        _ => {}
                    }
                }
                if let Some(e) = &first_error {
                    return Err(error(e));
                }
                if name_field.contains('\0') || remote_field.contains('\0') {
                    let field = if name_field.contains('\0') {
                        "participant_name"
                    } else {
                        "participant_remote_id"
                    };
                    return Err(crate::nul::field_error(field));
                }
                if total > MAX_UPLOAD {
                    return Err(error("Total file size exceeds maximum of 50MB"));
                }
                if staged.is_empty() {
                    return Err(error("No files provided"));
                }
                Ok(())
            }
            .await;
            if let Err(e) = outcome {
                // Nothing of a refused batch stays in the store.
                for s in &staged {
                    st.domain.files.delete(&s.key).await;
                }
                return Err(e);
            }
            let uploaded_by = if !a.participant_identifier.is_empty() {
                a.participant_identifier.clone()
            } else if !remote_field.is_empty() {
                remote_field.clone()
            } else {
                "unknown".into()
            };
            let stored = uploads::record_uploads(
                &st.domain,
                &a.session,
                &uploaded_by,
                &name_field,
                &remote_field,
                staged,
            )
            .await?;
            st.upload_quota.spend(
                &channel_bucket,
                &client_bucket,
                u64::try_from(total).unwrap_or(u64::MAX),
            );
            let files: Vec<UploadedView> = stored
                .into_iter()
                .map(|f| UploadedView {
                    id: f.id,
                    name: f.name,
                    size: f.size.unwrap_or(0),
                    content_type: f.content_type,
                })
                .collect();
            Ok((StatusCode::CREATED, Json(json!({ "files": files }))).into_response())
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_what_matters() {
        assert_eq!(
            sniff(
                "photo.jpg",
                b"<?xml version=\"1.0\"?><svg xmlns=\"x\"></svg>"
            ),
            "image/svg+xml"
        );
        assert_eq!(sniff("a.png", b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(sniff("notes.txt", b"hello"), "text/plain");
        assert_eq!(sniff("x.bin", b"\x00\x01"), "application/octet-stream");
        // Found by an attack: markup behind a comment, and binaries claiming to be text.
        assert_eq!(
            sniff("cat.png", b"<!-- x --><svg onload=alert(1)></svg>"),
            "image/svg+xml"
        );
        assert_eq!(
            sniff("page.png", b"<!-- hi -->\n<HTML><script>x</script>"),
            "text/html"
        );
        assert_eq!(
            sniff("evil.txt", b"MZ\x90\x00\x03"),
            "application/x-msdownload"
        );
        assert!(!looks_textual(b"MZ\x90\x00\x03"));
        assert!(!looks_textual(b"\x7fELF\x02\x01"));
        assert!(looks_textual("caf\u{e9} notes".as_bytes()));
        assert!(
            looks_textual(&"é".as_bytes()[..1]),
            "a character cut by the sample"
        );
        assert_eq!(
            sniff("report.docx", b"PK\x03\x04rest"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(extension("A.TXT"), ".txt");
        assert_eq!(extension("noext"), "");
    }
}
