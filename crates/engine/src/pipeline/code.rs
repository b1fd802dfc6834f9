//! The Python node (the original's `CodeNode`): the author's `main(input,
//! **kwargs)` runs in the sandbox, and its helper calls are answered here
//! from a copy of the run's state. What the code changes (participant
//! data, temp and session state, tags, the session's end, files) becomes
//! the node's [`Done`] and so commits with the turn; a node that fails
//! changes nothing.
//!
//! Control flow as in the original: `abort_with_message` ends the whole
//! run and the message becomes the reply (the aborting node's own changes
//! are dropped, as the original's interrupt drops them); `wait_for_next_input`
//! and an unmet `require_node_outputs` end this branch without output, so a
//! run in which no branch reaches the end sends no reply.

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::pipeline::CodeParams;
use domain::turns::GeneratedFile;
use sandbox::value::{to_json, to_python, type_name};
use sandbox::{Call, ExcType, MontyException, MontyObject, Reply};
use serde_json::{Map, Value, json};

use super::{Done, NodeCx, NodeError};
use crate::{Engine, TurnError};

/// HTTP requests one run may make (the original's limit).
const MAX_HTTP_REQUESTS: usize = 10;
/// Files one run may attach, and the bytes of each.
const MAX_FILES: usize = 10;
const MAX_FILE_BYTES: usize = 10 << 20;
/// Temp state keys code may read but not set.
const READ_ONLY_TEMP_KEYS: &[&str] = &["user_input", "outputs", "attachments"];

/// How the code ended the node, besides returning.
#[derive(Debug, Default)]
enum Flow {
    #[default]
    Continue,
    Abort {
        message: String,
        tag: Option<String>,
    },
    Wait,
}

/// The helpers' view of the run: copies the code may change.
struct Helpers<'e, 'c, 'r, 'a> {
    engine: &'e Engine,
    cx: &'c NodeCx<'r, 'a>,
    participant_data: Map<String, Value>,
    participant_changed: bool,
    session_state: Map<String, Value>,
    session_changed: bool,
    temp_state: Map<String, Value>,
    temp_changed: bool,
    message_tags: Vec<String>,
    session_tags: Vec<String>,
    end_session: bool,
    files: Vec<GeneratedFile>,
    http_requests: usize,
    flow: Flow,
}

fn raise(kind: ExcType, message: impl Into<String>) -> Reply {
    Reply::Raise(MontyException::new(kind, Some(message.into())))
}

fn ret(v: Value) -> Reply {
    Reply::Return(to_python(&v))
}

/// Positional then keyword arguments, by name.
struct Args {
    positional: Vec<MontyObject>,
    named: BTreeMap<String, MontyObject>,
}

impl Args {
    fn new(call: Call) -> Self {
        let named = call
            .kwargs
            .into_iter()
            .filter_map(|(k, v)| match k {
                MontyObject::String(s) => Some((s, v)),
                _ => None,
            })
            .collect();
        Args {
            positional: call.args,
            named,
        }
    }

    fn get(&self, index: usize, name: &str) -> Option<&MontyObject> {
        self.positional.get(index).or_else(|| self.named.get(name))
    }

    fn text(&self, index: usize, name: &str) -> Result<String, Reply> {
        match self.get(index, name) {
            Some(MontyObject::String(s)) => Ok(s.clone()),
            Some(other) => Err(raise(
                ExcType::TypeError,
                format!("{name} must be a str, not {}", type_name(other)),
            )),
            None => Err(raise(
                ExcType::TypeError,
                format!("missing required argument: '{name}'"),
            )),
        }
    }

    fn json(&self, index: usize, name: &str) -> Result<Value, Reply> {
        let v = self.get(index, name).ok_or_else(|| {
            raise(
                ExcType::TypeError,
                format!("missing required argument: '{name}'"),
            )
        })?;
        to_json(v).map_err(|what| {
            raise(
                ExcType::ValueError,
                format!("Value is not JSON serializable: {what}"),
            )
        })
    }
}

