//! A chatbot's pipeline drawn as an inline SVG, left to right, so the
//! chatbot page shows its flow without JavaScript. The drawing reads the
//! stored JSON rather than the validated pipeline: an old or hand-edited
//! version must still be shown, so anything unreadable is skipped or said,
//! never a failure.
//!
//! Layout: a node's column is its longest path from the sources, so every
//! forward edge points right; nodes of a column keep the order they are
//! written in, so a small edit doesn't reshuffle the drawing.

mod layout;

use serde_json::Value;

use layout::{Graph, Node};

const BOX_W: i64 = 168;
const BOX_H: i64 = 44;
/// Wide enough for a router's keyword between two columns.
const COL_GAP: i64 = 96;
const ROW_GAP: i64 = 28;
const MARGIN: i64 = 16;
/// How far an edge that goes back (a cycle) swings out and below the
/// boxes, so it reads as a loop rather than crossing them.
const LOOP_OUT: i64 = 48;
const LOOP_DROP: i64 = 36;
/// Characters that fit a box (label, type) and a gap (edge label); the full
/// text stays in the `<title>`.
const LABEL_CHARS: usize = 22;
const TYPE_CHARS: usize = 26;
const EDGE_CHARS: usize = 14;
/// One id for the arrow head: several drawings on a page share the same
/// definition, and each one's copy is identical.
const ARROW_ID: &str = "pipeline-arrow";

/// The pipeline as an accessible SVG (`role="img"` and a `<title>` saying
/// its size; each node a `<g data-node="id">` with a `<title>`).
pub fn pipeline_svg(pipeline: &Value) -> String {
    let Some(graph) = layout::read(pipeline) else {
        return notice("Pipeline: nothing to draw", "No pipeline to draw");
    };
    if graph.nodes.is_empty() {
        return notice("Pipeline: 0 nodes, 0 edges", "This pipeline has no nodes");
    }
    draw(&graph)
}

/// Grows to hold every point drawn, control points included (a cubic stays
/// inside their hull), so the `viewBox` never clips a loop.
struct Bounds {
    min_x: i64,
    min_y: i64,
    max_x: i64,
    max_y: i64,
}

impl Bounds {
    fn add(&mut self, x: i64, y: i64) {
        self.min_x = self.min_x.min(x);
        self.min_y = self.min_y.min(y);
        self.max_x = self.max_x.max(x);
        self.max_y = self.max_y.max(y);
    }
}

