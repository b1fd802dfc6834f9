//! The stylesheet, compiled in (no build step, no CDN).

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("../static/console.css");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}
