//! A code node's source: the checks made when a pipeline is saved, and the
//! program the worker runs.
//!
//! The program is a fixed prelude (the modules and helpers the original
//! offers as globals, see [`PRELUDE`]), the author's code with imports of
//! the modules the interpreter lacks (`random`, `time`, `string`) rewritten
//! to the prelude's stand-ins on the same line, and a last line that calls
//! `main`. Line numbers reported to the author are the author's own.

use std::fmt;

use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
use ruff_python_ast::{Stmt, StmtFunctionDef};
use ruff_text_size::{Ranged, TextRange};

/// The largest source accepted (bytes).
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// Modules `import` may name: the interpreter's own pure modules, and the
/// prelude's stand-ins for `random`, `time` and `string`.
pub const MODULES: &[&str] = &[
    "json",
    "re",
    "math",
    "datetime",
    "collections",
    "itertools",
    "functools",
    "base64",
    "binascii",
    "typing",
    "dataclasses",
    "unicodedata",
    "random",
    "time",
    "string",
];

/// Modules the prelude stands in for (bound as globals, so their import
/// statements become assignments).
const STAND_INS: &[&str] = &["random", "time", "string"];

/// Session state keys the original reserves (read-only to code).
pub const RESERVED_SESSION_KEYS: &[&str] =
    &["user_input", "outputs", "attachments", "remote_context"];

/// What a code node's source gets wrong, with the author's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeError {
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl CodeError {
    fn at(source: &str, range: TextRange, message: impl Into<String>) -> Self {
        CodeError {
            line: Some(line_of(source, range.start().to_usize())),
            message: message.into(),
        }
    }

    fn whole(message: impl Into<String>) -> Self {
        CodeError {
            line: None,
            message: message.into(),
        }
    }
}

