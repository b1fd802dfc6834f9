//! The CLI's standard output: human lines or JSON, the one place that prints.

use std::io::Write;

pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (for example `| head`) is not an error worth reporting.
    let _ = writeln!(out, "{text}");
}

pub fn json(value: &serde_json::Value) {
    line(&serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// A list: the items as one JSON array, or one line per item.
pub fn rows<T: serde::Serialize>(as_json: bool, items: &[T], row: impl Fn(&T) -> String) {
    if as_json {
        json(&serde_json::json!(items));
    } else {
        for item in items {
            line(&row(item));
        }
    }
}
