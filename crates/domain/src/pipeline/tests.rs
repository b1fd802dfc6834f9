use serde_json::{Value, json};

use super::*;

fn p(v: Value) -> Pipeline {
    serde_json::from_value(v).unwrap()
}

fn err(v: Value) -> String {
    let e = match Pipeline::from_config(&json!({"pipeline": v})) {
        Ok(Some(pl)) => pl.validate().unwrap_err(),
        Ok(None) => panic!("no pipeline"),
        Err(e) => e,
    };
    match e {
        Error::Field { field, message } if field == "pipeline" => message,
        other => panic!("{other:?}"),
    }
}

fn llm(id: &str) -> Value {
    json!({"id": id, "type": "llm", "params": {"provider": "p", "model": "m", "prompt": "hi {participant_data.name}"}})
}

fn start() -> Value {
    json!({"id": "s", "type": "start"})
}

fn end() -> Value {
    json!({"id": "e", "type": "end"})
}

/// start → router r (keywords a, b) → llm a / llm b → end.
fn routed(router_params: Value) -> Value {
    json!({
        "nodes": [start(), end(), {"id": "r", "type": "router", "params": router_params}, llm("a"), llm("b")],
        "edges": [
            {"from": "s", "to": "r"},
            {"from": "r", "to": "a", "handle": "output_0"},
            {"from": "r", "to": "b", "handle": "output_1"},
            {"from": "a", "to": "e"}, {"from": "b", "to": "e"}
        ]
    })
}

fn router_params() -> Value {
    json!({"provider": "p", "model": "m", "prompt": "Pick", "keywords": ["SALES", "SUPPORT"]})
}

/// start → one node `n` of `kind` → end.
fn single(kind: &str, params: Value) -> Value {
    json!({"nodes": [start(), end(), {"id": "n", "type": kind, "params": params}],
           "edges": [{"from": "s", "to": "n"}, {"from": "n", "to": "e"}]})
}

#[test]
fn single_llm_is_valid_and_ordered() {
    let v = Pipeline::single_llm("p", "m", "Be nice")
        .validate()
        .unwrap();
    let ids: Vec<&str> = v.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["start", "llm", "end"]);
    assert_eq!(Pipeline::single_llm("p", "m", "x").providers(), ["p"]);
}

#[test]
fn graph_errors() {
    assert!(err(json!({"nodes": [end()], "edges": []})).contains("exactly one start"));
    assert!(err(json!({"nodes": [start(), start()], "edges": []})).contains("used twice"));
    assert!(
        err(json!({"nodes": [start(), end(), llm("a")], "edges": [{"from": "s", "to": "e"}]}))
            .contains("\"a\" is not reachable")
    );
    let cyc = err(
        json!({"nodes": [start(), end(), llm("a"), llm("b")], "edges": [
        {"from": "s", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "a"}, {"from": "b", "to": "e"}]}),
    );
    assert!(cyc.contains("cycle through a, b"), "{cyc}");
    assert!(
        err(json!({"nodes": [start(), end()], "edges": [{"from": "s", "to": "x"}]}))
            .contains("unknown node")
    );
    assert!(err(json!({"nodes": [start(), end(), llm("a")], "edges": [{"from": "s", "to": "a"}, {"from": "s", "to": "e"}]})).contains("\"a\" has no path to the end"));
    let unknown =
        err(json!({"nodes": [start(), end(), {"id": "r", "type": "routr"}], "edges": []}));
    assert!(
        unknown.contains("node \"r\" (routr): unknown node type"),
        "{unknown}"
    );
    assert!(unknown.contains("static_router"), "{unknown}");
}

