//! The template node (the original's Render Template): sandboxed Jinja over
//! the run's variables. The same variables serve the email node's fields.

use domain::jinja;
use domain::pipeline::TemplateParams;
use serde_json::{Value, json};

use super::{Done, NodeCx};
use crate::TurnError;

/// The variables of a Jinja field, as the original names them.
pub(super) fn variables(cx: &NodeCx<'_, '_>) -> Value {
    let p = &cx.run.participant;
    json!({
        "input": cx.input,
        "node_inputs": cx.inputs,
        "temp_state": cx.state.temp_state,
        "session_state": cx.state.session_state,
        "participant_data": cx.state.participant_data,
        "participant_details": {"identifier": p.identifier, "platform": p.platform},
        "participant_schedules": p.schedules,
        "input_message_id": cx.run.input_message_id.map(i64::from),
    })
}

/// Renders one field; an error names the field and the variables there are.
pub(super) fn field(cx: &NodeCx<'_, '_>, name: &str, source: &str) -> Result<String, TurnError> {
    jinja::render(name, source, &variables(cx)).map_err(|e| TurnError::Config(e.to_string()))
}

pub(super) fn render(cx: &NodeCx<'_, '_>, p: &TemplateParams) -> Result<Done, TurnError> {
    Ok(Done {
        output: field(cx, "template_string", &p.template_string)?,
        ..Default::default()
    })
}