fn line_of(source: &str, offset: usize) -> usize {
    source
        .as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Helpers and globals the sandbox defines; a top-level name of the
/// author's that shadows one is allowed (it is their sandbox) but a
/// function other than `main` at the top level is not, as in the original.
pub const HELPERS: &[&str] = &[
    "get_participant_data",
    "set_participant_data",
    "set_participant_data_key",
    "append_to_participant_data_key",
    "increment_participant_data_key",
    "get_participant_schedules",
    "get_temp_state_key",
    "set_temp_state_key",
    "get_session_state_key",
    "set_session_state_key",
    "get_selected_route",
    "get_node_path",
    "get_all_routes",
    "get_node_output",
    "add_message_tag",
    "add_session_tag",
    "end_session",
    "abort_with_message",
    "require_node_outputs",
    "wait_for_next_input",
    "add_file_attachment",
    "_cs_http",
];

/// The prelude: the original's pre-bound modules, and stand-ins written in
/// the sandbox's own Python for what the interpreter lacks. `_cs_local` is
/// answered by the worker itself (entropy and the clock), `_cs_http` by the
/// host (the outbound client).
pub const PRELUDE: &str = r##"import json, re, datetime, math
class _cs_Random:
    def random(self):
        return _cs_local("random")
    def randint(self, a, b):
        return _cs_local("randint", a, b)
    def randrange(self, start, stop=None, step=1):
        if stop is None:
            start, stop = 0, start
        n = (stop - start + step - 1) // step if step > 0 else (start - stop - step - 1) // (-step)
        if n <= 0:
            raise ValueError("empty range for randrange()")
        return start + step * self.randint(0, n - 1)
    def uniform(self, a, b):
        return a + (b - a) * self.random()
    def choice(self, seq):
        if len(seq) == 0:
            raise IndexError("Cannot choose from an empty sequence")
        return seq[self.randint(0, len(seq) - 1)]
    def shuffle(self, x):
        for i in range(len(x) - 1, 0, -1):
            j = self.randint(0, i)
            item = x[i]
            x[i] = x[j]
            x[j] = item
    def sample(self, population, k):
        pool = list(population)
        if k < 0 or k > len(pool):
            raise ValueError("Sample larger than population or is negative")
        self.shuffle(pool)
        return pool[:k]
    def seed(self, a=None):
        return None
class _cs_Time:
    def time(self):
        return _cs_local("time")
    def time_ns(self):
        return int(_cs_local("time") * 1000000000)
    def monotonic(self):
        return _cs_local("monotonic")
    def perf_counter(self):
        return _cs_local("monotonic")
    def sleep(self, seconds):
        raise RuntimeError("time.sleep is not available in the sandbox")
class _cs_String:
    ascii_lowercase = "abcdefghijklmnopqrstuvwxyz"
    ascii_uppercase = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ascii_letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    digits = "0123456789"
    hexdigits = "0123456789abcdefABCDEF"
    octdigits = "01234567"
    punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    whitespace = " \t\n\r\x0b\x0c"
    printable = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ \t\n\r\x0b\x0c"
class _cs_Http:
    def get(self, url, params=None, headers=None, auth=None, timeout=None):
        return _cs_http("GET", url, {"params": params, "headers": headers, "auth": auth, "timeout": timeout})
    def delete(self, url, params=None, headers=None, auth=None, timeout=None):
        return _cs_http("DELETE", url, {"params": params, "headers": headers, "auth": auth, "timeout": timeout})
    def post(self, url, params=None, headers=None, auth=None, json=None, data=None, files=None, timeout=None):
        return _cs_http("POST", url, {"params": params, "headers": headers, "auth": auth, "json": json, "data": data, "files": files, "timeout": timeout})
    def put(self, url, params=None, headers=None, auth=None, json=None, data=None, files=None, timeout=None):
        return _cs_http("PUT", url, {"params": params, "headers": headers, "auth": auth, "json": json, "data": data, "files": files, "timeout": timeout})
    def patch(self, url, params=None, headers=None, auth=None, json=None, data=None, files=None, timeout=None):
        return _cs_http("PATCH", url, {"params": params, "headers": headers, "auth": auth, "json": json, "data": data, "files": files, "timeout": timeout})
random = _cs_Random()
time = _cs_Time()
string = _cs_String()
http = _cs_Http()
"##;

/// How many lines the prelude adds before the author's line 1.
pub fn prelude_lines() -> usize {
    PRELUDE.lines().count()
}

/// The input names the program expects, in order; `_cs_input` and
/// `_cs_kwargs` are main's arguments, the rest the host's functions.
pub fn input_names() -> Vec<String> {
    ["_cs_input", "_cs_kwargs", "_cs_local"]
        .iter()
        .chain(HELPERS)
        .map(|s| s.to_string())
        .collect()
}

/// Checks a code node's source as the original does on save: it parses,
/// defines `main(input, **kwargs)` as its only top-level function, imports
/// only [`MODULES`], does not write a reserved session state key, and uses
/// only what the interpreter supports.
pub fn check(source: &str) -> Result<(), CodeError> {
    let program = prepare(source)?;
    // The interpreter's own compile catches what it does not support.
    compile(&program).map(|_| ())
}

/// The program the worker runs for `source` (checked as [`check`] does,
/// except for the interpreter's compile, which the worker does).
pub fn prepare(source: &str) -> Result<String, CodeError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(CodeError::whole(format!(
            "the code is longer than {} KiB",
            MAX_SOURCE_BYTES / 1024
        )));
    }
    if source.contains('\0') {
        return Err(CodeError::whole("the code contains a NUL character"));
    }
    let owned = source.to_string();
    // The parser recurses on nesting; a thread with a large stack keeps a
    // pathological source from overflowing a server thread's stack.
    let parsed = on_big_stack(move || analyse(&owned))?;
    Ok(format!(
        "{PRELUDE}{parsed}\nstr(main(_cs_input, **_cs_kwargs))\n"
    ))
}

fn on_big_stack<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CodeError> + Send + 'static,
) -> Result<T, CodeError> {
    std::thread::Builder::new()
        .name("code-check".into())
        .stack_size(64 * 1024 * 1024)
        .spawn(f)
        .map_err(|e| CodeError::whole(format!("the code could not be checked: {e}")))?
        .join()
        .map_err(|_| CodeError::whole("the code could not be checked"))?
}

/// Parses, checks the structure, and rewrites stand-in imports.
fn analyse(source: &str) -> Result<String, CodeError> {
    let parsed = ruff_python_parser::parse_module(source)
        .map_err(|e| CodeError::at(source, e.location, e.error.to_string()))?;
    let body = &parsed.syntax().body;
    let mut main: Option<&StmtFunctionDef> = None;
    for stmt in body {
        if let Stmt::FunctionDef(f) = stmt {
            if f.name.as_str() != "main" {
                return Err(CodeError::at(
                    source,
                    f.range(),
                    "You can only define a single function, 'main' at the top level. \
                     You may use nested functions inside that function if required",
                ));
            }
            main = Some(f);
        }
    }
    let Some(main) = main else {
        return Err(CodeError::whole("You must define a 'main' function"));
    };
    check_signature(source, main)?;
    let mut imports = Imports {
        source,
        error: None,
        rewrites: Vec::new(),
    };
    imports.visit_body(body);
    if let Some(e) = imports.error {
        return Err(e);
    }
    check_reserved(source)?;
    let mut out = source.to_string();
    // Back to front, so earlier ranges stay valid.
    imports
        .rewrites
        .sort_by_key(|(r, _)| std::cmp::Reverse(r.start()));
    for (range, text) in imports.rewrites {
        out.replace_range(range.start().to_usize()..range.end().to_usize(), &text);
    }
    Ok(out)
}

