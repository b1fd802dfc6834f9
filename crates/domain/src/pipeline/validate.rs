//! The graph checks a pipeline passes on save and before it runs: one start
//! and one end, unique ids, known edges, handles that agree with the routers'
//! keywords, no cycle, every node reachable from the start and on a path to
//! the end. Each error names the node (or edge) and the field.

use std::collections::{HashMap, HashSet, VecDeque};

use super::{EdgeSpec, Node, Pipeline, handle, invalid};
use crate::Result;
use crate::prompt::Template;

/// A node of a validated pipeline.
#[derive(Debug, Clone)]
pub struct ValidNode {
    pub id: String,
    /// The type as written (`llm`, `router`, …), for traces.
    pub kind: String,
    pub node: Node,
    /// The prompt of an LLM or router node.
    pub prompt: Option<Template>,
}

/// A pipeline that passed validation, its nodes in execution (topological) order.
#[derive(Debug, Clone)]
pub struct ValidPipeline {
    pub nodes: Vec<ValidNode>,
    /// Incoming edges per node id, in the order they were written.
    pub incoming: HashMap<String, Vec<EdgeSpec>>,
    /// Outgoing edges per node id.
    pub outgoing: HashMap<String, Vec<EdgeSpec>>,
}

impl ValidPipeline {
    pub fn node(&self, id: &str) -> Option<&ValidNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn start(&self) -> Option<&ValidNode> {
        self.nodes.iter().find(|n| matches!(n.node, Node::Start))
    }

    pub fn end(&self) -> Option<&ValidNode> {
        self.nodes.iter().find(|n| matches!(n.node, Node::End))
    }

    /// Whether a node reads who the participant is or their schedules
    /// (templates and emails, reminder tools), which a turn then loads.
    pub fn reads_participant(&self) -> bool {
        self.nodes.iter().any(|n| match &n.node {
            Node::Template(_) | Node::SendEmail(_) | Node::Code(_) => true,
            Node::Llm(l) => l
                .tools
                .iter()
                .any(|t| super::REMINDER_TOOLS.contains(&t.as_str())),
            _ => false,
        })
    }

    pub fn incoming(&self, id: &str) -> &[EdgeSpec] {
        self.incoming.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn outgoing(&self, id: &str) -> &[EdgeSpec] {
        self.outgoing.get(id).map(Vec::as_slice).unwrap_or_default()
    }
}

impl Pipeline {
    /// Checks the graph and every node's params.
    pub fn validate(&self) -> Result<ValidPipeline> {
        let mut specs = HashMap::new();
        for n in &self.nodes {
            if n.id.trim().is_empty() {
                return Err(invalid("every node needs a non-empty id"));
            }
            if specs.insert(n.id.as_str(), n).is_some() {
                return Err(invalid(format!("node id {:?} is used twice", n.id)));
            }
        }
        let count = |k: &str| self.nodes.iter().filter(|n| n.kind == k).count();
        if count("start") != 1 {
            return Err(invalid("a pipeline needs exactly one start node"));
        }
        if count("end") != 1 {
            return Err(invalid("a pipeline needs exactly one end node"));
        }
        let mut parsed: HashMap<&str, (Node, Option<Template>)> = HashMap::new();
        for n in &self.nodes {
            let node = Node::parse(n)
                .map_err(|e| invalid(format!("node {:?} ({}): {e}", n.id, n.kind)))?;
            parsed.insert(n.id.as_str(), node);
        }
        let (outgoing, incoming) = self.check_edges(&parsed)?;
        let order = self.topological_order(&outgoing)?;
        self.check_reachability(&outgoing)?;
        let nodes = order
            .into_iter()
            .filter_map(|id| {
                let kind = specs
                    .get(id.as_str())
                    .map(|s| s.kind.clone())
                    .unwrap_or_default();
                parsed.remove(id.as_str()).map(|(node, prompt)| ValidNode {
                    id,
                    kind,
                    node,
                    prompt,
                })
            })
            .collect();
        Ok(ValidPipeline {
            nodes,
            incoming,
            outgoing,
        })
    }