#[test]
fn param_errors_name_node_and_field() {
    let with = |params: Value| err(single("llm", params));
    assert!(with(json!({"provider": "p", "model": "m", "prompt": "{bogus}"})).contains("{bogus}"));
    assert!(
        with(json!({"provider": "p", "model": "m", "temperature": 3.0}))
            .contains("node \"n\" (llm): params.temperature")
    );
    assert!(with(json!({"provider": "", "model": "m"})).contains("params.provider"));
    assert!(with(json!({"provider": "p"})).contains("model"));
    let mode = with(json!({"provider": "p", "model": "m", "history": {"mode": "forever"}}));
    assert!(mode.contains("params.history.mode"), "{mode}");
    let typo = with(json!({"provider": "p", "model": "m", "promt": "x"}));
    assert!(
        typo.contains("params.promt") && typo.contains("unknown field"),
        "{typo}"
    );
    let named = with(json!({"provider": "p", "model": "m", "history": {"type": "named"}}));
    assert!(named.contains("history.name"), "{named}");
    let e = err(
        json!({"nodes": [{"id": "s", "type": "start", "params": {"x": 1}}, end()],
                       "edges": [{"from": "s", "to": "e"}]}),
    );
    assert!(e.contains("takes no params"), "{e}");
}

#[test]
fn unknown_keys_anywhere_are_refused_with_their_path() {
    let e =
        err(json!({"nodes": [start(), end()], "edges": [{"from": "s", "to": "e", "hndle": "x"}]}));
    assert!(e.contains("edges[0]") && e.contains("hndle"), "{e}");
    let e = err(json!({"nodes": [{"id": "s", "type": "start", "parms": {}}, end()], "edges": []}));
    assert!(e.contains("nodes[0]") && e.contains("parms"), "{e}");
    let e = err(json!({"nodes": [start(), end()], "edgs": []}));
    assert!(e.contains("edgs"), "{e}");
}

#[test]
fn routers_and_their_handles() {
    let v = p(routed(router_params())).validate().unwrap();
    let r = v.node("r").unwrap();
    assert_eq!(r.node.handles(), Some(2));
    match &r.node {
        Node::Router(r) => {
            assert_eq!(r.history.kind, HistoryType::Node, "node-scoped by default");
            assert_eq!(r.default_keyword_index, 0);
        }
        other => panic!("{other:?}"),
    }
    // A keyword without an edge.
    let mut three = router_params();
    three["keywords"] = json!(["SALES", "SUPPORT", "OTHER"]);
    let e = err(routed(three));
    assert!(
        e.contains("node \"r\" (router): keyword \"OTHER\" (output_2) has no edge"),
        "{e}"
    );
    // A handle past the keywords, a router edge with none, a handle on a non-router.
    let mut g = routed(router_params());
    g["edges"][2]["handle"] = json!("output_5");
    assert!(err(g).contains("needs a handle output_0 … output_1"));
    let mut g = routed(router_params());
    g["edges"][1].as_object_mut().unwrap().remove("handle");
    assert!(err(g).contains("not none"));
    let mut g = routed(router_params());
    g["edges"][3]["handle"] = json!("output_0");
    assert!(err(g).contains("only for router edges"));
    // Keyword checks.
    let mut bad = router_params();
    bad["keywords"] = json!([]);
    assert!(err(routed(bad)).contains("params.keywords"));
    let mut bad = router_params();
    bad["keywords"] = json!(["A", "a"]);
    assert!(err(routed(bad)).contains("appears twice"));
    let mut bad = router_params();
    bad["default_keyword_index"] = json!(2);
    assert!(err(routed(bad)).contains("params.default_keyword_index"));
    // Routers see fewer prompt variables.
    let mut bad = router_params();
    bad["prompt"] = json!("Now: {current_datetime}");
    assert!(err(routed(bad)).contains("unknown variable {current_datetime}"));
}

#[test]
fn static_router_params() {
    let g = |params: Value| {
        let mut g = routed(json!({}));
        g["nodes"][2] = json!({"id": "r", "type": "static_router", "params": params});
        g
    };
    let ok = p(g(
        json!({"data_source": "session_state", "route_key": "a.b", "keywords": ["x", "y"]}),
    ))
    .validate()
    .unwrap();
    match &ok.node("r").unwrap().node {
        Node::StaticRouter(r) => assert_eq!(r.data_source, DataSource::SessionState),
        other => panic!("{other:?}"),
    }
    let e = err(g(
        json!({"data_source": "cookies", "route_key": "a", "keywords": ["x", "y"]}),
    ));
    assert!(
        e.contains("params.data_source") && e.contains("participant_data"),
        "{e}"
    );
    assert!(err(g(json!({"route_key": " ", "keywords": ["x", "y"]}))).contains("route_key"));
}