fn draw(graph: &Graph<'_>) -> String {
    let Graph {
        nodes,
        edges,
        skipped,
        column,
        back,
    } = graph;
    let columns = column.iter().max().map_or(1, |c| c + 1);
    let mut rows = vec![0i64; columns];
    let mut row = Vec::with_capacity(nodes.len());
    for &c in column {
        let r = rows.get_mut(c).map_or(0, |r| {
            *r += 1;
            *r - 1
        });
        row.push(r);
    }
    let tallest = rows.iter().copied().max().unwrap_or(1);
    // Shorter columns are centred against the tallest.
    let pos: Vec<(i64, i64)> = column
        .iter()
        .zip(&row)
        .map(|(&c, &r)| {
            let shift = (tallest - rows.get(c).copied().unwrap_or(tallest)) * (BOX_H + ROW_GAP) / 2;
            (
                MARGIN + c as i64 * (BOX_W + COL_GAP),
                MARGIN + shift + r * (BOX_H + ROW_GAP),
            )
        })
        .collect();

    let mut bounds = Bounds {
        min_x: 0,
        min_y: 0,
        max_x: 0,
        max_y: 0,
    };
    for &(x, y) in &pos {
        bounds.add(x + BOX_W + MARGIN, y + BOX_H + MARGIN);
    }

    let mut body = String::new();
    for (e, &is_back) in edges.iter().zip(back) {
        let (Some(&(sx, sy)), Some(&(tx, ty))) = (pos.get(e.from), pos.get(e.to)) else {
            continue;
        };
        let (x1, y1) = (sx + BOX_W, sy + BOX_H / 2);
        let (x2, y2) = (tx, ty + BOX_H / 2);
        let (c1, c2) = if is_back {
            let low = y1.max(y2) + BOX_H / 2 + LOOP_DROP;
            ((x1 + LOOP_OUT, low), (x2 - LOOP_OUT, low))
        } else {
            let dx = (x2 - x1) / 2;
            ((x1 + dx, y1), (x2 - dx, y2))
        };
        for (x, y) in [c1, c2] {
            bounds.add(x - MARGIN, y - MARGIN);
            bounds.add(x + MARGIN, y + MARGIN);
        }
        let (from, to) = (node_name(nodes, e.from), node_name(nodes, e.to));
        let label = edge_label(nodes.get(e.from), e.handle);
        let title = match label {
            Some(l) => format!("{from} → {to} ({l})"),
            None => format!("{from} → {to}"),
        };
        body.push_str(&format!(
            "<path class=\"edge{}\" d=\"M{x1} {y1} C{} {}, {} {}, {x2} {y2}\" fill=\"none\" stroke=\"#777\" stroke-width=\"1.5\" marker-end=\"url(#{ARROW_ID})\"><title>{}</title></path>\n",
            if is_back { " back" } else { "" },
            c1.0,
            c1.1,
            c2.0,
            c2.1,
            escape(&title),
        ));
        if let Some(l) = label {
            // The curve's midpoint (t = ½), a little above it.
            let mx = (x1 + 3 * c1.0 + 3 * c2.0 + x2) / 8;
            let my = (y1 + 3 * c1.1 + 3 * c2.1 + y2) / 8 - 4;
            body.push_str(&format!(
                "<text class=\"edge-label\" x=\"{mx}\" y=\"{my}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#444\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>\n",
                escape(&clip(l, EDGE_CHARS)),
            ));
        }
    }

    for (n, &(x, y)) in nodes.iter().zip(&pos) {
        let kind = if n.kind.is_empty() {
            "(no type)"
        } else {
            n.kind
        };
        let title = match n.label {
            Some(l) => format!("{l}: {} ({kind})", n.id),
            None => format!("{} ({kind})", n.id),
        };
        let fill = match n.kind {
            "start" | "end" => "#eef6ee",
            "router" | "static_router" => "#fff6e5",
            _ => "#fff",
        };
        body.push_str(&format!(
            "<g class=\"node\" data-node=\"{}\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"#555\"/><text x=\"{}\" y=\"{}\" font-size=\"13\" font-weight=\"600\" fill=\"#222\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#666\">{}</text></g>\n",
            escape(n.id),
            escape(&title),
            x + 10,
            y + 19,
            escape(&clip(n.label.unwrap_or(n.id), LABEL_CHARS)),
            x + 10,
            y + 35,
            escape(&clip(kind, TYPE_CHARS)),
        ));
    }

    let mut title = format!(
        "Pipeline: {}, {}",
        count(nodes.len(), "node"),
        count(edges.len(), "edge")
    );
    if *skipped > 0 {
        title.push_str(&format!(
            " ({} naming no node left out)",
            count(*skipped, "edge")
        ));
    }
    let (w, h) = (bounds.max_x - bounds.min_x, bounds.max_y - bounds.min_y);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"pipeline\" role=\"img\" viewBox=\"{} {} {w} {h}\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\"><title>{}</title>\n<defs><marker id=\"{ARROW_ID}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0 0 L10 5 L0 10 z\" fill=\"#777\"/></marker></defs>\n{body}</svg>",
        bounds.min_x,
        bounds.min_y,
        escape(&title),
    )
}

fn node_name<'a>(nodes: &[Node<'a>], i: usize) -> &'a str {
    nodes.get(i).map_or("?", |n| n.id)
}

