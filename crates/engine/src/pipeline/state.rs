//! The state one run shares between its nodes.

use serde_json::{Map, Value, json};

use super::RunInput;

/// State as the nodes of a wave see it.
#[derive(Debug, Clone)]
pub(super) struct Shared {
    pub participant_data: Value,
    pub session_state: Value,
    /// This run only: `user_input`, and `outputs` by node id (the original's names).
    pub temp_state: Value,
    /// The keyword each router that ran chose, by node id.
    pub routes: std::collections::BTreeMap<String, String>,
    /// The node whose output fed each node that ran (the first, on a merge).
    pub parents: std::collections::HashMap<String, String>,
}

impl Shared {
    pub fn new(run: &RunInput<'_>) -> Self {
        Shared {
            participant_data: run.prompt.participant_data.clone(),
            session_state: object_or_empty(&run.prompt.session_state),
            temp_state: json!({"user_input": run.input, "outputs": {}}),
            routes: Default::default(),
            parents: Default::default(),
        }
    }

    /// Temp state a code node set; `user_input` and `outputs` stay the run's.
    pub fn set_temp(&mut self, new: Value) {
        let Value::Object(mut new) = new else {
            return;
        };
        for k in ["user_input", "outputs"] {
            if let Some(v) = self.temp_state.get(k) {
                new.insert(k.to_string(), v.clone());
            }
        }
        self.temp_state = Value::Object(new);
    }

    pub fn record_output(&mut self, node_id: &str, output: &str) {
        if let Some(outputs) = self
            .temp_state
            .get_mut("outputs")
            .and_then(Value::as_object_mut)
        {
            outputs.insert(node_id.to_string(), Value::String(output.to_string()));
        }
    }
}

fn object_or_empty(v: &Value) -> Value {
    match v {
        Value::Object(_) => v.clone(),
        _ => Value::Object(Map::new()),
    }
}

/// The value at a dotted path (`a.b.0.c`: keys, and indexes into lists).
pub fn lookup<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(root, |v, seg| match v {
            Value::Object(o) => o.get(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths() {
        let v = json!({"a": {"b": [{"c": "x"}], "n": 3}});
        assert_eq!(lookup(&v, "a.b.0.c"), Some(&json!("x")));
        assert_eq!(lookup(&v, "a.n"), Some(&json!(3)));
        assert_eq!(lookup(&v, "a.b.1"), None);
        assert_eq!(lookup(&v, "a.n.x"), None);
        assert_eq!(lookup(&v, "missing"), None);
    }
}