#[test]
fn template_email_and_extraction_params() {
    assert!(
        p(single(
            "template",
            json!({"template_string": "Hi {{ input }}"})
        ))
        .validate()
        .is_ok()
    );
    let e = err(single(
        "template",
        json!({"template_string": "{% if x %}unclosed"}),
    ));
    assert!(e.contains("params.template_string"), "{e}");
    let e = err(single(
        "send_email",
        json!({"recipient_list": "a@b.org", "subject": "{{ oops", "body": ""}),
    ));
    assert!(e.contains("params.subject"), "{e}");
    assert!(err(single("send_email", json!({"subject": "s"}))).contains("recipient_list"));
    let x = p(single(
        "update_participant_data",
        json!({"provider": "p", "model": "m", "data_schema": "{\"name\": \"the name\"}", "key_name": "profile"}),
    ))
    .validate()
    .unwrap();
    match &x.node("n").unwrap().node {
        Node::UpdateParticipantData(x) => {
            assert_eq!(x.data_schema, json!({"name": "the name"}));
            assert_eq!(x.key_name.as_deref(), Some("profile"));
        }
        other => panic!("{other:?}"),
    }
    let e = err(single(
        "extract_structured_data",
        json!({"provider": "p", "model": "m", "data_schema": "not json"}),
    ));
    assert!(e.contains("params.data_schema"), "{e}");
    let e = err(single(
        "extract_structured_data",
        json!({"provider": "p", "model": "m", "data_schema": {"a": "b"}, "key_name": "k"}),
    ));
    assert!(e.contains("only update_participant_data"), "{e}");
    let providers = p(routed(router_params())).providers();
    assert_eq!(providers, ["p"]);
}

mod from_the_original {
    use super::*;
    use crate::pipeline::original::{ImportOptions, from_original};

    fn fixture(name: &str) -> Value {
        let text = match name {
            "router" => include_str!("fixtures/router_bot.json"),
            "intake" => include_str!("fixtures/intake_bot.json"),
            _ => include_str!("fixtures/agent_bot.json"),
        };
        serde_json::from_str(text).unwrap()
    }

    fn with_provider() -> ImportOptions {
        ImportOptions {
            provider: Some("openai".into()),
            model: Some("gpt-4o".into()),
            skip_unsupported: false,
        }
    }

