//! CSV exports, streamed a page at a time so that any number of rows leaves
//! memory flat: the messages of the filtered sessions, and participants'
//! data (one row per participant and chatbot, the data as JSON).
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
    Ok(attachment("messages.csv", stream_of(rx)))
}

fn attachment(name: &str, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

fn participant_lines(page: &[domain::participants::listing::Detail]) -> String {
    let mut out = String::new();
    for p in page {
        if p.data.is_empty() {
            out.push_str(&line(&[
                &p.identifier,
                &p.name,
                p.platform.as_str(),
                "",
                "{}",
            ]));
        }
        for d in &p.data {
            let json = d.data.to_string();
            out.push_str(&line(&[
                &p.identifier,
                &p.name,
                p.platform.as_str(),
                &d.chatbot,
                &json,
            ]));
        }
    }
    out
}

/// `GET /a/{team}/participants/export.csv`: every participant (the list's
/// filters), their data per chatbot.
pub async fn participants(
    State(state): State<AppState>,
    m: Member,
    Query(q): Query<crate::participants::ListQuery>,
) -> Result<Response, PageError> {
    m.require(Permission::Read)?;
    let filter = crate::participants::filter_of(&q)?;
    let page_of = |cursor: Option<String>| domain::pagination::PageRequest {
        cursor: Some(cursor.unwrap_or_default()),
        page_size: Some("500".into()),
    };
    let first =
        domain::participants::listing::list(&state.domain, m.team.id, &filter, &page_of(None))
            .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    let team = m.team.id;
    tokio::spawn(async move {
        let mut chunk = line(&["identifier", "name", "channel", "chatbot", "data"]);
        chunk.push_str(&participant_lines(&first.items));
        if tx.send(chunk).await.is_err() {
            return;
        }
        let mut cursor = first.next;
        while let Some(c) = cursor.take() {
            match domain::participants::listing::list(
                &state.domain,
                team,
                &filter,
                &page_of(Some(c)),
            )
            .await
            {
                Ok(page) => {
                    if tx.send(participant_lines(&page.items)).await.is_err() {
                        return;
                    }
                    cursor = page.next;
                }
                Err(e) => {
                    tracing::error!(cause = %e.chain(), "console: participant export failed mid-way");
                    return;
                }
            }
        }
    });
    Ok(attachment("participants.csv", stream_of(rx)))
}

fn stream_of(rx: tokio::sync::mpsc::Receiver<String>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|s| (Ok::<_, Infallible>(s), rx))
    }))
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