/// A router's `output_N` edge reads as its keyword; any other handle as
/// itself, so an unexpected one is still visible.
fn edge_label<'a>(from: Option<&Node<'a>>, handle: Option<&'a str>) -> Option<&'a str> {
    let handle = handle?;
    let keyword = handle
        .strip_prefix("output_")
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| from?.keywords.get(n).copied().flatten());
    Some(keyword.unwrap_or(handle))
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A small drawing that says why there is nothing more.
fn notice(title: &str, text: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"pipeline\" role=\"img\" viewBox=\"0 0 240 40\" width=\"240\" height=\"40\" font-family=\"sans-serif\"><title>{}</title><text x=\"8\" y=\"24\" font-size=\"13\" fill=\"#666\">{}</text></svg>",
        escape(title),
        escape(text)
    )
}

/// At most `max` characters (not bytes, so a multi-byte letter isn't cut).
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Text and attribute values as XML. Control characters other than tab and
/// newlines are not allowed in XML 1.0 even escaped, so they are dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// Columns and back edges as `pipeline_svg` computes them.
    fn layers_of(p: &Value) -> (Vec<usize>, Vec<bool>) {
        let g = layout::read(p).unwrap();
        (g.column, g.back)
    }

    fn chain(ids: &[&str]) -> Value {
        let nodes: Vec<Value> = ids
            .iter()
            .map(|i| json!({"id": i, "type": "llm"}))
            .collect();
        let edges: Vec<Value> = ids
            .windows(2)
            .map(|w| json!({"from": w[0], "to": w[1]}))
            .collect();
        json!({"nodes": nodes, "edges": edges})
    }

    /// Just enough XML to catch what a browser would choke on: tags nest and
    /// close, one root, attribute values quoted, every `&` an entity.
    fn well_formed(xml: &str) -> Result<(), String> {
        fn entities(t: &str) -> Result<(), String> {
            for (i, _) in t.match_indices('&') {
                let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| t[i..].starts_with(e));
                if !ok {
                    return Err(format!("bare & in {t:?}"));
                }
            }
            Ok(())
        }
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = xml;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            if stack.is_empty() && !text.trim().is_empty() {
                return Err(format!("text outside the root: {text:?}"));
            }
            entities(text)?;
            let after = &rest[open + 1..];
            let close = after.find('>').ok_or("a tag never closes")?;
            let tag = &after[..close];
            rest = &after[close + 1..];
            if tag.contains('<') || !tag.matches('"').count().is_multiple_of(2) {
                return Err(format!("broken tag <{tag}>"));
            }
            entities(tag)?;
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                if stack.is_empty() {
                    roots += 1;
                }
                let name = tag.split([' ', '\n', '/']).next().unwrap_or("");
                if name.is_empty() {
                    return Err(format!("nameless tag <{tag}>"));
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
        }
        if !rest.trim().is_empty() || !stack.is_empty() || roots != 1 {
            return Err(format!("unbalanced: open {stack:?}, {roots} roots"));
        }
        Ok(())
    }

    fn title(svg: &str) -> &str {
        let start = svg.find("<title>").unwrap() + "<title>".len();
        let end = svg[start..].find("</title>").unwrap();
        &svg[start..start + end]
    }

    fn groups(svg: &str) -> usize {
        svg.matches("<g ").count()
    }

    /// The rectangle of node `id`: (x, y).
    fn rect_of(svg: &str, id: &str) -> (i64, i64) {
        let g = svg.find(&format!("data-node=\"{id}\"")).unwrap();
        let r = &svg[g..];
        let num = |key: &str| -> i64 {
            let s = r.find(key).unwrap() + key.len();
            let e = r[s..].find('"').unwrap();
            r[s..s + e].parse().unwrap()
        };
        (num("<rect x=\""), num("\" y=\""))
    }

    fn view_box(svg: &str) -> [i64; 4] {
        let s = svg.find("viewBox=\"").unwrap() + 9;
        let e = svg[s..].find('"').unwrap();
        let v: Vec<i64> = svg[s..s + e]
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        [v[0], v[1], v[2], v[3]]
    }

    #[test]
    fn a_chain_is_one_column_per_node() {
        let p = chain(&["start", "llm", "end"]);
        assert_eq!(layers_of(&p), (vec![0, 1, 2], vec![false, false]));
        let svg = pipeline_svg(&p);
        well_formed(&svg).unwrap();
        assert_eq!(title(&svg), "Pipeline: 3 nodes, 2 edges");
        assert!(svg.contains("role=\"img\""));
        assert_eq!(groups(&svg), 3);
        assert_eq!(svg.matches("<path class=\"edge\"").count(), 2);
        assert!(svg.contains("marker-end=\"url(#pipeline-arrow)\""));
        let (x0, y0) = rect_of(&svg, "start");
        let (x1, y1) = rect_of(&svg, "llm");
        let (x2, _) = rect_of(&svg, "end");
        assert!(x0 < x1 && x1 < x2);
        assert_eq!(y0, y1);
        // From the right side of one box to the left side of the next.
        assert!(svg.contains(&format!("d=\"M{} {} C", x0 + BOX_W, y0 + BOX_H / 2)));
        assert!(svg.contains(&format!(", {x1} {}\"", y1 + BOX_H / 2)));
        assert!(svg.contains("<title>llm (llm)</title>"));
    }

    #[test]
    fn a_diamond_takes_the_longest_path() {
        let p = json!({
            "nodes": [
                {"id": "s", "type": "start"}, {"id": "a", "type": "llm"},
                {"id": "b", "type": "llm"}, {"id": "c", "type": "end"},
            ],
            "edges": [
                {"from": "s", "to": "c"}, {"from": "s", "to": "a"}, {"from": "s", "to": "b"},
                {"from": "a", "to": "c"}, {"from": "b", "to": "c"},
            ],
        });
        let (cols, back) = layers_of(&p);
        assert_eq!(cols, [0, 1, 1, 2]);
        assert!(back.iter().all(|b| !b));
        let svg = pipeline_svg(&p);
        well_formed(&svg).unwrap();
        assert_eq!(groups(&svg), 4);
        // Same column, in the order written, top to bottom.
        let (ax, ay) = rect_of(&svg, "a");
        let (bx, by) = rect_of(&svg, "b");
        assert_eq!(ax, bx);
        assert!(ay < by);
        // The one-node columns sit level with the middle of the two.
        let (_, sy) = rect_of(&svg, "s");
        assert_eq!(sy * 2, ay + by);
    }

    #[test]
    fn a_router_labels_its_edges_with_keywords() {
        let p = json!({
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "triage", "type": "router", "label": "Triage",
                 "params": {"keywords": ["BILLING", "OTHER"]}},
                {"id": "billing", "type": "llm"}, {"id": "other", "type": "llm"},
            ],
            "edges": [
                {"from": "start", "to": "triage"},
                {"from": "triage", "to": "billing", "handle": "output_0"},
                {"from": "triage", "to": "other", "handle": "output_1"},
                {"from": "triage", "to": "other", "handle": "output_7"},
            ],
        });
        assert_eq!(layers_of(&p).0, [0, 1, 2, 2]);
        let svg = pipeline_svg(&p);
        well_formed(&svg).unwrap();
        assert!(svg.contains(">BILLING</text>"));
        assert!(svg.contains(">OTHER</text>"));
        // No keyword 7: the handle itself.
        assert!(svg.contains(">output_7</text>"));
        assert!(svg.contains("<title>triage → billing (BILLING)</title>"));
        assert!(svg.contains(">Triage</text>"));
        assert!(svg.contains("<title>Triage: triage (router)</title>"));
        assert_eq!(svg.matches("class=\"edge-label\"").count(), 3);
    }

    #[test]
    fn the_router_fixture_imported_from_the_original() {
        use domain::pipeline::original::{ImportOptions, from_original};
        let doc: Value = serde_json::from_str(include_str!(
            "../../domain/src/pipeline/fixtures/router_bot.json"
        ))
        .unwrap();
        let options = ImportOptions {
            provider: Some("openai".into()),
            model: Some("gpt-4o".into()),
            skip_unsupported: false,
        };
        let imported = from_original(&doc, &options).unwrap();
        let p = serde_json::to_value(&imported.pipeline).unwrap();
        let svg = pipeline_svg(&p);
        well_formed(&svg).unwrap();
        assert_eq!(title(&svg), "Pipeline: 6 nodes, 6 edges");
        assert_eq!(groups(&svg), 6);
        assert!(svg.contains(">BILLING</text>") && svg.contains(">OTHER</text>"));
        assert_eq!(layers_of(&p).0, [0, 1, 2, 2, 3, 4]);
    }

    #[test]
    fn a_cycle_ends_and_is_drawn_as_a_loop() {
        let p = json!({
            "nodes": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
            "edges": [
                {"from": "a", "to": "b"}, {"from": "b", "to": "c"},
                {"from": "c", "to": "a"}, {"from": "b", "to": "b"},
            ],
        });
        // No source at all: the walk starts from the first node.
        assert_eq!(
            layers_of(&p),
            (vec![0, 1, 2], vec![false, false, true, true])
        );
        let svg = pipeline_svg(&p);
        well_formed(&svg).unwrap();
        assert_eq!(svg.matches("class=\"edge back\"").count(), 2);
        assert!(svg.contains("<title>a ((no type))</title>"));
        // The loop swings left of the first box: the view still holds it.
        let [min_x, _, w, h] = view_box(&svg);
        assert!(min_x < 0);
        assert!(w > 0 && h > 0);

        let with_source = json!({
            "nodes": [{"id": "s"}, {"id": "a"}, {"id": "b"}, {"id": "end"}],
            "edges": [
                {"from": "s", "to": "a"}, {"from": "a", "to": "b"},
                {"from": "b", "to": "a"}, {"from": "b", "to": "end"},
            ],
        });
        let (cols, back) = layers_of(&with_source);
        assert_eq!(cols, [0, 1, 2, 3]);
        assert_eq!(back, [false, false, true, false]);
    }

    #[test]
    fn escape_covers_markup_quotes_and_control_characters() {
        assert_eq!(escape("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
        assert_eq!(
            escape("say \"hi\" 'there'"),
            "say &quot;hi&quot; &apos;there&apos;"
        );
        assert_eq!(escape("tab\tnl\nbell\u{7}nul\u{0}"), "tab\tnl\nbellnul");
        assert_eq!(escape("ünïcødé →"), "ünïcødé →");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn hostile_ids_labels_and_keywords_are_escaped() {
        let p = json!({
            "nodes": [
                {"id": "<script>", "type": "a&b", "label": "\"quoted\" 'label'"},
                {"id": "x\"y", "type": "router", "params": {"keywords": ["<K&>"]}},
            ],
            "edges": [
                {"from": "<script>", "to": "x\"y"},
                {"from": "x\"y", "to": "<script>", "handle": "output_0"},
            ],
        });
        let svg = pipeline_svg(&p);
        well_formed(&svg).unwrap();
        assert!(!svg.contains("<script"));
        assert!(svg.contains("data-node=\"&lt;script&gt;\""));
        assert!(svg.contains("data-node=\"x&quot;y\""));
        assert!(svg.contains(">&lt;K&amp;&gt;</text>"));
        assert!(svg.contains(">a&amp;b</text>"));
    }

    #[test]
    fn long_labels_are_clipped_in_the_box_but_whole_in_the_title() {
        let long = "A label far too long for any box at all";
        let p = json!({"nodes": [{"id": "n", "type": "llm", "label": long}]});
        let svg = pipeline_svg(&p);
        assert!(svg.contains(&format!("<title>{long}: n (llm)</title>")));
        assert!(svg.contains(&format!(">{}…</text>", &long[..LABEL_CHARS - 1])));
        assert_eq!(clip("ééé", 2), "é…");
        assert_eq!(clip("ééé", 3), "ééé");
    }

    #[test]
    fn malformed_pipelines_still_draw() {
        for bad in [
            Value::Null,
            json!("pipeline"),
            json!([1, 2]),
            json!({}),
            json!({"nodes": "no"}),
            json!({"edges": []}),
        ] {
            let svg = pipeline_svg(&bad);
            well_formed(&svg).unwrap();
            assert_eq!(title(&svg), "Pipeline: nothing to draw", "{bad}");
            assert_eq!(groups(&svg), 0);
        }
        let svg = pipeline_svg(&json!({"nodes": [], "edges": [{"from": "a", "to": "b"}]}));
        well_formed(&svg).unwrap();
        assert_eq!(title(&svg), "Pipeline: 0 nodes, 0 edges");
        assert!(svg.contains("no nodes"));

        // Nodes without an id, or repeating one, are left out; so are edges
        // naming no node, and edges that aren't objects.
        let p = json!({
            "nodes": [
                {"id": "a", "type": "start"}, {"type": "llm"}, {"id": 7}, {"id": ""},
                "node", {"id": "a", "type": "again"}, {"id": "b", "type": ["x"], "label": 3},
            ],
            "edges": [
                {"from": "a", "to": "b"}, {"from": "a", "to": "ghost"}, {"from": "a"},
                {"to": "b"}, 5, {"from": 1, "to": "b"},
            ],
        });
        let svg = pipeline_svg(&p);
        well_formed(&svg).unwrap();
        assert_eq!(
            title(&svg),
            "Pipeline: 2 nodes, 1 edge (5 edges naming no node left out)"
        );
        assert_eq!(groups(&svg), 2);
        assert!(svg.contains("<title>a (start)</title>"));

        // Edges that aren't a list are no edges; keywords that aren't text
        // fall back to the handle.
        let p = json!({
            "nodes": [{"id": "r", "type": "router", "params": {"keywords": [1, "B"]}}, {"id": "x"}],
            "edges": {"from": "r", "to": "x"},
        });
        assert_eq!(title(&pipeline_svg(&p)), "Pipeline: 2 nodes, 0 edges");
        let p = json!({
            "nodes": [{"id": "r", "type": "router", "params": {"keywords": [1, "B"]}}, {"id": "x"}],
            "edges": [{"from": "r", "to": "x", "handle": "output_0"},
                      {"from": "r", "to": "x", "handle": "output_1"},
                      {"from": "r", "to": "x", "handle": "output_-1"}],
        });
        let svg = pipeline_svg(&p);
        assert!(svg.contains(">output_0</text>") && svg.contains(">B</text>"));
        assert!(svg.contains(">output_-1</text>"));
    }

    #[test]
    fn the_view_box_holds_every_box() {
        let p = json!({
            "nodes": [{"id": "s"}, {"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"}],
            "edges": [{"from": "s", "to": "a"}, {"from": "s", "to": "b"},
                      {"from": "s", "to": "c"}, {"from": "c", "to": "d"}],
        });
        let svg = pipeline_svg(&p);
        let [vx, vy, w, h] = view_box(&svg);
        for id in ["s", "a", "b", "c", "d"] {
            let (x, y) = rect_of(&svg, id);
            assert!(x >= vx && y >= vy, "{id}");
            assert!(x + BOX_W <= vx + w && y + BOX_H <= vy + h, "{id}");
        }
    }

    proptest! {
        #[test]
        fn any_graph_draws_well_formed(
            n in 0usize..12,
            edges in prop::collection::vec((0usize..14, 0usize..14, prop::option::of(0usize..4)), 0..30),
        ) {
            let nodes: Vec<Value> = (0..n)
                .map(|i| json!({"id": format!("n{i}"), "type": if i % 3 == 0 { "router" } else { "llm" },
                                "params": {"keywords": ["A", "B"]}}))
                .collect();
            let edges: Vec<Value> = edges
                .iter()
                .map(|(f, t, h)| match h {
                    Some(h) => json!({"from": format!("n{f}"), "to": format!("n{t}"), "handle": format!("output_{h}")}),
                    None => json!({"from": format!("n{f}"), "to": format!("n{t}")}),
                })
                .collect();
            let p = json!({"nodes": nodes, "edges": edges});
            let svg = pipeline_svg(&p);
            prop_assert!(well_formed(&svg).is_ok(), "{:?}", well_formed(&svg));
            prop_assert_eq!(groups(&svg), n);
        }
    }
}
