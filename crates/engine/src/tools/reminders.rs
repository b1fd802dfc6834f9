//! The reminder tools: they create, move and cancel the participant's
//! scheduled messages with this chatbot (which then fire as any schedule
//! does: the bot writes the reminder from its `message` when it is due).
//! The changes are written with the turn; the tools answer at once, checking
//! ids against the schedules pending when the turn started.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use domain::schedules::{NewSchedule, ScheduleChange, new_external_id};
use domain::{ChatbotId, ParticipantId, TeamId};
use serde_json::{Value, json};

/// Whose reminders these are, and when "now" is.
#[derive(Debug, Clone)]
pub struct Reminders {
    pub team_id: TeamId,
    pub participant_id: ParticipantId,
    pub family_id: ChatbotId,
    pub timezone: Tz,
    pub now: DateTime<Utc>,
    /// The ids of the schedules pending when the turn started.
    pub pending: Vec<String>,
}

pub fn spec(name: &str) -> Option<(&'static str, Value)> {
    let due = json!({"type": "string", "description": "The datetime the reminder is due, in ISO 8601 format"});
    let message = json!({"type": "string", "description": "What the reminder is about. This will be used to generate the reminder message for the user."});
    let schedule_name =
        json!({"type": "string", "description": "The name for this scheduled message"});
    Some(match name {
        "one-off-reminder" => (
            "Schedule one-off reminders",
            json!({"type": "object", "properties": {"datetime_due": due, "message": message, "schedule_name": schedule_name},
                   "required": ["datetime_due", "message", "schedule_name"]}),
        ),
        "recurring-reminder" => (
            "Schedule recurring reminders",
            json!({"type": "object", "properties": {
                "datetime_due": {"type": "string", "description": "The first (or only) reminder start date in ISO 8601 format"},
                "every": {"type": "integer", "description": "Number of 'periods' to wait between reminders"},
                "period": {"type": "string", "enum": ["minutes", "hours", "days", "weeks", "months"], "description": "The time period used in conjunction with 'every'"},
                "datetime_end": {"type": ["string", "null"], "description": "The date of the last reminder in ISO 8601 format"},
                "message": message,
                "repetitions": {"type": ["string", "null"], "description": "The number of repetitions"},
                "schedule_name": schedule_name},
              "required": ["datetime_due", "every", "period", "message", "schedule_name"]}),
        ),
        "delete-reminder" => (
            "Delete scheduled reminders",
            json!({"type": "object", "properties": {"message_id": {"type": "string", "description": "The ID of the scheduled message to delete"}},
                   "required": ["message_id"]}),
        ),
        "move-scheduled-message-date" => (
            "Move the day and time that the scheduled message should trigger",
            json!({"type": "object", "properties": {
                "message_id": {"type": "string", "description": "The ID of the scheduled message to update"},
                "weekday": {"type": "integer", "minimum": 1, "maximum": 7, "description": "The new day of the week (1 = Monday)"},
                "hour": {"type": "integer", "description": "The new hour of the day, in UTC"},
                "minute": {"type": "integer", "description": "The new minute of the hour"},
                "specified_date": {"type": ["string", "null"], "description": "A specific date to re-schedule the message for in ISO 8601 format"}},
              "required": ["message_id", "weekday", "hour", "minute"]}),
        ),
        _ => return None,
    })
}

fn text<'a>(args: &'a Value, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Error: the argument {key:?} (text) is required"))
}

fn int(args: &Value, key: &str) -> Result<i64, String> {
    args.get(key)
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
        .ok_or_else(|| format!("Error: the argument {key:?} (a whole number) is required"))
}

/// An ISO 8601 date and time; without an offset it is the participant's local time.
fn when(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return tz
                .from_local_datetime(&n)
                .earliest()
                .map(|d| d.with_timezone(&Utc))
                .ok_or_else(|| format!("Error: {t} does not exist in {tz}"));
        }
    }
    Err(format!("Error: {t:?} is not an ISO 8601 date and time"))
}

fn future(at: DateTime<Utc>, r: &Reminders) -> Result<DateTime<Utc>, String> {
    if at <= r.now {
        return Err(format!("Error: {} is in the past", at.to_rfc3339()));
    }
    Ok(at)
}