fn check_signature(source: &str, main: &StmtFunctionDef) -> Result<(), CodeError> {
    let p = &main.parameters;
    let wrong = || {
        CodeError::at(
            source,
            main.range(),
            "The main function should have the signature main(input, **kwargs) only.",
        )
    };
    if !p.posonlyargs.is_empty() || p.vararg.is_some() || !p.kwonlyargs.is_empty() {
        return Err(wrong());
    }
    let [input] = p.args.as_slice() else {
        return Err(wrong());
    };
    if input.parameter.name.as_str() != "input" {
        return Err(CodeError::at(
            source,
            main.range(),
            "The main function should have the signature main(input, **kwargs): parameter 1 should be 'input'",
        ));
    }
    match &p.kwarg {
        Some(k) if k.name.as_str() == "kwargs" => Ok(()),
        _ => Err(CodeError::at(
            source,
            main.range(),
            "The main function should have the signature main(input, **kwargs): parameter 2 should be **kwargs",
        )),
    }
}

/// The original refuses code that writes a reserved session state key.
fn check_reserved(source: &str) -> Result<(), CodeError> {
    for (i, line) in source.lines().enumerate() {
        let Some(at) = line.find("set_session_state_key(") else {
            continue;
        };
        let rest = line[at + "set_session_state_key(".len()..]
            .trim_start_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
        for key in RESERVED_SESSION_KEYS {
            if let Some(after) = rest.strip_prefix(key)
                && after.starts_with(['"', '\''])
            {
                return Err(CodeError {
                    line: Some(i + 1),
                    message: format!(
                        "The key '{key}' is a reserved session state key and is read-only."
                    ),
                });
            }
        }
    }
    Ok(())
}

struct Imports<'s> {
    source: &'s str,
    error: Option<CodeError>,
    rewrites: Vec<(TextRange, String)>,
}

impl Imports<'_> {
    fn allowed(&mut self, module: &str, range: TextRange) -> bool {
        let top = module.split('.').next().unwrap_or(module);
        if MODULES.contains(&top) && (top == module || !STAND_INS.contains(&top)) {
            return true;
        }
        self.error.get_or_insert_with(|| {
            CodeError::at(
                self.source,
                range,
                format!(
                    "Importing '{module}' is not allowed (available: {})",
                    MODULES.join(", ")
                ),
            )
        });
        false
    }

    /// The statement, rewritten on one line, keeping the line count.
    fn rewrite(&mut self, range: TextRange, parts: Vec<String>) {
        let original = &self.source[range.start().to_usize()..range.end().to_usize()];
        let newlines = original.matches('\n').count();
        let mut text = if parts.is_empty() {
            "pass".to_string()
        } else {
            parts.join("; ")
        };
        text.push_str(&"\n".repeat(newlines));
        self.rewrites.push((range, text));
    }
}

impl<'a> StatementVisitor<'a> for Imports<'_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Import(i) => {
                let mut parts = Vec::new();
                let mut stand_in = false;
                for alias in &i.names {
                    let name = alias.name.as_str();
                    if !self.allowed(name, alias.range()) {
                        return;
                    }
                    let bound = alias.asname.as_ref().map(|a| a.as_str());
                    if STAND_INS.contains(&name) {
                        stand_in = true;
                        if let Some(b) = bound.filter(|b| *b != name) {
                            parts.push(format!("{b} = {name}"));
                        }
                    } else {
                        parts.push(match bound {
                            Some(b) => format!("import {name} as {b}"),
                            None => format!("import {name}"),
                        });
                    }
                }
                if stand_in {
                    self.rewrite(i.range(), parts);
                }
            }
            Stmt::ImportFrom(i) => {
                let Some(module) = i.module.as_ref().map(|m| m.as_str()) else {
                    self.error.get_or_insert_with(|| {
                        CodeError::at(self.source, i.range(), "Relative imports are not allowed")
                    });
                    return;
                };
                if i.level > 0 {
                    self.error.get_or_insert_with(|| {
                        CodeError::at(self.source, i.range(), "Relative imports are not allowed")
                    });
                    return;
                }
                if !self.allowed(module, i.range()) {
                    return;
                }
                if STAND_INS.contains(&module) {
                    let mut parts = Vec::new();
                    for alias in &i.names {
                        let name = alias.name.as_str();
                        if name == "*" {
                            self.error.get_or_insert_with(|| {
                                CodeError::at(
                                    self.source,
                                    i.range(),
                                    format!("'from {module} import *' is not supported"),
                                )
                            });
                            return;
                        }
                        let bound = alias.asname.as_ref().map_or(name, |a| a.as_str());
                        parts.push(format!("{bound} = {module}.{name}"));
                    }
                    self.rewrite(i.range(), parts);
                }
            }
            _ => walk_stmt(self, stmt),
        }
    }
}

