//! Interpreter exceptions told in the author's terms: their line numbers
//! (the prelude's lines taken off), the failing line and a little context.

use monty_types::MontyException;

use crate::source::{CodeError, prelude_lines};

/// The author's line of the innermost frame in their code, if any.
pub fn user_line(e: &MontyException, source_lines: usize) -> Option<usize> {
    let offset = prelude_lines();
    e.traceback()
        .iter()
        .rev()
        .filter(|f| f.filename == "main.py")
        .map(|f| f.start.line as usize)
        .find(|l| *l > offset && *l <= offset + source_lines)
        .map(|l| l - offset)
}

/// A compile error at the author's line.
pub fn code_error(e: &MontyException) -> CodeError {
    CodeError {
        line: user_line(e, usize::MAX / 2),
        message: e.summary(),
    }
}

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