fn object_of(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[async_trait]
impl sandbox::Host for Helpers<'_, '_, '_, '_> {
    async fn call(&mut self, call: Call) -> Reply {
        let name = call.name.clone();
        let args = Args::new(call);
        match self.answer(&name, args).await {
            Ok(r) | Err(r) => r,
        }
    }
}

impl Helpers<'_, '_, '_, '_> {
    async fn answer(&mut self, name: &str, a: Args) -> Result<Reply, Reply> {
        Ok(match name {
            "get_participant_data" => ret(Value::Object(self.participant_data.clone())),
            "set_participant_data" => {
                let Value::Object(data) = a.json(0, "data")? else {
                    return Err(raise(ExcType::ValueError, "Data must be a dictionary"));
                };
                self.participant_data.extend(data);
                self.participant_changed = true;
                ret(Value::Null)
            }
            "set_participant_data_key" => {
                let key = a.text(0, "key")?;
                let value = a.json(1, "value")?;
                self.participant_data.insert(key, value);
                self.participant_changed = true;
                ret(Value::Null)
            }
            "append_to_participant_data_key" => {
                let key = a.text(0, "key")?;
                let value = a.json(1, "value")?;
                let data = &mut self.participant_data;
                let mut list = match data.remove(&key) {
                    Some(Value::Array(l)) => l,
                    Some(other) => vec![other],
                    None => Vec::new(),
                };
                match value {
                    Value::Array(more) => list.extend(more),
                    one => list.push(one),
                }
                data.insert(key, Value::Array(list.clone()));
                self.participant_changed = true;
                ret(Value::Array(list))
            }
            "increment_participant_data_key" => {
                let key = a.text(0, "key")?;
                let by = match a.get(1, "increment") {
                    None => json!(1),
                    Some(MontyObject::Int(i)) => json!(i),
                    Some(MontyObject::Float(f)) => json!(f),
                    Some(other) => {
                        return Err(raise(
                            ExcType::TypeError,
                            format!("increment must be a number, not {}", type_name(other)),
                        ));
                    }
                };
                let data = &mut self.participant_data;
                let current = data.get(&key).filter(|v| v.is_number()).cloned();
                let new = match (current.as_ref().and_then(Value::as_i64), by.as_i64()) {
                    (Some(c), Some(b)) => json!(c.saturating_add(b)),
                    (None, Some(b)) if current.is_none() => json!(b),
                    _ => json!(
                        current.as_ref().and_then(Value::as_f64).unwrap_or(0.0)
                            + by.as_f64().unwrap_or(0.0)
                    ),
                };
                data.insert(key, new.clone());
                self.participant_changed = true;
                ret(new)
            }
            "get_participant_schedules" => ret(match &self.cx.run.participant.schedules {
                Value::Array(_) => self.cx.run.participant.schedules.clone(),
                _ => json!([]),
            }),
            "get_temp_state_key" => {
                let key = a.text(0, "key_name")?;
                ret(self.temp_state.get(&key).cloned().unwrap_or(Value::Null))
            }
            "set_temp_state_key" => {
                let key = a.text(0, "key_name")?;
                if READ_ONLY_TEMP_KEYS.contains(&key.as_str()) {
                    return Err(raise(
                        ExcType::ValueError,
                        format!("Cannot set the '{key}' key of the temporary state"),
                    ));
                }
                let value = a.json(1, "value")?;
                self.temp_state.insert(key, value);
                self.temp_changed = true;
                ret(Value::Null)
            }
            "get_session_state_key" => {
                let key = a.text(0, "key_name")?;
                ret(self.session_state.get(&key).cloned().unwrap_or(Value::Null))
            }
            "set_session_state_key" => {
                let key = a.text(0, "key_name")?;
                if sandbox::source::RESERVED_SESSION_KEYS.contains(&key.trim()) {
                    return Err(raise(
                        ExcType::ValueError,
                        format!(
                            "The key '{key}' is a reserved session state key and is read-only."
                        ),
                    ));
                }
                let value = a.json(1, "value")?;
                self.session_state.insert(key, value);
                self.session_changed = true;
                ret(Value::Null)
            }
            "get_node_output" => {
                let node = a.text(0, "node_name")?;
                ret(self.output(&node).cloned().unwrap_or(Value::Null))
            }
            "get_selected_route" => {
                let node = a.text(0, "router_node_name")?;
                ret(self
                    .cx
                    .state
                    .routes
                    .get(&node)
                    .map_or(Value::Null, |r| json!(r)))
            }
            "get_all_routes" => ret(json!(self.cx.state.routes)),
            "get_node_path" => {
                let node = a.text(0, "node_name")?;
                ret(json!(self.path_to(&node)))
            }
            "add_message_tag" => {
                let tag = a.text(0, "tag")?;
                if !self.message_tags.contains(&tag) {
                    self.message_tags.push(tag);
                }
                ret(Value::Null)
            }
            "add_session_tag" => {
                let tag = a.text(0, "tag")?;
                if !self.session_tags.contains(&tag) {
                    self.session_tags.push(tag);
                }
                ret(Value::Null)
            }
            "end_session" => {
                self.end_session = true;
                ret(Value::Null)
            }
            "abort_with_message" => {
                let message = a.text(0, "message")?;
                let tag = match a.get(1, "tag_name") {
                    None | Some(MontyObject::None) => None,
                    Some(_) => Some(a.text(1, "tag_name")?),
                };
                self.flow = Flow::Abort { message, tag };
                stop("abort_with_message")
            }
            "wait_for_next_input" => {
                self.flow = Flow::Wait;
                stop("Waiting for next input")
            }
            "require_node_outputs" => {
                let names: Vec<MontyObject> = match a.positional.as_slice() {
                    [MontyObject::List(l)] => l.clone(),
                    other => other.to_vec(),
                };
                let mut missing = None;
                for n in &names {
                    let MontyObject::String(n) = n else {
                        return Err(raise(
                            ExcType::TypeError,
                            "Node names passed to 'require_node_outputs' must be a string",
                        ));
                    };
                    if self.output(n).is_none() && missing.is_none() {
                        missing = Some(n.clone());
                    }
                }
                match missing {
                    Some(n) => {
                        self.flow = Flow::Wait;
                        stop(&format!("Node '{n}' has not produced any output yet"))
                    }
                    None => ret(Value::Null),
                }
            }
            "add_file_attachment" => self.attach(&a).await?,
            "_cs_http" => self.http(&a).await?,
            other => raise(ExcType::NameError, format!("name '{other}' is not defined")),
        })
    }

    fn output(&self, node: &str) -> Option<&Value> {
        self.cx.state.temp_state.get("outputs")?.get(node)
    }

    /// The nodes leading to `node`, first to last (the original's
    /// `get_node_path`): a node that has not run is a path of itself.
    fn path_to(&self, node: &str) -> Vec<String> {
        let mut path = vec![node.to_string()];
        let mut current = node.to_string();
        while path.len() <= self.cx.run.pipeline.nodes.len() {
            let parent = if current == self.cx.node.id {
                self.cx.sources.first().cloned()
            } else {
                self.cx.state.parents.get(&current).cloned()
            };
            match parent {
                Some(p) => {
                    path.insert(0, p.clone());
                    current = p;
                }
                None => break,
            }
        }
        path
    }

    async fn attach(&mut self, a: &Args) -> Result<Reply, Reply> {
        let filename = a.text(0, "filename")?;
        let Some(MontyObject::Bytes(content)) = a.get(1, "content") else {
            return Err(raise(ExcType::TypeError, "'content' must be bytes"));
        };
        let content_type = match a.get(2, "content_type") {
            None | Some(MontyObject::None) => None,
            Some(_) => Some(a.text(2, "content_type")?),
        };
        if self.cx.run.session_id.is_none() {
            return Err(raise(
                ExcType::RuntimeError,
                "Cannot attach files without an active session",
            ));
        }
        if self.files.len() >= MAX_FILES {
            return Err(raise(
                ExcType::RuntimeError,
                format!("at most {MAX_FILES} files can be attached to one reply"),
            ));
        }
        if content.len() > MAX_FILE_BYTES {
            return Err(raise(
                ExcType::ValueError,
                format!("a file can be at most {} MiB", MAX_FILE_BYTES >> 20),
            ));
        }
        let content_type = content_type.unwrap_or_else(|| {
            mime_guess::from_path(&filename)
                .first_or_octet_stream()
                .to_string()
        });
        let key = domain::files::store_bytes(
            &self.engine.domain.files,
            self.cx.run.team_id,
            &filename,
            bytes::Bytes::from(content.clone()),
        )
        .await
        .map_err(|e| {
            raise(
                ExcType::RuntimeError,
                format!("the file could not be stored: {e}"),
            )
        })?;
        self.files.push(GeneratedFile {
            name: filename,
            key,
            content_type,
            size: i64::try_from(content.len()).unwrap_or(i64::MAX),
        });
        Ok(ret(Value::Null))
    }

    async fn http(&mut self, a: &Args) -> Result<Reply, Reply> {
        self.http_requests += 1;
        if self.http_requests > MAX_HTTP_REQUESTS {
            return Err(raise(
                ExcType::RuntimeError,
                format!("Request limit of {MAX_HTTP_REQUESTS} exceeded"),
            ));
        }
        let method = a.text(0, "method")?;
        let url = a.text(1, "url")?;
        let options = match a.get(2, "options") {
            Some(o) => to_json(o).map_err(|what| {
                raise(
                    ExcType::ValueError,
                    format!("a request cannot carry {what}"),
                )
            })?,
            None => json!({}),
        };
        let request = crate::pipeline::code_http::Request {
            method,
            url,
            options,
        };
        match crate::pipeline::code_http::send(&self.engine.outbound, request).await {
            Ok(resp) => Ok(Reply::Return(resp)),
            Err((kind, message)) => Err(raise(kind, message)),
        }
    }
}

/// Ends the run where the code is; the code cannot catch it.
fn stop(message: &str) -> Reply {
    Reply::Stop(MontyException::new(
        ExcType::RuntimeError,
        Some(message.to_string()),
    ))
}

impl Engine {
    pub(super) async fn code_node(
        &self,
        cx: &NodeCx<'_, '_>,
        p: &CodeParams,
    ) -> Result<Done, NodeError> {
        let pool = self.sandbox.as_ref().ok_or_else(|| {
            TurnError::Config("Python nodes cannot run: this server has no sandbox workers".into())
        })?;
        let mut helpers = Helpers {
            engine: self,
            cx,
            participant_data: object_of(&cx.state.participant_data),
            participant_changed: false,
            session_state: object_of(&cx.state.session_state),
            session_changed: false,
            temp_state: object_of(&cx.state.temp_state),
            temp_changed: false,
            message_tags: Vec::new(),
            session_tags: Vec::new(),
            end_session: false,
            files: Vec::new(),
            http_requests: 0,
            flow: Flow::Continue,
        };
        let kwargs = MontyObject::dict(vec![(
            MontyObject::String("node_inputs".into()),
            MontyObject::List(
                cx.inputs
                    .iter()
                    .map(|i| MontyObject::String(i.clone()))
                    .collect(),
            ),
        )]);
        let source = p.source();
        let run = pool
            .run(
                source,
                MontyObject::String(cx.input.clone()),
                kwargs,
                p.limits(),
                &mut helpers,
            )
            .await;
        let outcome = run.map_err(|e| NodeError {
            error: TurnError::Code(e.to_string()),
            spent: Done::default(),
        })?;
        let console = (!outcome.print.is_empty()).then(|| {
            let mut c = outcome.print.clone();
            if outcome.print_truncated {
                c.push_str("\n… (more output not kept)");
            }
            c
        });
        match std::mem::take(&mut helpers.flow) {
            Flow::Abort { message, tag } => {
                return Ok(Done {
                    output: message.clone(),
                    abort: Some((message, tag)),
                    console,
                    ..Default::default()
                });
            }
            Flow::Wait => {
                return Ok(Done {
                    wait: true,
                    console,
                    ..Default::default()
                });
            }
            Flow::Continue => {}
        }
        let output = outcome.result.map_err(|e| NodeError {
            error: TurnError::Code(sandbox::errors::describe(&e, source)),
            spent: Done {
                console: console.clone(),
                ..Default::default()
            },
        })?;
        let mut reply_tags = helpers.message_tags;
        if !p.tag.is_empty() && !reply_tags.contains(&p.tag) {
            reply_tags.push(p.tag.clone());
        }
        Ok(Done {
            output,
            participant_data: helpers
                .participant_changed
                .then_some(Value::Object(helpers.participant_data)),
            session_state: helpers
                .session_changed
                .then_some(Value::Object(helpers.session_state)),
            temp_state: helpers
                .temp_changed
                .then_some(Value::Object(helpers.temp_state)),
            end_session: helpers.end_session,
            reply_tags,
            session_tags: helpers.session_tags,
            files: helpers.files,
            console,
            ..Default::default()
        })
    }
}
