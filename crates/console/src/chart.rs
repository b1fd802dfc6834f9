//! Bar charts as inline SVG, made on the server so the usage page needs no
//! JavaScript. A chart is a picture of numbers the page also lists in a
//! table; its `<desc>` says every value, for whoever cannot see it.

use crate::graph::escape;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
/// Room on the left for the largest value's label.
const LEFT: f64 = 96.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
/// Room below for the first and last labels.
const BOTTOM: f64 = 28.0;
/// Share of a bar's slot left blank, so neighbours don't merge.
const GAP: f64 = 0.2;

/// A bar per point, left to right, scaled to the largest value (negative
/// values are drawn as nothing but still said in the `<desc>`).
pub fn bars(title: &str, points: &[(String, i64)], format: fn(i64) -> String) -> String {
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let base = TOP + plot_h;
    let desc = if points.is_empty() {
        "No values.".to_string()
    } else {
        points
            .iter()
            .map(|(label, v)| format!("{label}: {}", format(*v)))
            .collect::<Vec<_>>()
            .join("; ")
    };

    let mut body = String::new();
    let slot = plot_w / points.len().max(1) as f64;
    for (i, (label, v)) in points.iter().enumerate() {
        let h = if max > 0 && *v > 0 {
            *v as f64 / max as f64 * plot_h
        } else {
            0.0
        };
        let x = LEFT + slot * i as f64 + slot * GAP / 2.0;
        body.push_str(&format!(
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}: {}</title></rect>\n",
            base - h,
            slot * (1.0 - GAP),
            escape(label),
            escape(&format(*v)),
        ));
    }
    // The first and last labels say the span; the table has the rest.
    if let Some((first, _)) = points.first() {
        body.push_str(&format!(
            "<text x=\"{LEFT:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text>\n",
            HEIGHT - 8.0,
            escape(first)
        ));
    }
    if let Some((last, _)) = points.last().filter(|_| points.len() > 1) {
        body.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>\n",
            WIDTH - RIGHT,
            HEIGHT - 8.0,
            escape(last)
        ));
    }

    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\"><title>{}</title><desc>{}</desc>\n\
         <g class=\"axis\" stroke=\"#4a4a4a\"><line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{base}\"/><line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{:.1}\" y2=\"{base}\"/></g>\n\
         <text class=\"max\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{base}\" font-size=\"12\" text-anchor=\"end\">{}</text>\n\
         <g fill=\"#0b57d0\">\n{body}</g></svg>",
        escape(title),
        escape(&desc),
        WIDTH - RIGHT,
        LEFT - 6.0,
        TOP + 10.0,
        escape(&format(max)),
        LEFT - 6.0,
        escape(&format(0)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(n: i64) -> String {
        n.to_string()
    }

    fn points(values: &[(&str, i64)]) -> Vec<(String, i64)> {
        values.iter().map(|(l, v)| ((*l).to_string(), *v)).collect()
    }

    fn between<'a>(svg: &'a str, open: &str, close: &str) -> &'a str {
        let start = svg.find(open).unwrap() + open.len();
        let end = svg[start..].find(close).unwrap();
        &svg[start..start + end]
    }

    /// The heights of the bars, in order.
    fn heights(svg: &str) -> Vec<f64> {
        svg.split("height=\"")
            .skip(2) // the `<svg>`'s own height
            .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
            .collect()
    }

    #[test]
    fn an_accessible_picture_that_says_every_value() {
        let svg = bars(
            "Messages per day",
            &points(&[("2025-01-01", 2), ("2025-01-02", 0), ("2025-01-03", 8)]),
            count,
        );
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains("role=\"img\""));
        assert_eq!(between(&svg, "<title>", "</title>"), "Messages per day");
        assert_eq!(
            between(&svg, "<desc>", "</desc>"),
            "2025-01-01: 2; 2025-01-02: 0; 2025-01-03: 8"
        );
        assert_eq!(
            between(&svg, "class=\"max\"", "</text>").rsplit('>').next(),
            Some("8")
        );
        assert!(svg.contains(">2025-01-01</text>") && svg.contains(">2025-01-03</text>"));
        assert_eq!(svg.matches("<rect").count(), 3);
    }

    #[test]
    fn bars_scale_to_the_largest_value() {
        let svg = bars(
            "t",
            &points(&[("a", 2), ("b", 0), ("c", 8), ("d", 4)]),
            count,
        );
        let h = heights(&svg);
        assert_eq!(h.len(), 4);
        let full = HEIGHT - TOP - BOTTOM;
        assert_eq!(h, [full / 4.0, 0.0, full, full / 2.0]);
    }

    #[test]
    fn empty_zero_and_extreme_inputs_draw_without_failing() {
        let empty = bars("Nothing", &[], count);
        assert_eq!(between(&empty, "<desc>", "</desc>"), "No values.");
        assert!(!empty.contains("<rect"));

        let zeros = bars("Zeros", &points(&[("a", 0), ("b", 0)]), count);
        assert_eq!(heights(&zeros), [0.0, 0.0]);
        assert!(!zeros.contains("NaN") && !zeros.contains("inf"));

        let wild = bars(
            "Wild",
            &points(&[("lo", i64::MIN), ("hi", i64::MAX), ("x", -5)]),
            count,
        );
        let h = heights(&wild);
        assert_eq!(h[0], 0.0);
        assert_eq!(h[2], 0.0);
        assert!((h[1] - (HEIGHT - TOP - BOTTOM)).abs() < 0.01);
        assert!(between(&wild, "<desc>", "</desc>").contains("lo: -9223372036854775808"));

        let many: Vec<(String, i64)> = (0..366).map(|i| (format!("d{i}"), i)).collect();
        assert_eq!(bars("Year", &many, count).matches("<rect").count(), 366);
    }

    #[test]
    fn every_text_is_escaped() {
        fn odd(n: i64) -> String {
            format!("<{n}> & \"more\"")
        }
        let svg = bars(
            "<script>alert(1)</script>",
            &points(&[("a<b", 1), ("'q'&", 2)]),
            odd,
        );
        assert!(!svg.contains("<script>") && !svg.contains("<b") && !svg.contains("<1>"));
        assert!(svg.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
        assert!(svg.contains("a&lt;b: &lt;1&gt; &amp; &quot;more&quot;"));
        assert!(svg.contains("&apos;q&apos;&amp;"));
    }

    #[test]
    fn money_reads_as_money() {
        let svg = bars(
            "Cost per day",
            &points(&[("2025-01-01", 150_000_000)]),
            crate::sessions::money,
        );
        assert_eq!(
            between(&svg, "<desc>", "</desc>"),
            "2025-01-01: $1.50000000"
        );
        assert!(svg.contains(">$0.00000000</text>"));
    }
}
