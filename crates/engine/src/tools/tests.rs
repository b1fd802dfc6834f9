use serde_json::json;

use super::*;

fn state() -> ToolState {
    ToolState {
        participant_data: json!({"name": "Ana"}),
        session_state: json!({"remote_context": {"page": "home"}}),
        participant_changed: false,
        session_changed: false,
        end_session: false,
        reminders: None,
        schedule_changes: Vec::new(),
    }
}

#[test]
fn every_tool_has_a_spec_under_the_originals_name() {
    for (name, _) in domain::pipeline::AGENT_TOOLS {
        let s = spec(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(s.name, *name);
        assert_eq!(s.parameters["type"], "object");
    }
    assert!(spec("rm-rf").is_none());
}

#[test]
fn session_state_tools() {
    let mut st = state();
    assert!(
        run(
            "set-session-state",
            &json!({"key": "step", "value": 2}),
            &mut st
        )
        .is_ok()
    );
    assert_eq!(st.session_state["step"], 2);
    assert!(st.session_changed);
    assert_eq!(
        run("get-session-state", &json!({"key": "step"}), &mut st).unwrap(),
        "The value for key 'step' is: 2"
    );
    assert!(
        run("get-session-state", &json!({"key": "nope"}), &mut st)
            .unwrap()
            .starts_with("No value")
    );
    run(
        "append-to-session-state",
        &json!({"key": "seen", "value": "a"}),
        &mut st,
    )
    .unwrap();
    run(
        "append-to-session-state",
        &json!({"key": "seen", "value": ["b", "c"]}),
        &mut st,
    )
    .unwrap();
    assert_eq!(st.session_state["seen"], json!(["a", "b", "c"]));
    run(
        "increment-session-state-counter",
        &json!({"counter": "q"}),
        &mut st,
    )
    .unwrap();
    let msg = run(
        "increment-session-state-counter",
        &json!({"counter": "q", "value": 5}),
        &mut st,
    )
    .unwrap();
    assert_eq!(st.session_state["_counter_q"], 6);
    assert!(msg.ends_with("The new value is 6."));
    let e = run(
        "set-session-state",
        &json!({"key": "remote_context", "value": 1}),
        &mut st,
    )
    .unwrap_err();
    assert!(e.contains("read-only"), "{e}");
    assert!(
        run("set-session-state", &json!({"key": "k"}), &mut st)
            .unwrap_err()
            .contains("\"value\"")
    );
}

#[test]
fn participant_data_tools_and_ending() {
    let mut st = state();
    run(
        "update-user-data",
        &json!({"key": "city", "value": "Oslo"}),
        &mut st,
    )
    .unwrap();
    run(
        "append-to-participant-data",
        &json!({"key": "name", "value": "Anna"}),
        &mut st,
    )
    .unwrap();
    run("increment-counter", &json!({"counter": "visits"}), &mut st).unwrap();
    assert_eq!(
        st.participant_data,
        json!({"name": ["Ana", "Anna"], "city": "Oslo", "_counter_visits": 1})
    );
    assert!(st.participant_changed && !st.session_changed && !st.end_session);
    run("end-session", &json!({}), &mut st).unwrap();
    assert!(st.end_session);
    assert!(run("nope", &json!({}), &mut st).is_err());
}

#[test]
fn calculator_is_arithmetic_only() {
    assert_eq!(calculate("2 + 3 * 4").unwrap(), "14");
    assert_eq!(calculate("2 ** 10").unwrap(), "1024");
    assert_eq!(calculate("sqrt(16) + abs(-2)").unwrap(), "6");
    assert_eq!(calculate("2.5 + 3.7").unwrap(), "6.2");
    assert_eq!(calculate("round(pi * 100)").unwrap(), "314");
    assert!(calculate("1 / 0").is_err());
    assert!(calculate("x = 5").is_err());
    assert!(calculate("\"a\" + \"b\"").is_err());
    assert!(calculate(&"1+".repeat(150)).unwrap_err().contains("200"));
}