    #[test]
    fn a_router_bot_maps_node_for_node() {
        let imported = from_original(&fixture("router"), &with_provider()).unwrap();
        assert!(imported.left_out.is_empty());
        let v = imported.pipeline.validate().unwrap();
        let ids: Vec<&str> = v.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids[0], "start");
        assert_eq!(ids.len(), 6);
        let Node::Router(r) = &v.node("triage").unwrap().node else {
            panic!()
        };
        assert_eq!(r.keywords, ["BILLING", "OTHER"]);
        assert_eq!(r.default_keyword_index, 1);
        assert!(r.tag_output_message);
        assert_eq!(r.temperature, Some(0.1));
        assert_eq!(r.history.kind, HistoryType::Node);
        assert_eq!(r.provider, "openai");
        assert_eq!(r.model, "gpt-4o");
        let Node::Llm(b) = &v.node("billing").unwrap().node else {
            panic!()
        };
        assert_eq!(b.output_tag.as_deref(), Some("billing"));
        assert_eq!(b.history.mode, HistoryMode::MaxHistoryLength);
        assert_eq!(b.history.max_history_length, Some(6));
        let Node::Llm(o) = &v.node("other").unwrap().node else {
            panic!()
        };
        assert_eq!(o.history.kind, HistoryType::Named);
        assert_eq!(o.history.name.as_deref(), Some("shared"));
        assert_eq!(o.output_tag, None);
        let handles: Vec<Option<&str>> = v
            .outgoing("triage")
            .iter()
            .map(|e| e.handle.as_deref())
            .collect();
        assert_eq!(handles, [Some("output_0"), Some("output_1")]);
        assert!(v.outgoing("start").iter().all(|e| e.handle.is_none()));
        assert_eq!(v.node("triage").unwrap().node.provider(), Some("openai"));
    }

    #[test]
    fn an_intake_bot_with_extraction_static_routing_and_email() {
        let imported = from_original(
            &fixture("intake"),
            &ImportOptions {
                provider: Some("openai".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let v = imported.pipeline.validate().unwrap();
        let Node::UpdateParticipantData(x) = &v.node("learn").unwrap().node else {
            panic!()
        };
        assert_eq!(x.model, "gpt-4o-mini", "the node's own model name wins");
        assert_eq!(x.key_name, None);
        assert_eq!(x.data_schema["lang"], "their language");
        assert!(matches!(
            v.node("by_lang").unwrap().node,
            Node::StaticRouter(_)
        ));
        assert!(matches!(v.node("en").unwrap().node, Node::Template(_)));
        assert!(matches!(v.node("notify").unwrap().node, Node::SendEmail(_)));
    }

    #[test]
    fn what_cannot_be_mapped_is_reported_by_node() {
        let problems = from_original(&fixture("agent"), &ImportOptions::default()).unwrap_err();
        let all = problems.join("\n");
        assert!(
            all.contains("node \"agent\": the original's provider id 1"),
            "{all}"
        );
        assert!(all.contains("node \"agent\": tools"), "{all}");
        assert!(all.contains("node \"agent\": built_in_tools"), "{all}");
        assert!(
            all.contains("node \"agent\": model parameter \"reasoning_effort\""),
            "{all}"
        );
        assert!(
            all.contains("node \"helper\": OpenAI Assistant nodes"),
            "{all}"
        );
        assert!(!all.contains("node \"py\""), "Python nodes import: {all}");
        // Leaving out the unsupported settings still cannot drop a whole node.
        let mut o = with_provider();
        o.skip_unsupported = true;
        let problems = from_original(&fixture("agent"), &o).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(from_original(&json!({"edges": []}), &o).is_err());
    }
}

#[test]
fn agent_tools_are_checked_on_save() {
    let with = |prompt: &str, tools: Value| {
        single(
            "llm",
            json!({"provider": "p", "model": "m", "prompt": prompt, "tools": tools}),
        )
    };
    assert!(
        p(with(
            "",
            json!(["calculator", "set-session-state", "end-session"])
        ))
        .validate()
        .is_ok()
    );
    let e = err(with("Hi", json!(["update-user-data"])));
    assert!(
        e.contains("the update-user-data tool needs {participant_data} in the prompt"),
        "{e}"
    );
    assert!(
        p(with(
            "Known: {participant_data}",
            json!(["update-user-data"])
        ))
        .validate()
        .is_ok()
    );
    let e = err(with("Hi", json!(["one-off-reminder"])));
    assert!(e.contains("needs {current_datetime}"), "{e}");
    assert!(
        p(with(
            "Now: {current_datetime}",
            json!(["one-off-reminder", "delete-reminder"])
        ))
        .validate()
        .is_ok()
    );
    let e = err(with("", json!(["calculater"])));
    assert!(
        e.contains("unknown tool \"calculater\"") && e.contains("calculator"),
        "{e}"
    );
    assert!(err(with("", json!(["calculator", "calculator"]))).contains("twice"));
    let e = err(single(
        "llm",
        json!({"provider": "p", "model": "m", "tools": ["calculator"], "max_tool_rounds": 0}),
    ));
    assert!(e.contains("max_tool_rounds"), "{e}");
}

#[test]
fn built_in_tools_are_checked_on_save() {
    let with = |extra: Value| {
        let mut params = json!({"provider": "p", "model": "m"});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        single("llm", params)
    };
    let ok = p(with(json!({"built_in_tools": ["web-search"],
        "tool_config": {"web-search": {"allowed_domains": ["example.org"]}}})))
    .validate()
    .unwrap();
    let Node::Llm(l) = &ok.node("n").unwrap().node else {
        panic!()
    };
    assert_eq!(
        l.tool_config.web_search.as_ref().unwrap().allowed_domains,
        ["example.org"]
    );
    assert!(err(with(json!({"built_in_tools": ["code-execution"]}))).contains("not available"));
    assert!(
        err(with(json!({"tool_config": {"web-search": {}}}))).contains("not in built_in_tools")
    );
    assert!(
        err(with(
            json!({"built_in_tools": ["web-search"], "tool_config": {"web-search": {"allow": []}}})
        ))
        .contains("tool_config.web-search")
    );
}
