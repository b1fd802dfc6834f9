//! What the drawing needs from the stored pipeline: its nodes and edges as
//! far as they can be read, and each node's column.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// The pipeline, read and layered.
pub(super) struct Graph<'a> {
    pub nodes: Vec<Node<'a>>,
    pub edges: Vec<Edge<'a>>,
    /// Edges left out because they name no (readable) node.
    pub skipped: usize,
    /// Per node: its longest path from a source.
    pub column: Vec<usize>,
    /// Per edge: it closes a cycle, so it points back (or down a column).
    pub back: Vec<bool>,
}

/// `None` when there is no list of nodes at all.
pub(super) fn read(pipeline: &Value) -> Option<Graph<'_>> {
    let nodes = read_nodes(pipeline.get("nodes")?.as_array()?);
    let (edges, skipped) = read_edges(pipeline.get("edges"), &nodes);
    let (column, back) = layers(nodes.len(), &edges);
    Some(Graph {
        nodes,
        edges,
        skipped,
        column,
        back,
    })
}

pub(super) struct Node<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub label: Option<&'a str>,
    /// A router's keywords by position (`None` where one isn't text), for
    /// its `output_N` edges.
    pub keywords: Vec<Option<&'a str>>,
}

pub(super) struct Edge<'a> {
    pub from: usize,
    pub to: usize,
    pub handle: Option<&'a str>,
}

/// Nodes without a textual id can't be linked to, and a repeated id would
/// make edges ambiguous: both are left out (the first of a repeat stays).
fn read_nodes(list: &[Value]) -> Vec<Node<'_>> {
    let mut seen = HashSet::new();
    let mut nodes = Vec::new();
    for n in list {
        let Some(id) = n
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        if !seen.insert(id) {
            continue;
        }
        let keywords = n
            .pointer("/params/keywords")
            .and_then(Value::as_array)
            .map(|ks| ks.iter().map(Value::as_str).collect())
            .unwrap_or_default();
        nodes.push(Node {
            id,
            kind: n.get("type").and_then(Value::as_str).unwrap_or(""),
            label: n
                .get("label")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty()),
            keywords,
        });
    }
    nodes
}

/// The edges between known nodes, and how many others were left out.
fn read_edges<'a>(edges: Option<&'a Value>, nodes: &[Node<'_>]) -> (Vec<Edge<'a>>, usize) {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let find = |e: &Value, key: &str| {
        e.get(key)
            .and_then(Value::as_str)
            .and_then(|id| index.get(id).copied())
    };
    let list = edges
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let mut out = Vec::new();
    for e in list {
        if let (Some(from), Some(to)) = (find(e, "from"), find(e, "to")) {
            out.push(Edge {
                from,
                to,
                handle: e.get("handle").and_then(Value::as_str),
            });
        }
    }
    let skipped = list.len() - out.len();
    (out, skipped)
}

