//! Prompt templates with single-brace variables, as the original's LLM prompts:
//! `{participant_data}`, `{participant_data.tasks[0].name}`, `{session_state.x}`,
//! `{temp_state.y}`, `{current_datetime}`. `{{` and `}}` are literal braces.
//!
//! Saving a chatbot rejects unknown variables, format specs and conversions
//! (`{x:>10}`, `{x!r}`), positional `{}` and repeats, with a message naming the
//! variable. Decision: a repeat is the same expression twice; different paths
//! into one root (`{participant_data.name}` and `{participant_data.age}`) are
//! allowed. Rendering is tolerant: a missing key renders as empty text.

use serde_json::Value;

pub const VARIABLES: &[&str] = &[
    "participant_data",
    "session_state",
    "temp_state",
    "current_datetime",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Var {
        root: String,
        path: Vec<PathSeg>,
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub segments: Vec<Segment>,
}

/// Values the variables render from.
#[derive(Debug, Clone, Default)]
pub struct PromptContext {
    pub participant_data: Value,
    pub session_state: Value,
    pub temp_state: Value,
    /// Already formatted (day precision in the system prompt).
    pub current_datetime: String,
}

fn parse_path(expr: &str) -> Result<(String, Vec<PathSeg>), String> {
    let bad = || format!("invalid variable {{{expr}}}");
    let mut chars = expr.char_indices().peekable();
    let mut root = String::new();
    while let Some(&(_, c)) = chars.peek() {
        if c.is_alphanumeric() || c == '_' {
            root.push(c);
            chars.next();
        } else {
            break;
        }
    }
    if root.is_empty() {
        return Err(bad());
    }
    let mut path = Vec::new();
    while let Some((_, c)) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    key.push(c);
                    chars.next();
                }
                if key.is_empty() {
                    return Err(bad());
                }
                path.push(PathSeg::Key(key));
            }
            '[' => {
                let mut idx = String::new();
                loop {
                    match chars.next() {
                        Some((_, ']')) => break,
                        Some((_, d)) => idx.push(d),
                        None => return Err(bad()),
                    }
                }
                match idx.parse::<usize>() {
                    Ok(i) => path.push(PathSeg::Index(i)),
                    // `x[name]` is key access, as Python's format allows.
                    Err(_) if !idx.is_empty() => path.push(PathSeg::Key(idx)),
                    Err(_) => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok((root, path))
}

impl Template {
    /// Parses and validates against the known variable names.
    pub fn parse(text: &str) -> Result<Template, String> {
        Self::parse_for(text, VARIABLES)
    }

    /// Parses and validates against `allowed` variable names (a router's
    /// prompt sees fewer than an LLM node's).
    pub fn parse_for(text: &str, allowed: &[&str]) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut lit = String::new();
        let mut seen: Vec<String> = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => {
                    return Err("single '}' in the prompt: write '}}' for a literal brace".into());
                }
                '{' => {
                    let mut expr = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') => return Err(
                                "unexpected '{' inside a variable: write '{{' for a literal brace"
                                    .into(),
                            ),
                            Some(c) => expr.push(c),
                            None => {
                                return Err(
                                    "unclosed '{' in the prompt: write '{{' for a literal brace"
                                        .into(),
                                );
                            }
                        }
                    }
                    let expr = expr.trim().to_string();
                    if expr.is_empty() {
                        return Err("empty variable {} in the prompt".into());
                    }
                    if let Some(pos) = expr.find([':', '!']) {
                        let name = &expr[..pos];
                        return Err(format!(
                            "variable {{{name}}} has a format specification or conversion ({}), which is not supported",
                            &expr[pos..]
                        ));
                    }
                    let (root, path) = parse_path(&expr)?;
                    if !allowed.contains(&root.as_str()) {
                        return Err(format!(
                            "unknown variable {{{root}}} in the prompt; available: {}",
                            allowed.join(", ")
                        ));
                    }
                    if root == "current_datetime" && !path.is_empty() {
                        return Err(format!(
                            "variable {{{expr}}}: current_datetime has no fields"
                        ));
                    }
                    if seen.contains(&expr) {
                        return Err(format!(
                            "variable {{{expr}}} appears more than once in the prompt"
                        ));
                    }
                    seen.push(expr.clone());
                    if !lit.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut lit)));
                    }
                    segments.push(Segment::Var {
                        root,
                        path,
                        text: expr,
                    });
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            segments.push(Segment::Literal(lit));
        }
        Ok(Template { segments })
    }

    pub fn uses(&self, root: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Var { root: r, .. } if r == root))
    }

    pub fn render(&self, ctx: &PromptContext) -> String {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Var { root, path, .. } => {
                    let base = match root.as_str() {
                        "participant_data" => &ctx.participant_data,
                        "session_state" => &ctx.session_state,
                        "temp_state" => &ctx.temp_state,
                        _ => {
                            out.push_str(&ctx.current_datetime);
                            continue;
                        }
                    };
                    out.push_str(&display(lookup(base, path)));
                }
            }
        }
        out
    }
}

