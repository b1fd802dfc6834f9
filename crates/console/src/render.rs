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

/// The links of a list's page (newer, older, its CSV) keeping its filters
/// (`keep`, a query string), and the count on the first page.
pub fn pager<T>(keep: &str, page: &domain::pagination::Page<T>) -> Value {
    let link = |c: &Option<String>| {
        c.as_ref()
            .map(|c| format!("?{keep}&cursor={}", crate::error::encode(c)))
    };
    minijinja::context! {
        next => link(&page.next),
        previous => link(&page.previous),
        count => page.count,
        count_capped => page.count_capped,
        export => format!("export.csv?{keep}"),
    }
}

/// A list's page request: the cursor given, 50 rows.
pub fn page_of(cursor: &Option<String>) -> domain::pagination::PageRequest {
    domain::pagination::PageRequest {
        cursor: cursor.clone(),
        page_size: Some("50".into()),
    }
}
