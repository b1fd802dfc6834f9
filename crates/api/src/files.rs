//! `GET /api/files/{id}/content`: a team's file, streamed.
//!
//! Decisions: errors are JSON `{"detail": …}` like every other endpoint (the
//! original's raw renderer answers the bare bytes `detail`), and a client that
//! only accepts JSON gets 406, as the original does.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::Auth;
use crate::error::detail;
use crate::routes::Routes;
use crate::{ApiError, AppState};

pub fn router() -> Routes {
    Routes::new().route("/api/files/{id}/content", get(content))
}

/// `GET /files/shared/{token}`: a file by the expiring link a participant
/// was sent (on a channel that cannot carry the file itself). Public: the
/// signed token is the credential; a bad or expired one is 404.
pub fn shared_router() -> Routes {
    Routes::new().route("/files/shared/{token}", get(shared))
}

async fn shared(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((team, id)) = domain::files::shared(&state.domain.cursors, &token, chrono::Utc::now())
    else {
        return crate::routing::not_found().await;
    };
    match domain::files::open_for_download(&state.domain, &state.domain.files, team, id).await {
        Ok((file, stream)) => file_response(&file, stream),
        Err(e) => ApiError::Domain(e).into_response(),
    }
}

fn accepts_bytes(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or("").trim();
        matches!(
            media,
            "" | "*/*" | "application/*" | "application/octet-stream"
        )
    })
}

fn disposition(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !base.contains('"') {
        format!("attachment; filename=\"{base}\"")
    } else {
        let encoded: String = base
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("attachment; filename*=utf-8''{encoded}")
    }
}

/// Download File Content
#[utoipa::path(
    get,
    path = "/api/files/{id}/content",
    operation_id = "file_content",
    tag = "Files",
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>)),
    security(("OAuth2" = ["files:read"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn content(
    State(state): State<AppState>,
    Auth(auth): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !accepts_bytes(&headers) {
        return detail(
            StatusCode::NOT_ACCEPTABLE,
            "Could not satisfy the request Accept header.",
        );
    }
    let Ok(id) = id.parse::<i64>() else {
        return crate::routing::not_found().await;
    };
    let (file, stream) = match domain::files::open_for_download(
        &state.domain,
        &state.domain.files,
        auth.team_id,
        id,
    )
    .await
    {
        Ok(x) => x,
        Err(e) => return ApiError::Domain(e).into_response(),
    };
    file_response(&file, stream)
}

fn file_response(
    file: &domain::files::StoredFile,
    stream: futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
) -> Response {
    let mime = mime_guess::from_path(&file.name).first_or_octet_stream();
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&disposition(&file.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(size) = file.size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    // A file is shown as its declared type and never runs as a page:
    // markup uploaded under an image's name stays inert.
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition() {
        assert_eq!(
            disposition("report.pdf"),
            "attachment; filename=\"report.pdf\""
        );
        assert_eq!(
            disposition("résumé.txt"),
            "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt"
        );
    }
}
