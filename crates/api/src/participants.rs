//! `/api/participants` (with or without the trailing slash): list with
//! filters, and upsert with per-chatbot data and schedules in one transaction.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use domain::Error;
use domain::channels::Platform;
use domain::participants::{self, Detail, Filter, ScheduleInput, Upsert, UpsertItem};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::body::JsonObject;
use crate::error::Result;
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

#[derive(Debug, serde::Deserialize, ToSchema)]
#[schema(as = ParticipantDataUpdateRequest)]
#[allow(dead_code)]
pub struct UpsertDoc {
    identifier: String,
    name: Option<String>,
    platform: Option<String>,
    #[schema(value_type = Vec<Object>)]
    data: Vec<Value>,
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
    security(("apiKeyAuth" = []), ("tokenAuth" = []))
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
            let mut m = Map::new();
            m.insert(param.into(), json!("Must be a valid UUID."));
            ApiError::Domain(Error::Validation(Value::Object(m)))
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

fn parse_schedule(v: &Value) -> (Option<ScheduleInput>, Map<String, Value>) {
    let mut e = Map::new();
    let Some(o) = v.as_object() else {
        e.insert(
            "non_field_errors".into(),
            json!(["Invalid data. Expected a dictionary."]),
        );
        return (None, e);
    };
    let text = |k: &str, e: &mut Map<String, Value>| match o.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            e.insert(k.into(), json!(["Not a valid string."]));
            None
        }
    };
    let id = text("id", &mut e);
    if id.as_ref().is_some_and(|i| i.chars().count() > 32) {
        e.insert(
            "id".into(),
            json!(["Ensure this field has no more than 32 characters."]),
        );
    }
    let name = text("name", &mut e);
    let prompt = text("prompt", &mut e);
    let date = match o.get("date") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => match parse_datetime(s) {
            Some(d) => Some(d),
            None => {
                e.insert("date".into(), json!([DATE_FORMAT_ERROR]));
                None
            }
        },
        Some(_) => {
            e.insert("date".into(), json!([DATE_FORMAT_ERROR]));
            None
        }
    };
    let delete = match o.get("delete") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            e.insert("delete".into(), json!(["Must be a valid boolean."]));
            false
        }
    };
    if e.is_empty() {
        if delete && id.is_none() {
            e.insert(
                "non_field_errors".into(),
                json!(["Schedule ID is required to delete a schedule"]),
            );
        } else if !delete
            && (name.as_deref().is_none_or(str::is_empty)
                || prompt.as_deref().is_none_or(str::is_empty)
                || date.is_none())
        {
            e.insert(
                "non_field_errors".into(),
                json!([
                    "Schedule Name, Prompt, and Date are required to create or update a schedule"
                ]),
            );
        }
    }
    let input = ScheduleInput {
        id,
        name,
        prompt,
        date,
        delete,
    };
    (e.is_empty().then_some(input), e)
}

fn parse_upsert(body: &JsonObject) -> Result<Upsert, Error> {
    let mut errors = Map::new();
    let identifier = match body.0.get("identifier") {
        None | Some(Value::Null) => {
            errors.insert("identifier".into(), json!(["This field is required."]));
            String::new()
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.insert("identifier".into(), json!(["This field may not be blank."]));
            String::new()
        }
        Some(Value::String(s)) if s.trim().chars().count() > 320 => {
            errors.insert(
                "identifier".into(),
                json!(["Ensure this field has no more than 320 characters."]),
            );
            String::new()
        }
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => {
            errors.insert("identifier".into(), json!(["Not a valid string."]));
            String::new()
        }
    };
    let name = match body.0.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.insert("name".into(), json!(["This field may not be blank."]));
            None
        }
        Some(Value::String(s)) if s.trim().chars().count() > 320 => {
            errors.insert(
                "name".into(),
                json!(["Ensure this field has no more than 320 characters."]),
            );
            None
        }
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => {
            errors.insert("name".into(), json!(["Not a valid string."]));
            None
        }
    };
    let platform = match body.0.get("platform") {
        None | Some(Value::Null) => Platform::Api,
        Some(Value::String(s)) if Platform::parse(s).is_some() => {
            Platform::parse(s).unwrap_or(Platform::Api)
        }
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            errors.insert(
                "platform".into(),
                json!([format!("\"{shown}\" is not a valid choice.")]),
            );
            Platform::Api
        }
    };
    let mut items = Vec::new();
    match body.0.get("data") {
        None | Some(Value::Null) => {
            errors.insert("data".into(), json!(["This field is required."]));
        }
        Some(Value::Array(list)) => {
            let mut item_errors = Vec::new();
            let mut any = false;
            for entry in list {
                let mut e = Map::new();
                let Some(o) = entry.as_object() else {
                    e.insert(
                        "non_field_errors".into(),
                        json!(["Invalid data. Expected a dictionary."]),
                    );
                    item_errors.push(Value::Object(e));
                    any = true;
                    continue;
                };
                let experiment = match o.get("experiment") {
                    None | Some(Value::Null) => {
                        e.insert("experiment".into(), json!(["This field is required."]));
                        None
                    }
                    Some(v) => match v
                        .as_str()
                        .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
                    {
                        Some(u) => Some(u),
                        None => {
                            e.insert("experiment".into(), json!(["Must be a valid UUID."]));
                            None
                        }
                    },
                };
                let data = match o.get("data") {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(m)) => Some(m.clone()),
                    Some(_) => {
                        e.insert("data".into(), json!(["Expected a dictionary of items."]));
                        None
                    }
                };
                let mut schedules = Vec::new();
                match o.get("schedules") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(list)) => {
                        let mut se = Vec::new();
                        let mut bad = false;
                        for s in list {
                            let (input, err) = parse_schedule(s);
                            bad |= !err.is_empty();
                            se.push(Value::Object(err));
                            if let Some(i) = input {
                                schedules.push(i);
                            }
                        }
                        if bad {
                            e.insert("schedules".into(), Value::Array(se));
                        }
                    }
                    Some(_) => {
                        e.insert("schedules".into(), json!(["Expected a list of items."]));
                    }
                }
                any |= !e.is_empty();
                item_errors.push(Value::Object(e));
                if let Some(experiment) = experiment {
                    items.push(UpsertItem {
                        experiment,
                        data,
                        schedules,
                    });
                }
            }
            if any {
                errors.insert("data".into(), Value::Array(item_errors));
            }
        }
        Some(_) => {
            errors.insert("data".into(), json!(["Expected a list of items."]));
        }
    }
    if !errors.is_empty() {
        return Err(Error::Validation(Value::Object(errors)));
    }
    Ok(Upsert {
        identifier,
        name,
        platform,
        items,
    })
}

/// Update Participant Data
#[utoipa::path(
    post,
    path = "/api/participants",
    operation_id = "update_participant_data",
    tag = "Participants",
    request_body = UpsertDoc,
    responses((status = 200, body = ParticipantDetailView)),
    security(("apiKeyAuth" = []), ("tokenAuth" = []))
)]
pub async fn upsert(
    State(state): State<AppState>,
    Auth(auth): Auth,
    body: JsonObject,
) -> Result<Json<ParticipantDetailView>> {
    let u = parse_upsert(&body)?;
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
