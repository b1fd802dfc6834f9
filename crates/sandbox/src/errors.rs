//! Interpreter exceptions told in the author's terms: their line numbers
//! (the prelude's lines taken off), the failing line and a little context.

use monty_types::MontyException;

use crate::source::user_line;

/// What the trace and the turn's error say about an exception raised while
/// the code ran: the exception, the line, and the lines around it.
pub fn describe(e: &MontyException, source: &str) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = e.summary();
    if let Some(line) = user_line(e, lines.len()) {
        out.push_str(&format!(" (line {line})\nContext:"));
        let from = line.saturating_sub(3);
        let to = (line + 2).min(lines.len());
        for (i, text) in lines.iter().enumerate().take(to).skip(from) {
            let marker = if i + 1 == line { ">>>" } else { "   " };
            out.push_str(&format!("\n{marker} {:3}: {text}", i + 1));
        }
    }
    out
}
