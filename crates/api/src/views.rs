//! Shared representation rules: timestamps and money as the contract prints them.

use chrono::{DateTime, Timelike, Utc};

/// RFC 3339 in UTC with `Z`; microseconds only when non-zero (as the original).
pub fn datetime(t: DateTime<Utc>) -> String {
    if t.nanosecond() / 1000 == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// The query string's parameters in order (repeats kept).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of a query parameter.
pub fn query_param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_original() {
        let t = DateTime::parse_from_rfc3339("2021-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(datetime(t), "2021-01-01T12:00:00Z");
        let t = DateTime::parse_from_rfc3339("2021-01-01T12:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(datetime(t), "2021-01-01T12:00:00.123456Z");
    }
}