/// The author's line of the innermost frame in their code, if any.
pub fn user_line(e: &monty_types::MontyException, source_lines: usize) -> Option<usize> {
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
fn code_error(e: &monty_types::MontyException) -> CodeError {
    CodeError {
        line: user_line(e, usize::MAX / 2),
        message: e.summary(),
    }
}

/// Compiles a prepared program, reporting errors at the author's line.
pub fn compile(program: &str) -> Result<monty::MontyRun, CodeError> {
    let owned = program.to_string();
    on_big_stack(move || {
        monty::MontyRun::new(
            owned,
            "main.py",
            input_names(),
            monty_types::CompileOptions::default(),
        )
        .map_err(|e| code_error(&e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_node_compiles() {
        check("def main(input, **kwargs):\n    return input\n").unwrap();
        check("import json\nimport random as r\nfrom string import digits\ndef main(input, **kwargs):\n    import time\n    return json.dumps([r.randint(1, 2), digits, time.time()])\n").unwrap();
    }

    #[test]
    fn structure_errors_name_the_line() {
        let e = check("x = 1\ndef main(input):\n    return 1\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("main(input, **kwargs)"), "{e}");
        let e = check("def main(input, **kwargs):\n    return 1\ndef other():\n    pass\n")
            .unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("single function"), "{e}");
        assert!(
            check("x = 1\n")
                .unwrap_err()
                .message
                .contains("must define a 'main'")
        );
        let e = check("def main(input, **kwargs)\n    return 1\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }

    #[test]
    fn imports_outside_the_list_are_refused_with_their_line() {
        for (code, line) in [
            ("import os\ndef main(input, **kwargs):\n    return 1\n", 1),
            (
                "def main(input, **kwargs):\n    import subprocess\n    return 1\n",
                2,
            ),
            (
                "def main(input, **kwargs):\n    if input:\n        from socket import socket\n    return 1\n",
                3,
            ),
            (
                "import json, sys\ndef main(input, **kwargs):\n    return 1\n",
                1,
            ),
            (
                "from . import x\ndef main(input, **kwargs):\n    return 1\n",
                1,
            ),
            (
                "import random.x\ndef main(input, **kwargs):\n    return 1\n",
                1,
            ),
        ] {
            let e = check(code).unwrap_err();
            assert_eq!(e.line, Some(line), "{code}: {e}");
            assert!(
                e.message.contains("not allowed") || e.message.contains("Relative"),
                "{e}"
            );
        }
    }

    #[test]
    fn stand_in_imports_keep_their_lines() {
        let p = prepare("import random, json as j\nfrom time import (\n  time as now,\n)\ndef main(input, **kwargs):\n    return 1\n").unwrap();
        let user: Vec<&str> = p.lines().skip(prelude_lines()).collect();
        assert_eq!(user[0], "import json as j");
        assert_eq!(user[1], "now = time.time");
        assert_eq!(user[4], "def main(input, **kwargs):");
    }

    #[test]
    fn reserved_session_keys_are_read_only() {
        let e = check(
            "def main(input, **kwargs):\n    set_session_state_key('outputs', 1)\n    return 1\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("reserved"), "{e}");
        check(
            "def main(input, **kwargs):\n    set_session_state_key('outputs_2', 1)\n    return 1\n",
        )
        .unwrap();
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let code = format!(
            "def main(input, **kwargs):\n    return {}1{}\n",
            "(".repeat(20_000),
            ")".repeat(20_000)
        );
        assert!(check(&code).is_err());
        assert!(check(&"x".repeat(MAX_SOURCE_BYTES + 1)).is_err());
    }
}
