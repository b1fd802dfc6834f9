//! CSV exports, streamed a page at a time so that any number of sessions
//! leaves memory flat: the messages of the filtered sessions.
//!
//! Cells that a spreadsheet would run as a formula (starting with `=`, `+`,
//! `-`, `@`, tab or carriage return) are prefixed with `'`: participants write
//! these texts, and an export opened in a spreadsheet must not execute them
//! (OWASP's CSV injection advice).

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use domain::messages::export;
use domain::teams::Permission;

use api::AppState;

use crate::error::PageError;
use crate::member::Member;
use crate::sessions::{ListQuery, filter_of};

/// One CSV cell, quoted when needed and defused for spreadsheets.
pub fn cell(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn line(cells: &[&str]) -> String {
    let mut s = cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    s.push_str("\r\n");
    s
}

pub const MESSAGE_COLUMNS: &[&str] = &[
    "session_id",
    "chatbot",
    "participant",
    "channel",
    "session_status",
    "session_tags",
    "message_at",
    "role",
    "content",
    "message_tags",
];

fn row_line(r: &export::Row) -> String {
    let at = r
        .created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    line(&[
        &r.session,
        &r.chatbot,
        &r.participant,
        &r.platform,
        &r.session_status,
        &r.session_tags.join("; "),
        &at,
        &r.role,
        &r.content,
        &r.message_tags.join("; "),
    ])
}

/// `GET /a/{team}/sessions/export.csv`: the list's filters, every page.
pub async fn messages(
    State(state): State<AppState>,
    m: Member,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    m.require(Permission::Read)?;
    let filter = filter_of(&q)?;
    // The first page is read before answering, so a failure is a clean error page.
    let (first, mut cursor) = export::page(&state.domain, m.team.id, &filter, None).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    let team = m.team.id;
    tokio::spawn(async move {
        let mut chunk = line(MESSAGE_COLUMNS);
        chunk.extend(first.iter().map(row_line));
        if tx.send(chunk).await.is_err() {
            return;
        }
        while let Some(c) = cursor.take() {
            match export::page(&state.domain, team, &filter, Some(c)).await {
                Ok((rows, next)) => {
                    let chunk: String = rows.iter().map(row_line).collect();
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                    cursor = next;
                }
                Err(e) => {
                    // Headers are sent: the truncated file ends here, and the log says why.
                    tracing::error!(cause = %e.chain(), "console: CSV export failed mid-way");
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|s| (Ok::<_, Infallible>(s), rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"messages.csv\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-"), "'-");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell(""), "");
        assert_eq!(line(&["a", "b,c"]), "a,\"b,c\"\r\n");
    }
}
