//! `/api/participants` (with or without the trailing slash): list with
//! filters, and upsert with per-chatbot data and schedules in one transaction.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use domain::channels::Platform;
use domain::participants::{self, Detail, Filter, ScheduleInput, Upsert, UpsertItem};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::body::JsonObject;
use crate::error::Result;
use crate::input::{FieldErrors, NOT_UUID, Null, Reader, Text, not_a_choice};
use crate::pagination::{Paginated, envelope, page_request};
use crate::routes::Routes;
use crate::url::BaseUrl;
use crate::views::{query_pairs, query_param};
use crate::{ApiError, AppState};

pub fn router() -> Routes {
    Routes::new()
        .route("/api/participants", get(list).post(upsert))
        .route("/api/participants/", get(list).post(upsert))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ParticipantDataEntry)]
pub struct DataEntryView {
    pub chatbot: String,
    pub chatbot_id: uuid::Uuid,
    #[schema(value_type = Object)]
    pub data: Value,
    pub connect_channel_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ParticipantDetail)]
pub struct ParticipantDetailView {
    pub id: uuid::Uuid,
    pub identifier: String,
    pub name: String,
    pub platform: String,
    pub remote_id: String,
    pub data: Vec<DataEntryView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PaginatedParticipantDetailList)]
pub struct PaginatedParticipantsDoc {
    next: Option<String>,
    previous: Option<String>,
    results: Vec<ParticipantDetailView>,
    count: Option<u64>,
}

// The body of `POST /api/participants`.
#[derive(Debug, ToSchema)]
#[schema(as = ParticipantDataUpdateRequest)]
pub struct UpsertRequest {
    pub identifier: String,
    pub name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub platform: Platform,
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<UpsertItem>,
}

fn view(d: Detail) -> ParticipantDetailView {
    ParticipantDetailView {
        id: d.id,
        identifier: d.identifier,
        name: d.name,
        platform: d.platform.to_string(),
        remote_id: d.remote_id,
        data: d
            .data
            .into_iter()
            .map(|e| DataEntryView {
                chatbot: e.chatbot,
                chatbot_id: e.chatbot_id,
                data: e.data,
                connect_channel_id: e.connect_channel_id,
            })
            .collect(),
    }
}

/// List Participants
#[utoipa::path(
    get,
    path = "/api/participants",
    operation_id = "list_participants",
    tag = "Participants",
    params(
        ("cursor" = Option<String>, Query, description = "The pagination cursor value."),
        ("page_size" = Option<i64>, Query, description = "Number of results to return per page."),
        ("chatbot" = Option<String>, Query, description = "Only participants with data for this chatbot (UUID)."),
        ("identifier" = Option<String>, Query, description = "Exact identifier."),
        ("platform" = Option<String>, Query, description = "Exact platform."),
    ),
    responses((status = 200, body = PaginatedParticipantsDoc)),
    security(("OAuth2" = ["participants:read"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(auth): Auth,
    base: BaseUrl,
) -> Result<Json<Paginated<ParticipantDetailView>>> {
    let pairs = query_pairs(base.query.as_deref());
    // `chatbot` wins over the legacy `experiment` alias; errors name the one used.
    let (param, raw) = match query_param(&pairs, "chatbot").filter(|v| !v.is_empty()) {
        Some(v) => ("chatbot", Some(v)),
        None => (
            "experiment",
            query_param(&pairs, "experiment").filter(|v| !v.is_empty()),
        ),
    };
    let chatbot = match raw {
        None => None,
        Some(v) => Some(uuid::Uuid::parse_str(v.trim()).map_err(|_| {
            // This one error is a bare string, as the original answers it.
            ApiError::Fields(json!({ param: NOT_UUID }))
        })?),
    };
    let filter = Filter {
        identifier: query_param(&pairs, "identifier")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        platform: match query_param(&pairs, "platform").filter(|v| !v.is_empty()) {
            None => None,
            // No participant is on a platform we do not know: an empty page, as the original.
            Some(p) => match Platform::parse(p) {
                Some(p) => Some(p),
                None => {
                    return Ok(Json(envelope(
                        &base,
                        domain::pagination::Page::empty(),
                        view,
                    )));
                }
            },
        },
        chatbot,
    };
    let page = participants::list(
        &state.domain,
        auth.team_id,
        &filter,
        &page_request(base.query.as_deref()),
    )
    .await?;
    Ok(Json(envelope(&base, page, view)))
}

/// DRF-style datetime input: ISO 8601 with `T` or a space, an offset or `Z`
/// (naive values are UTC), or a bare date (midnight).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let spaced = s.replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&spaced) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&spaced, f) {
            return Some(t.and_utc());
        }
    }
    for f in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M%#z"] {
        if let Ok(t) = DateTime::parse_from_str(&spaced, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

const DATE_FORMAT_ERROR: &str = "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].";

/// One entry of an item's `schedules`, with the cross-field rules checked
/// once the fields themselves are valid.
fn read_schedule(r: &mut Reader<'_>) -> Option<ScheduleInput> {
    let text = Text::optional().allow_blank().raw();
    let id = r.text("id", text.max(32));
    let name = r.text("name", text);
    let prompt = r.text("prompt", text);
    let date = match r.get("date") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => match parse_datetime(s) {
            Some(d) => Some(d),
            None => r.fail("date", DATE_FORMAT_ERROR),
        },
        Some(_) => r.fail("date", DATE_FORMAT_ERROR),
    };
    let delete = r.flag("delete");
    if r.has_errors() {
        return None;
    }
    let rule = if delete && id.is_none() {
        Some("Schedule ID is required to delete a schedule")
    } else if !delete
        && (name.as_deref().is_none_or(str::is_empty)
            || prompt.as_deref().is_none_or(str::is_empty)
            || date.is_none())
    {
        Some("Schedule Name, Prompt, and Date are required to create or update a schedule")
    } else {
        None
    };
    if let Some(msg) = rule {
        return r.fail("non_field_errors", msg);
    }
    Some(ScheduleInput {
        id,
        name,
        prompt,
        date,
        delete,
    })
}