fn new(r: &Reminders, args: &Value, first_at: DateTime<Utc>) -> Result<NewSchedule, String> {
    Ok(NewSchedule {
        team_id: r.team_id,
        chatbot_family_id: r.family_id.0,
        participant_id: r.participant_id.0,
        external_id: new_external_id(),
        name: text(args, "schedule_name")?.to_string(),
        prompt: text(args, "message")?.to_string(),
        first_at,
        interval_seconds: None,
        cron: None,
        timezone: None,
        repetitions: 1,
        end_date: None,
    })
}

pub fn run(
    name: &str,
    args: &Value,
    r: &Reminders,
    out: &mut Vec<ScheduleChange>,
) -> Result<String, String> {
    match name {
        "one-off-reminder" => {
            let at = future(when(text(args, "datetime_due")?, r.timezone)?, r)?;
            out.push(ScheduleChange::Create(new(r, args, at)?));
            Ok("Success: scheduled message created".into())
        }
        "recurring-reminder" => {
            let at = future(when(text(args, "datetime_due")?, r.timezone)?, r)?;
            let every = int(args, "every")?;
            if every < 1 {
                return Err("Error: 'every' must be at least 1".into());
            }
            let mut n = new(r, args, at)?;
            let unit = match text(args, "period")? {
                "minutes" => Some(60),
                "hours" => Some(3_600),
                "days" => Some(86_400),
                "weeks" => Some(604_800),
                "months" => None,
                other => return Err(format!("Error: unknown period {other:?}")),
            };
            match unit {
                Some(secs) => {
                    n.interval_seconds = Some(
                        i32::try_from(every * secs)
                            .map_err(|_| "Error: the interval is too long".to_string())?,
                    )
                }
                // Every N months on the due date's day and time, in the participant's zone.
                None => {
                    let local = at.with_timezone(&r.timezone);
                    n.cron = Some(format!(
                        "{} {} {} */{every} *",
                        local.minute(),
                        local.hour(),
                        local.day()
                    ));
                    n.timezone = Some(r.timezone.name().to_string());
                }
            }
            n.repetitions = match args.get("repetitions") {
                None | Some(Value::Null) => 0,
                Some(_) => i32::try_from(int(args, "repetitions")?).unwrap_or(0).max(0),
            };
            if let Some(end) = args.get("datetime_end").and_then(Value::as_str) {
                n.end_date = Some(when(end, r.timezone)?);
            }
            out.push(ScheduleChange::Create(n));
            Ok("Success: scheduled message created".into())
        }
        "delete-reminder" => {
            let id = text(args, "message_id")?;
            if !r.pending.iter().any(|p| p == id) {
                return Err("Could not find this reminder".into());
            }
            out.push(ScheduleChange::Cancel {
                external_id: id.to_string(),
            });
            Ok("The reminder has been successfully deleted.".into())
        }
        "move-scheduled-message-date" => {
            let id = text(args, "message_id")?;
            if !r.pending.iter().any(|p| p == id) {
                return Err("Could not find this reminder".into());
            }
            let (hour, minute) = (int(args, "hour")?, int(args, "minute")?);
            if !(0..24).contains(&hour) || !(0..60).contains(&minute) {
                return Err("Error: the hour or minute is out of range".into());
            }
            let to = match args.get("specified_date").and_then(Value::as_str) {
                Some(d) => when(d, Tz::UTC)?
                    .with_hour(hour as u32)
                    .and_then(|t| t.with_minute(minute as u32))
                    .ok_or("Error: invalid time")?,
                None => {
                    let day =
                        Weekday::try_from(u8::try_from(int(args, "weekday")? - 1).unwrap_or(99))
                            .map_err(|_| {
                                "Error: weekday must be 1 (Monday) to 7 (Sunday)".to_string()
                            })?;
                    next_weekday(r.now, day, hour as u32, minute as u32)
                }
            };
            let to = future(to, r)?;
            out.push(ScheduleChange::Move {
                external_id: id.to_string(),
                to,
            });
            Ok(format!(
                "The scheduled message now triggers at {}",
                to.to_rfc3339()
            ))
        }
        other => Err(format!("Error: there is no tool {other:?}")),
    }
}

/// The next `day` at `hour:minute` UTC after `now`.
fn next_weekday(now: DateTime<Utc>, day: Weekday, hour: u32, minute: u32) -> DateTime<Utc> {
    let mut d = now.date_naive();
    loop {
        if d.weekday() == day
            && let Some(t) = d.and_hms_opt(hour, minute, 0).map(|n| n.and_utc())
            && t > now
        {
            return t;
        }
        d += Duration::days(1);
    }
}
