//! Sandboxed Jinja for the template and email nodes (the original's Render
//! Template and Send Email): no loader, so no file or include can be reached;
//! strict undefined, so a misspelt variable is an error rather than empty
//! text; and a fuel limit, so a template cannot loop for ever.
//!
//! Errors name the field and, for undefined values, list the variables the
//! template could have used (the original's ADR-0033 shape).

use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value;

/// Instructions one render may execute (a loop over 10,000 items fits).
pub const FUEL: u64 = 100_000;
/// The longest text a render may produce.
pub const MAX_OUTPUT: usize = 1024 * 1024;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env
}

/// Why a template could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JinjaError {
    pub field: String,
    pub message: String,
    /// The variables the template could use, when the error is an undefined one.
    pub available: Vec<String>,
}

impl std::fmt::Display for JinjaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)?;
        if !self.available.is_empty() {
            write!(f, " (available variables: {})", self.available.join(", "))?;
        }
        Ok(())
    }
}

fn describe(e: &minijinja::Error) -> String {
    let mut msg = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (line {line})"));
    }
    msg
}

/// Checks the syntax of `source` (on save).
pub fn check(field: &str, source: &str) -> Result<(), JinjaError> {
    let env = environment();
    env.template_from_str(source)
        .map(|_| ())
        .map_err(|e| JinjaError {
            field: field.to_string(),
            message: describe(&e),
            available: Vec::new(),
        })
}

/// Renders `source` over `context` (a JSON object of variables).
pub fn render(field: &str, source: &str, context: &Value) -> Result<String, JinjaError> {
    let env = environment();
    let fail = |e: minijinja::Error| {
        let available = match e.kind() {
            ErrorKind::UndefinedError => context
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        JinjaError {
            field: field.to_string(),
            message: describe(&e),
            available,
        }
    };
    let template = env.template_from_str(source).map_err(fail)?;
    let out = template
        .render(minijinja::Value::from_serialize(context))
        .map_err(|e| {
            let mut err = fail(e);
            // Name the variables the template uses that the context does not have.
            let mut missing: Vec<String> = template
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| context.get(v).is_none())
                .collect();
            missing.sort();
            if !err.available.is_empty() && !missing.is_empty() {
                err.message = format!("{} (unknown: {})", err.message, missing.join(", "));
            }
            err
        })?;
    if out.len() > MAX_OUTPUT {
        return Err(JinjaError {
            field: field.to_string(),
            message: format!("the rendered text is over {MAX_OUTPUT} bytes"),
            available: Vec::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_with_strict_undefined_and_fuel() {
        let ctx = json!({"input": "hi", "participant_data": {"name": "Ann"}});
        assert_eq!(
            render("t", "{{ input }}, {{ participant_data.name }}!", &ctx).unwrap(),
            "hi, Ann!"
        );
        let e = render("template_string", "{{ nope }}", &ctx).unwrap_err();
        assert_eq!(e.field, "template_string");
        assert!(e.message.contains("undefined"), "{e}");
        assert!(e.message.contains("unknown: nope"), "{e}");
        assert_eq!(e.available, ["input", "participant_data"]);
        assert!(
            e.to_string()
                .contains("available variables: input, participant_data")
        );
        let e = render(
            "t",
            "{% for i in range(100000) %}{% for j in range(100) %}x{% endfor %}{% endfor %}",
            &ctx,
        )
        .unwrap_err();
        assert!(e.message.contains("fuel"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = check("body", "ok\n{% if x %}never closed").unwrap_err();
        assert_eq!(e.field, "body");
        assert!(e.message.contains("line"), "{e}");
        assert!(check("body", "{{ a | upper }}").is_ok());
        // No loader: includes cannot reach anything.
        assert!(render("t", "{% include 'x.html' %}", &json!({})).is_err());
    }
}
