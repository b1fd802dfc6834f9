//! The values prompt variables render from, and `current_datetime` in the
//! participant's timezone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

/// The participant's timezone from their data (`timezone`), else UTC.
pub fn timezone(participant_data: &Value) -> Tz {
    participant_data
        .get("timezone")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC)
}

/// Day precision, for the system prompt: it stays identical all day, so the
/// provider's prompt cache stays warm.
pub fn day(now: DateTime<Utc>, tz: Tz) -> String {
    now.with_timezone(&tz).format("%A, %d %B %Y").to_string()
}

/// The exact time, appended to the newest user turn.
pub fn exact(now: DateTime<Utc>, tz: Tz) -> String {
    now.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_in_the_participants_zone() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tz = timezone(&json!({"timezone": "Africa/Nairobi"}));
        assert_eq!(day(now, tz), "Thursday, 26 November 2026");
        assert_eq!(exact(now, tz), "2026-11-26 02:30:00 EAT");
        assert_eq!(timezone(&json!({"timezone": "Mars/Base"})), Tz::UTC);
        assert_eq!(
            day(now, timezone(&json!({}))),
            "Wednesday, 25 November 2026"
        );
    }
}