impl UpsertRequest {
    fn read(body: &JsonObject) -> Result<Self, FieldErrors> {
        let mut r = Reader::new(&body.0);
        let name_rule = Text::optional().max(320);
        let identifier = r.text("identifier", Text::required().null(Null::Absent).max(320));
        let name = r.text("name", name_rule);
        let platform = match r.get("platform") {
            None | Some(Value::Null) => Some(Platform::Api),
            Some(v) => match v.as_str().and_then(Platform::from_api) {
                Some(p) => Some(p),
                None => {
                    let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    r.fail("platform", not_a_choice(&shown))
                }
            },
        };
        let data = r.objects("data", true, false, |item| {
            let experiment = item.uuid("experiment", true, Null::Absent);
            let data = item.object("data");
            let schedules = item
                .objects("schedules", false, false, read_schedule)
                .unwrap_or_default();
            Some(UpsertItem {
                experiment: experiment?,
                data,
                schedules,
            })
        });
        r.finish()?;
        Ok(UpsertRequest {
            identifier: identifier.unwrap_or_default(),
            name,
            platform: platform.unwrap_or(Platform::Api),
            data: data.unwrap_or_default(),
        })
    }
}

/// Update Participant Data
#[utoipa::path(
    post,
    path = "/api/participants",
    operation_id = "update_participant_data",
    tag = "Participants",
    request_body = UpsertRequest,
    responses((status = 200, body = ParticipantDetailView)),
    security(("OAuth2" = ["participants:write"]), ("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn upsert(
    State(state): State<AppState>,
    Auth(auth): Auth,
    body: JsonObject,
) -> Result<Json<ParticipantDetailView>> {
    let u = UpsertRequest::read(&body)?;
    let u = Upsert {
        identifier: u.identifier,
        name: u.name,
        platform: u.platform,
        items: u.data,
    };
    let d = participants::upsert(&state.domain, auth.team_id, auth.user_id, u).await?;
    Ok(Json(view(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_as_drf_reads_them() {
        let p = |s| parse_datetime(s).map(|d| d.to_rfc3339());
        assert_eq!(p("2022-01-01"), Some("2022-01-01T00:00:00+00:00".into()));
        assert_eq!(
            p("2022-01-01T10:00:00Z"),
            Some("2022-01-01T10:00:00+00:00".into())
        );
        assert_eq!(
            p("2022-01-01 10:00:00+02:00"),
            Some("2022-01-01T08:00:00+00:00".into())
        );
        assert_eq!(
            p("2022-01-01T10:00"),
            Some("2022-01-01T10:00:00+00:00".into())
        );
        assert_eq!(p("nope"), None);
    }
}