fn lookup<'a>(mut v: &'a Value, path: &[PathSeg]) -> Option<&'a Value> {
    for seg in path {
        v = match (seg, v) {
            (PathSeg::Key(k), Value::Object(m)) => m.get(k)?,
            (PathSeg::Index(i), Value::Array(a)) => a.get(*i)?,
            (PathSeg::Index(i), Value::Object(m)) => m.get(&i.to_string())?,
            _ => return None,
        };
    }
    Some(v)
}

fn display(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn ctx() -> PromptContext {
        PromptContext {
            participant_data: json!({"name": "Ana", "tasks": [{"name": "walk"}], "age": 30}),
            session_state: json!({"step": 2}),
            temp_state: json!({}),
            current_datetime: "Wednesday, 25 November 2026".into(),
        }
    }

    #[test]
    fn renders_paths_and_literals() {
        let t = Template::parse("Hi {participant_data.name}, task {participant_data.tasks[0].name}; step {session_state.step}; {{literal}} on {current_datetime}.").unwrap();
        assert_eq!(
            t.render(&ctx()),
            "Hi Ana, task walk; step 2; {literal} on Wednesday, 25 November 2026."
        );
    }

    #[test]
    fn missing_keys_render_empty() {
        let t = Template::parse(
            "[{participant_data.nope.deeper}][{temp_state.x[3]}][{participant_data.tasks[9]}]",
        )
        .unwrap();
        assert_eq!(t.render(&ctx()), "[][][]");
    }

    #[test]
    fn whole_objects_render_as_json() {
        let t = Template::parse("{participant_data}").unwrap();
        assert_eq!(
            t.render(&ctx()),
            r#"{"age":30,"name":"Ana","tasks":[{"name":"walk"}]}"#
        );
    }

    #[test]
    fn rejects_bad_templates_naming_the_variable() {
        for (text, needle) in [
            ("{nope}", "{nope}"),
            ("{participant_data:>10}", "{participant_data}"),
            ("{session_state!r}", "{session_state}"),
            (
                "{participant_data.name} {participant_data.name}",
                "more than once",
            ),
            ("{}", "empty"),
            ("a } b", "single '}'"),
            ("a { b } c", "unknown variable {b}"),
            ("{current_datetime.x}", "no fields"),
            ("unclosed {participant_data", "unclosed"),
        ] {
            let err = Template::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    proptest! {
        #[test]
        fn text_without_braces_is_itself(s in "[^{}]*") {
            let t = Template::parse(&s).unwrap();
            prop_assert_eq!(t.render(&PromptContext::default()), s);
        }

        #[test]
        fn never_panics(s in ".*") {
            if let Ok(t) = Template::parse(&s) {
                let _ = t.render(&ctx());
            }
        }

        #[test]
        fn doubled_braces_round_trip(s in "[a-z {}]*") {
            let escaped = s.replace('{', "{{").replace('}', "}}");
            let t = Template::parse(&escaped).unwrap();
            prop_assert_eq!(t.render(&PromptContext::default()), s);
        }
    }
}