/// Each node's column (longest path from a source) and, per edge, whether
/// it goes back: a depth-first walk from the sources marks the edges that
/// close a cycle, and layering ignores them, so a loop can't make the
/// longest path endless.
fn layers(n: usize, edges: &[Edge<'_>]) -> (Vec<usize>, Vec<bool>) {
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut has_input = vec![false; n];
    for (i, e) in edges.iter().enumerate() {
        if let Some(list) = out.get_mut(e.from) {
            list.push(i);
        }
        if let Some(h) = has_input.get_mut(e.to) {
            *h = true;
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        No,
        OnPath,
        Done,
    }
    let mut seen = vec![Seen::No; n];
    let mut back = vec![false; edges.len()];
    // Sources first, so an edge back to the start is the one found to close
    // a loop; then the rest, for loops that no source reaches.
    let roots = (0..n)
        .filter(|&i| !has_input.get(i).copied().unwrap_or(false))
        .chain(0..n);
    for root in roots {
        if seen.get(root) != Some(&Seen::No) {
            continue;
        }
        // Iterative, so a long chain can't overflow the stack.
        let mut stack = vec![(root, 0usize)];
        if let Some(s) = seen.get_mut(root) {
            *s = Seen::OnPath;
        }
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            let Some(&edge) = out.get(node).and_then(|l| l.get(*next)) else {
                if let Some(s) = seen.get_mut(node) {
                    *s = Seen::Done;
                }
                stack.pop();
                continue;
            };
            *next += 1;
            let Some(to) = edges.get(edge).map(|e| e.to) else {
                continue;
            };
            match seen.get(to) {
                Some(Seen::OnPath) => {
                    if let Some(b) = back.get_mut(edge) {
                        *b = true;
                    }
                }
                Some(Seen::No) => {
                    if let Some(s) = seen.get_mut(to) {
                        *s = Seen::OnPath;
                    }
                    stack.push((to, 0));
                }
                _ => {}
            }
        }
    }

    // Without the back edges the graph is acyclic: longest paths in
    // topological order (Kahn).
    let mut pending = vec![0usize; n];
    for (e, _) in edges.iter().zip(&back).filter(|(_, b)| !**b) {
        if let Some(p) = pending.get_mut(e.to) {
            *p += 1;
        }
    }
    let mut column = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| pending.get(i) == Some(&0)).collect();
    while let Some(node) = ready.pop() {
        let depth = column.get(node).copied().unwrap_or(0);
        for &edge in out.get(node).map_or(&[][..], Vec::as_slice) {
            if back.get(edge).copied().unwrap_or(true) {
                continue;
            }
            let Some(to) = edges.get(edge).map(|e| e.to) else {
                continue;
            };
            if let Some(c) = column.get_mut(to) {
                *c = (*c).max(depth + 1);
            }
            if let Some(p) = pending.get_mut(to) {
                *p -= 1;
                if *p == 0 {
                    ready.push(to);
                }
            }
        }
    }
    (column, back)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn graph(nodes: &[&str], edges: &[(&str, &str)]) -> Value {
        let nodes: Vec<Value> = nodes.iter().map(|i| json!({"id": i})).collect();
        let edges: Vec<Value> = edges
            .iter()
            .map(|(f, t)| json!({"from": f, "to": t}))
            .collect();
        json!({"nodes": nodes, "edges": edges})
    }

    fn layers_of(p: &Value) -> (Vec<usize>, Vec<bool>) {
        let g = read(p).unwrap();
        (g.column, g.back)
    }

    #[test]
    fn columns_are_longest_paths() {
        let chain = graph(&["a", "b", "c"], &[("a", "b"), ("b", "c")]);
        assert_eq!(layers_of(&chain), (vec![0, 1, 2], vec![false, false]));
        // Written out of order: the columns follow the edges, not the list.
        let shuffled = graph(&["c", "a", "b"], &[("a", "b"), ("b", "c")]);
        assert_eq!(layers_of(&shuffled).0, [2, 0, 1]);
        let shortcut = graph(&["s", "a", "e"], &[("s", "e"), ("s", "a"), ("a", "e")]);
        assert_eq!(layers_of(&shortcut).0, [0, 1, 2]);
        // Two sources, and a node nothing touches.
        let two = graph(&["x", "y", "z", "alone"], &[("x", "z"), ("y", "z")]);
        assert_eq!(layers_of(&two).0, [0, 0, 1, 0]);
    }

    #[test]
    fn cycles_end_with_their_closing_edge_marked() {
        let ring = graph(&["a", "b", "c"], &[("a", "b"), ("b", "c"), ("c", "a")]);
        assert_eq!(layers_of(&ring), (vec![0, 1, 2], vec![false, false, true]));
        let self_loop = graph(&["a", "b"], &[("a", "a"), ("a", "b")]);
        assert_eq!(layers_of(&self_loop), (vec![0, 1], vec![true, false]));
        // A loop behind a source is entered from the source.
        let entered = graph(
            &["loop", "s", "end"],
            &[
                ("loop", "loop"),
                ("s", "loop"),
                ("loop", "end"),
                ("end", "loop"),
            ],
        );
        let (cols, back) = layers_of(&entered);
        assert_eq!(cols, [1, 0, 2]);
        assert_eq!(back, [true, false, false, true]);
    }

    #[test]
    fn a_long_chain_neither_overflows_nor_hangs() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("n{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut edges: Vec<(&str, &str)> = refs.windows(2).map(|w| (w[0], w[1])).collect();
        edges.push(("n19999", "n0"));
        let (cols, back) = layers_of(&graph(&refs, &edges));
        assert_eq!(cols.last(), Some(&19_999));
        assert_eq!(back.iter().filter(|b| **b).count(), 1);
    }

    #[test]
    fn what_cannot_be_read_is_left_out() {
        assert!(read(&json!(null)).is_none());
        assert!(read(&json!({"nodes": {}})).is_none());
        let p = json!({
            "nodes": [{"id": "a", "type": "start", "label": " "}, {"id": "a", "type": "dup"},
                      {"id": 1}, {}, {"id": "b", "label": "B", "params": {"keywords": ["K", 2]}}],
            "edges": [{"from": "a", "to": "b", "handle": "output_0"}, {"from": "a", "to": "zz"},
                      [], {"from": "b", "to": "a", "handle": 3}],
        });
        let g = read(&p).unwrap();
        let ids: Vec<&str> = g.nodes.iter().map(|n| n.id).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(g.nodes[0].kind, "start");
        assert_eq!(g.nodes[0].label, None);
        assert_eq!(g.nodes[1].label, Some("B"));
        assert_eq!(g.nodes[1].keywords, [Some("K"), None]);
        assert_eq!((g.edges.len(), g.skipped), (2, 2));
        assert_eq!(g.edges[0].handle, Some("output_0"));
        assert_eq!(g.edges[1].handle, None);
        assert_eq!(g.back, [false, true]);
        let one = json!({"nodes": [{"id": "a"}]});
        let no_edges = read(&one).unwrap();
        assert_eq!((no_edges.edges.len(), no_edges.skipped), (0, 0));
    }

    proptest! {
        #[test]
        fn forward_edges_point_right_and_columns_are_tight(
            n in 1usize..12,
            edges in prop::collection::vec((0usize..12, 0usize..12), 0..30),
        ) {
            let ids: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
            let edges: Vec<(String, String)> =
                edges.iter().map(|(f, t)| (format!("n{f}"), format!("n{t}"))).collect();
            let refs: Vec<(&str, &str)> = edges.iter().map(|(f, t)| (f.as_str(), t.as_str())).collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let p = graph(&ids, &refs);
            let g = read(&p).unwrap();
            for (e, b) in g.edges.iter().zip(&g.back) {
                if !b {
                    prop_assert!(g.column[e.to] > g.column[e.from]);
                }
            }
            // A node past column 0 is there because a path of that length
            // leads to it.
            for (i, &c) in g.column.iter().enumerate() {
                if c > 0 {
                    let fed = g.edges.iter().zip(&g.back)
                        .any(|(e, b)| !b && e.to == i && g.column[e.from] + 1 == c);
                    prop_assert!(fed);
                }
            }
        }
    }
}
