//! Pages as responses: a template rendered with its context and a status;
//! a template that fails is an internal error, logged once.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Value;

use crate::error::PageError;
use crate::templates;

/// Renders a page with a status.
pub fn page_with(status: StatusCode, name: &str, ctx: Value) -> Result<Response, PageError> {
    let html = templates::render(name, ctx).map_err(|e| {
        PageError::Internal(domain::Error::internal(format!("rendering {name}: {e:#}")))
    })?;
    Ok((status, Html(html)).into_response())
}

pub fn page(name: &str, ctx: Value) -> Result<Response, PageError> {
    page_with(StatusCode::OK, name, ctx)
}
