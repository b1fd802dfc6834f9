//! The one mapping from a console failure to a page: every status a console
//! page answers with is chosen here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Error;
use minijinja::context;

#[derive(Debug)]
pub enum PageError {
    /// No sign-in: to the sign-in page, then back to `next`.
    SignedOut {
        next: String,
    },
    /// Signed in, but the role does not allow it.
    Forbidden,
    /// A form without the right CSRF token.
    Csrf,
    NotFound,
    /// Input the page cannot take (shown to the person).
    BadRequest(String),
    /// Too many failed sign-ins; try again in this many seconds.
    TooManyAttempts(u64),
    Internal(Error),
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(_) => PageError::NotFound,
            Error::PermissionDenied => PageError::Forbidden,
            Error::BadRequest(m) | Error::Conflict(m) => PageError::BadRequest(m),
            Error::Field { field, message } => PageError::BadRequest(format!("{field}: {message}")),
            e if e.is_internal() => PageError::Internal(e),
            e => PageError::BadRequest(e.to_string()),
        }
    }
}

impl PageError {
    fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            PageError::SignedOut { .. } => (StatusCode::SEE_OTHER, String::new()),
            PageError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Your role in this team does not allow this.".into(),
            ),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "The form expired or came from another site (CSRF check failed). Reload the page and try again.".into(),
            ),
            PageError::NotFound => (StatusCode::NOT_FOUND, "There is nothing here.".into()),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            PageError::TooManyAttempts(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed sign-ins. Try again in {} minutes.",
                    secs.div_ceil(60).max(1)
                ),
            ),
            PageError::Internal(e) => {
                // Logged once, here; the page only says that it failed.
                tracing::error!(cause = %e.chain(), "console: internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side.".into(),
                )
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let PageError::SignedOut { next } = &self {
            return redirect(&format!("/login/?next={}", encode(next)));
        }
        let (status, message) = self.status_and_message();
        let mut resp = error_page(status, &message);
        if let PageError::TooManyAttempts(secs) = self
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// The error page; plain text should even it fail to render.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    crate::templates::render(
        "error.html",
        context! { title => title, message => message, status => status.as_u16() },
    )
    .map(|html| (status, axum::response::Html(html)).into_response())
    .unwrap_or_else(|_| (status, message.to_string()).into_response())
}

/// A domain refusal the person can act on, as the message its form shows
/// (a 400 page); anything else is a failure of ours and stays an error.
pub fn refusal(e: Error) -> Result<String, PageError> {
    match e {
        Error::BadRequest(m) | Error::Conflict(m) => Ok(m),
        Error::Field { field, message } => Ok(format!("{field}: {message}")),
        other => Err(other.into()),
    }
}

/// A `303 See Other` to a path of ours.
pub fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Percent-encodes a path for a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
