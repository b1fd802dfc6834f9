//! The calculator tool: arithmetic only, by evalexpr over a context that
//! holds nothing but two constants. No assignment, no strings, no I/O.

use evalexpr::{ContextWithMutableVariables, DefaultNumericTypes, HashMapContext};

type Value = evalexpr::Value<DefaultNumericTypes>;

pub const MAX_LEN: usize = 200;

/// Python-style names the original's calculator understands, as evalexpr's.
const FUNCTIONS: &[(&str, &str)] = &[
    ("sqrt", "math::sqrt"),
    ("sin", "math::sin"),
    ("cos", "math::cos"),
    ("tan", "math::tan"),
    ("asin", "math::asin"),
    ("acos", "math::acos"),
    ("atan", "math::atan"),
    ("log", "math::ln"),
    ("log10", "math::log10"),
    ("log2", "math::log2"),
    ("exp", "math::exp"),
    ("abs", "math::abs"),
];

fn translate(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '*' && chars.get(i + 1) == Some(&'*') {
            out.push('^');
            i += 2;
            continue;
        }
        if chars[i].is_ascii_alphabetic()
            && (i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == ':'))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mapped = FUNCTIONS
                .iter()
                .find(|(py, _)| *py == word)
                .map_or(word.as_str(), |(_, ours)| ours);
            out.push_str(mapped);
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The value of an arithmetic expression, as text.
pub fn calculate(expression: &str) -> Result<String, String> {
    if expression.chars().count() > MAX_LEN {
        return Err(format!(
            "Error: the expression is over {MAX_LEN} characters"
        ));
    }
    let mut context = HashMapContext::<DefaultNumericTypes>::new();
    let constants = [("pi", std::f64::consts::PI), ("e", std::f64::consts::E)];
    for (name, v) in constants {
        context
            .set_value(name.to_string(), Value::Float(v))
            .map_err(|e| format!("Error: {e}"))?;
    }
    match evalexpr::eval_with_context(&translate(expression), &context) {
        Ok(Value::Int(i)) => Ok(i.to_string()),
        Ok(Value::Float(f)) if f.is_finite() => {
            // Whole results read as integers; others keep 12 significant digits.
            if f.fract() == 0.0 && f.abs() < 1e15 {
                Ok(format!("{f:.0}"))
            } else {
                Ok(format!("{}", (f * 1e12).round() / 1e12))
            }
        }
        Ok(Value::Float(_)) => Err("Error: the result is not a finite number".into()),
        Ok(other) => Err(format!("Error: not a number: {other}")),
        Err(e) => Err(format!("Error: {e}")),
    }
}