    #[expect(
        clippy::type_complexity,
        reason = "the two edge maps are returned together once"
    )]
    fn check_edges(
        &self,
        parsed: &HashMap<&str, (Node, Option<Template>)>,
    ) -> Result<(
        HashMap<String, Vec<EdgeSpec>>,
        HashMap<String, Vec<EdgeSpec>>,
    )> {
        let mut outgoing: HashMap<String, Vec<EdgeSpec>> = HashMap::new();
        let mut incoming: HashMap<String, Vec<EdgeSpec>> = HashMap::new();
        let mut seen = HashSet::new();
        for e in &self.edges {
            let name = format!("edge {} → {}", e.from, e.to);
            for end in [&e.from, &e.to] {
                if !parsed.contains_key(end.as_str()) {
                    return Err(invalid(format!("{name} names an unknown node {end:?}")));
                }
            }
            if e.from == e.to {
                return Err(invalid(format!("{name} is a cycle")));
            }
            if !seen.insert((e.from.as_str(), e.to.as_str(), e.handle.as_deref())) {
                return Err(invalid(format!("{name} appears twice")));
            }
            let (from, _) = &parsed[e.from.as_str()];
            let (to, _) = &parsed[e.to.as_str()];
            if matches!(to, Node::Start) {
                return Err(invalid("the start node cannot have incoming edges"));
            }
            if matches!(from, Node::End) {
                return Err(invalid("the end node cannot have outgoing edges"));
            }
            match (from.handles(), e.handle.as_deref()) {
                (None, None) => {}
                (None, Some(h)) => {
                    return Err(invalid(format!(
                        "{name}: handle {h:?} is only for router edges (node {:?} is not a router)",
                        e.from
                    )));
                }
                (Some(n), h) => {
                    let ok = h.is_some_and(|h| (0..n).any(|i| handle(i) == h));
                    if !ok {
                        return Err(invalid(format!(
                            "{name}: a router's edge needs a handle output_0 … output_{} (one per keyword), not {}",
                            n - 1,
                            h.map_or("none".to_string(), |h| format!("{h:?}"))
                        )));
                    }
                }
            }
            outgoing.entry(e.from.clone()).or_default().push(e.clone());
            incoming.entry(e.to.clone()).or_default().push(e.clone());
        }
        for n in &self.nodes {
            let (node, _) = &parsed[n.id.as_str()];
            let Some(count) = node.handles() else {
                continue;
            };
            let keywords = match node {
                Node::Router(r) => &r.keywords,
                Node::StaticRouter(r) => &r.keywords,
                _ => continue,
            };
            let edges = outgoing.get(&n.id).map(Vec::as_slice).unwrap_or_default();
            for (i, k) in keywords.iter().enumerate().take(count) {
                let h = handle(i);
                if !edges
                    .iter()
                    .any(|e| e.handle.as_deref() == Some(h.as_str()))
                {
                    return Err(invalid(format!(
                        "node {:?} ({}): keyword {k:?} ({h}) has no edge",
                        n.id, n.kind
                    )));
                }
            }
        }
        Ok((outgoing, incoming))
    }

    /// Kahn's algorithm: a topological order exists iff there is no cycle.
    fn topological_order(&self, outgoing: &HashMap<String, Vec<EdgeSpec>>) -> Result<Vec<String>> {
        let mut indeg: HashMap<&str, usize> =
            self.nodes.iter().map(|n| (n.id.as_str(), 0)).collect();
        for e in outgoing.values().flatten() {
            if let Some(d) = indeg.get_mut(e.to.as_str()) {
                *d += 1;
            }
        }
        let mut queue: VecDeque<&str> = self
            .nodes
            .iter()
            .map(|n| n.id.as_str())
            .filter(|id| indeg.get(id) == Some(&0))
            .collect();
        let mut order: Vec<String> = Vec::new();
        while let Some(id) = queue.pop_front() {
            order.push(id.to_string());
            for e in outgoing.get(id).map(Vec::as_slice).unwrap_or_default() {
                if let Some(d) = indeg.get_mut(e.to.as_str()) {
                    *d -= 1;
                    if *d == 0 {
                        queue.push_back(e.to.as_str());
                    }
                }
            }
        }
        if order.len() != self.nodes.len() {
            // Of the nodes left over, name those on a cycle (not the ones downstream of it).
            let mut forward: HashMap<&str, Vec<&str>> = HashMap::new();
            for e in outgoing.values().flatten() {
                forward
                    .entry(e.from.as_str())
                    .or_default()
                    .push(e.to.as_str());
            }
            let stuck: Vec<&str> = self
                .nodes
                .iter()
                .map(|n| n.id.as_str())
                .filter(|id| !order.iter().any(|o| o == id))
                .filter(|id| {
                    forward
                        .get(id)
                        .into_iter()
                        .flatten()
                        .any(|next| reachable(next, &forward).contains(id))
                })
                .collect();
            return Err(invalid(format!(
                "the pipeline has a cycle through {}",
                stuck.join(", ")
            )));
        }
        Ok(order)
    }

    fn check_reachability(&self, outgoing: &HashMap<String, Vec<EdgeSpec>>) -> Result<()> {
        let of_kind = |k: &str| {
            self.nodes
                .iter()
                .find(|n| n.kind == k)
                .map(|n| n.id.as_str())
                .unwrap_or("")
        };
        let mut forward: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut back: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in outgoing.values().flatten() {
            forward
                .entry(e.from.as_str())
                .or_default()
                .push(e.to.as_str());
            back.entry(e.to.as_str()).or_default().push(e.from.as_str());
        }
        let from_start = reachable(of_kind("start"), &forward);
        let to_end = reachable(of_kind("end"), &back);
        for n in &self.nodes {
            if !from_start.contains(n.id.as_str()) {
                return Err(invalid(format!(
                    "node {:?} is not reachable from the start node",
                    n.id
                )));
            }
            if !to_end.contains(n.id.as_str()) {
                return Err(invalid(format!(
                    "node {:?} has no path to the end node",
                    n.id
                )));
            }
        }
        Ok(())
    }
}

fn reachable<'a>(from: &'a str, edges: &HashMap<&'a str, Vec<&'a str>>) -> HashSet<&'a str> {
    let mut seen = HashSet::from([from]);
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        for t in edges.get(n).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(t) {
                stack.push(t);
            }
        }
    }
    seen
}
