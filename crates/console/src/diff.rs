//! A line diff between two chatbot versions' configuration (YAML), and its
//! hunks with a few unchanged lines around them, so the page shows what
//! changed rather than two whole files.
//!
//! Lines are compared as `str::lines` gives them: a missing final newline or
//! `\r\n` against `\n` is not a change, which is what a reader of the YAML
//! cares about.
//!
//! The work is bounded whatever the texts: the common head and tail are
//! matched first (an edit to a configuration is usually a few lines in one
//! place), then Myers' algorithm runs on the middle, in time proportional
//! to its length times the number of edits. Past `MAX_LINES` in the middle
//! of either text, or `MAX_EDITS` edits, the middle is shown as all removed
//! then all added: texts that different aren't read line by line anyway,
//! and the page must answer quickly.

/// Lines of either text, once the common head and tail are set aside.
const MAX_LINES: usize = 5_000;
/// Edits (lines added plus lines removed). Myers keeps one row per edit,
/// so this also bounds memory (about `MAX_EDITS²` positions).
const MAX_EDITS: usize = 1_000;

/// One line of the diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    Same(&'a str),
    Added(&'a str),
    Removed(&'a str),
}

impl<'a> Change<'a> {
    /// The line's text.
    pub fn line(&self) -> &'a str {
        match *self {
            Change::Same(l) | Change::Added(l) | Change::Removed(l) => l,
        }
    }

    fn is_same(&self) -> bool {
        matches!(self, Change::Same(_))
    }
}

/// A run of changes with up to `context` unchanged lines either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk<'a> {
    /// First old line in the hunk, from 1; when the hunk removes nothing and
    /// shows no old line, the line it comes after (0 at the top), as in
    /// `diff -u`.
    pub old_start: usize,
    /// Old lines in the hunk (same and removed).
    pub old_len: usize,
    /// As `old_start`, in the new text.
    pub new_start: usize,
    /// New lines in the hunk (same and added).
    pub new_len: usize,
    pub changes: Vec<Change<'a>>,
}

impl Hunk<'_> {
    /// `@@ -old_start,old_len +new_start,new_len @@`, as in `diff -u`.
    pub fn header(&self) -> String {
        format!(
            "@@ -{},{} +{},{} @@",
            self.old_start, self.old_len, self.new_start, self.new_len
        )
    }
}

/// The changes that turn `old` into `new`, line by line: the fewest
/// additions and removals (within the bounds above), removals first where
/// lines are replaced.
pub fn lines<'a>(old: &'a str, new: &'a str) -> Vec<Change<'a>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    diff_within(&a, &b, MAX_LINES, MAX_EDITS)
}

fn diff_within<'a>(
    a: &[&'a str],
    b: &[&'a str],
    max_lines: usize,
    max_edits: usize,
) -> Vec<Change<'a>> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a_rest, b_rest) = (a.get(head..).unwrap_or(&[]), b.get(head..).unwrap_or(&[]));
    let tail = a_rest
        .iter()
        .rev()
        .zip(b_rest.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let a_mid = a_rest.get(..a_rest.len() - tail).unwrap_or(&[]);
    let b_mid = b_rest.get(..b_rest.len() - tail).unwrap_or(&[]);

    let mut out: Vec<Change<'a>> = a.iter().take(head).map(|l| Change::Same(l)).collect();
    let middle = if a_mid.len() > max_lines || b_mid.len() > max_lines {
        None
    } else {
        myers(a_mid, b_mid, max_edits)
    };
    match middle {
        Some(changes) => out.extend(changes),
        None => {
            out.extend(a_mid.iter().map(|l| Change::Removed(l)));
            out.extend(b_mid.iter().map(|l| Change::Added(l)));
        }
    }
    out.extend(
        a_rest
            .iter()
            .skip(a_rest.len() - tail)
            .map(|l| Change::Same(l)),
    );
    removals_first(&mut out);
    out
}

/// Myers' greedy shortest edit script (1986): row `d` holds, per diagonal
/// `k = x - y`, the furthest `x` reached with `d` edits. `None` past
/// `max_edits` edits.
fn myers<'a>(a: &[&'a str], b: &[&'a str], max_edits: usize) -> Option<Vec<Change<'a>>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (a.len() + b.len()).min(max_edits) as isize;
    let offset = max + 1;
    let mut v = vec![0isize; (2 * max + 3) as usize];
    let get = |v: &[isize], k: isize| v.get((k + offset) as usize).copied().unwrap_or(0);
    // Row d keeps diagonals -d..=d only, at index k + d.
    let mut rows: Vec<Vec<isize>> = Vec::new();
    for d in 0..=max {
        for k in (-d..=d).step_by(2) {
            let mut x = if k == -d || (k != d && get(&v, k - 1) < get(&v, k + 1)) {
                get(&v, k + 1)
            } else {
                get(&v, k - 1) + 1
            };
            let mut y = x - k;
            while x < n && y < m && a.get(x as usize) == b.get(y as usize) {
                x += 1;
                y += 1;
            }
            if let Some(slot) = v.get_mut((k + offset) as usize) {
                *slot = x;
            }
            if x >= n && y >= m {
                return Some(backtrack(a, b, &rows));
            }
        }
        let row = v
            .get((offset - d) as usize..=(offset + d) as usize)
            .map(<[isize]>::to_vec)
            .unwrap_or_default();
        rows.push(row);
    }
    None
}

/// Walks the rows back from the end: each row's choice of diagonal is one
/// edit, and the equal lines between are the snake that followed it.
fn backtrack<'a>(a: &[&'a str], b: &[&'a str], rows: &[Vec<isize>]) -> Vec<Change<'a>> {
    let line = |s: &[&'a str], i: isize| s.get(i as usize).copied().unwrap_or("");
    let (mut x, mut y) = (a.len() as isize, b.len() as isize);
    let mut out = Vec::new();
    // The end was reached with `rows.len()` edits; row d - 1 holds where
    // the d-th edit started from.
    for d in (1..=rows.len()).rev() {
        let prev = rows.get(d - 1).map_or(&[][..], Vec::as_slice);
        let d = d as isize;
        let at = |k: isize| prev.get((k + d - 1) as usize).copied().unwrap_or(0);
        let k = x - y;
        let prev_k = if k == -d || (k != d && at(k - 1) < at(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = at(prev_k);
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            out.push(Change::Same(line(a, x - 1)));
            x -= 1;
            y -= 1;
        }
        if x == prev_x {
            out.push(Change::Added(line(b, y - 1)));
        } else {
            out.push(Change::Removed(line(a, x - 1)));
        }
        (x, y) = (prev_x, prev_y);
    }
    while x > 0 && y > 0 {
        out.push(Change::Same(line(a, x - 1)));
        x -= 1;
        y -= 1;
    }
    out.reverse();
    out
}

/// Within each run of changed lines, the removed before the added: the
/// same edit, read as "this became that".
fn removals_first(changes: &mut [Change<'_>]) {
    for run in changes.split_mut(Change::is_same) {
        run.sort_by_key(|c| !matches!(c, Change::Removed(_)));
    }
}

/// The changes grouped into hunks, each with up to `context` unchanged
/// lines before and after; hunks closer than that merge. No change, no hunk.
pub fn unified<'a>(changes: &[Change<'a>], context: usize) -> Vec<Hunk<'a>> {
    let changed: Vec<usize> = changes
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_same())
        .map(|(i, _)| i)
        .collect();
    let mut hunks = Vec::new();
    // Old and new lines before `seen`, counted once across all hunks.
    let (mut seen, mut old_line, mut new_line) = (0, 0, 0);
    let mut i = 0;
    while let Some(&first) = changed.get(i) {
        let mut last = first;
        i += 1;
        while let Some(&next) = changed.get(i) {
            if next - last - 1 > context.saturating_mul(2) {
                break;
            }
            last = next;
            i += 1;
        }
        let start = first.saturating_sub(context);
        let end = last
            .saturating_add(context)
            .saturating_add(1)
            .min(changes.len());
        for c in changes.get(seen..start).unwrap_or(&[]) {
            old_line += usize::from(!matches!(c, Change::Added(_)));
            new_line += usize::from(!matches!(c, Change::Removed(_)));
        }
        seen = start;
        let slice = changes.get(start..end).unwrap_or(&[]);
        let old_len = slice
            .iter()
            .filter(|c| !matches!(c, Change::Added(_)))
            .count();
        let new_len = slice
            .iter()
            .filter(|c| !matches!(c, Change::Removed(_)))
            .count();
        hunks.push(Hunk {
            old_start: old_line + usize::from(old_len > 0),
            old_len,
            new_start: new_line + usize::from(new_len > 0),
            new_len,
            changes: slice.to_vec(),
        });
    }
    hunks
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Change::{Added, Removed, Same};
    use super::*;

    /// The old text's lines (same and removed) and the new text's (same and
    /// added), as the diff tells them.
    fn sides<'a>(changes: &[Change<'a>]) -> (Vec<&'a str>, Vec<&'a str>) {
        let old = changes.iter().filter(|c| !matches!(c, Added(_)));
        let new = changes.iter().filter(|c| !matches!(c, Removed(_)));
        (
            old.map(Change::line).collect(),
            new.map(Change::line).collect(),
        )
    }

    /// Longest common subsequence by the textbook table, to check Myers
    /// finds the fewest edits.
    fn lcs(a: &[&str], b: &[&str]) -> usize {
        let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                t[i][j] = if a[i] == b[j] {
                    t[i + 1][j + 1] + 1
                } else {
                    t[i + 1][j].max(t[i][j + 1])
                };
            }
        }
        t[0][0]
    }

    #[test]
    fn identical_texts_are_all_same_and_no_hunk() {
        let text = "name: Bot\npipeline:\n  nodes: []\n";
        let d = lines(text, text);
        assert_eq!(
            d,
            [Same("name: Bot"), Same("pipeline:"), Same("  nodes: []")]
        );
        assert!(unified(&d, 3).is_empty());
        // Line endings are not changes.
        assert!(
            lines("a\r\nb\r\n", "a\nb")
                .iter()
                .all(|c| matches!(c, Same(_)))
        );
    }

    #[test]
    fn empty_inputs() {
        assert!(lines("", "").is_empty());
        assert!(unified(&[], 3).is_empty());
        assert_eq!(lines("", "a\nb"), [Added("a"), Added("b")]);
        assert_eq!(lines("a\nb", ""), [Removed("a"), Removed("b")]);
        let h = unified(&lines("", "a\nb"), 3);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].header(), "@@ -0,0 +1,2 @@");
        let h = unified(&lines("a\nb", ""), 3);
        assert_eq!(h[0].header(), "@@ -1,2 +0,0 @@");
    }

    #[test]
    fn pure_additions() {
        let d = lines("a\nb\nc", "a\nx\nb\nc\ny");
        assert_eq!(d, [Same("a"), Added("x"), Same("b"), Same("c"), Added("y")]);
        let h = unified(&d, 0);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].header(), "@@ -1,0 +2,1 @@");
        assert_eq!(h[0].changes, [Added("x")]);
        assert_eq!(h[1].header(), "@@ -3,0 +5,1 @@");
    }

    #[test]
    fn pure_removals() {
        let d = lines("a\nx\nb\nc\ny", "a\nb\nc");
        assert_eq!(
            d,
            [Same("a"), Removed("x"), Same("b"), Same("c"), Removed("y")]
        );
        let h = unified(&d, 1);
        assert_eq!(h.len(), 1, "a gap of two lines is within twice the context");
        assert_eq!(h[0].header(), "@@ -1,5 +1,3 @@");
        assert_eq!(h[0].changes, d);
    }

    #[test]
    fn a_modification_in_the_middle() {
        let old = "1\n2\n3\n4\n5\nmodel: gpt-4o\n7\n8\n9\n10\n11";
        let new = "1\n2\n3\n4\n5\nmodel: gpt-4o-mini\ntemperature: 0.2\n7\n8\n9\n10\n11";
        let d = lines(old, new);
        assert_eq!(d.len(), 13);
        assert_eq!(
            d[5..8],
            [
                Removed("model: gpt-4o"),
                Added("model: gpt-4o-mini"),
                Added("temperature: 0.2"),
            ]
        );
        let h = unified(&d, 2);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].header(), "@@ -4,5 +4,6 @@");
        assert_eq!(h[0].changes.first(), Some(&Same("4")));
        assert_eq!(h[0].changes.last(), Some(&Same("8")));
        // Everything, when the context is larger than the text.
        let all = unified(&d, usize::MAX);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].changes, d);
        assert_eq!(all[0].header(), "@@ -1,11 +1,12 @@");
    }

    #[test]
    fn replaced_lines_read_removed_then_added() {
        assert_eq!(
            lines("a\nb\nc", "a\nx\nc"),
            [Same("a"), Removed("b"), Added("x"), Same("c")]
        );
        assert_eq!(
            lines("p\nq", "r\ns"),
            [Removed("p"), Removed("q"), Added("r"), Added("s")]
        );
    }

    #[test]
    fn distant_changes_make_separate_hunks() {
        let old: Vec<String> = (0..30).map(|i| i.to_string()).collect();
        let mut new = old.clone();
        new[3] = "three".into();
        new[20] = "twenty".into();
        let (old, new) = (old.join("\n"), new.join("\n"));
        let d = lines(&old, &new);
        let h = unified(&d, 3);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].header(), "@@ -1,7 +1,7 @@");
        assert_eq!(h[1].header(), "@@ -18,7 +18,7 @@");
        assert_eq!(h[1].changes[3], Removed("20"));
        // A gap of exactly twice the context joins them.
        let h = unified(&d, 8);
        assert_eq!(h.len(), 1);
        let h = unified(&d, 7);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn past_the_bounds_the_middle_is_removed_then_added() {
        let a = ["head", "a", "b", "c", "tail"];
        let b = ["head", "b", "c", "d", "tail"];
        assert_eq!(
            diff_within(&a, &b, 100, 100),
            [
                Same("head"),
                Removed("a"),
                Same("b"),
                Same("c"),
                Added("d"),
                Same("tail")
            ]
        );
        let whole = [
            Same("head"),
            Removed("a"),
            Removed("b"),
            Removed("c"),
            Added("b"),
            Added("c"),
            Added("d"),
            Same("tail"),
        ];
        // Two edits needed, one allowed.
        assert_eq!(diff_within(&a, &b, 100, 1), whole);
        // Three lines in the middle, two allowed.
        assert_eq!(diff_within(&a, &b, 2, 100), whole);
        assert_eq!(diff_within(&a, &b, 3, 2).len(), 6);
    }

    #[test]
    fn large_texts_stay_quick() {
        // Every other line changed in 20,000 lines: well past both bounds.
        let old: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let new: String = (0..20_000)
            .map(|i| {
                if i % 2 == 0 {
                    format!("line {i}\n")
                } else {
                    format!("new {i}\n")
                }
            })
            .collect();
        let d = lines(&old, &new);
        assert_eq!(sides(&d).0.len(), 20_000);
        assert_eq!(sides(&d).1.len(), 20_000);
        // Within the line bound but past the edit bound.
        let (o, n) = (
            old.lines().take(4_000).collect::<Vec<_>>(),
            new.lines().take(4_000).collect::<Vec<_>>(),
        );
        let d = diff_within(&o, &n, MAX_LINES, MAX_EDITS);
        assert_eq!(d.iter().filter(|c| matches!(c, Same(_))).count(), 1);
    }

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "c", "", "  key: x"]),
            0..25,
        )
        .prop_map(|v| v.join("\n"))
    }

    proptest! {
        #[test]
        fn the_diff_rebuilds_both_texts_with_the_fewest_edits(old in text(), new in text()) {
            let d = lines(&old, &new);
            let (o, n) = sides(&d);
            prop_assert_eq!(&o, &old.lines().collect::<Vec<_>>());
            prop_assert_eq!(&n, &new.lines().collect::<Vec<_>>());
            let same = d.iter().filter(|c| matches!(c, Same(_))).count();
            prop_assert_eq!(same, lcs(&o, &n));
        }

        #[test]
        fn the_fallback_rebuilds_both_texts_too(old in text(), new in text(), edits in 0usize..4) {
            let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
            let (o, n) = sides(&diff_within(&a, &b, 100, edits));
            prop_assert_eq!(o, a);
            prop_assert_eq!(n, b);
        }

        #[test]
        fn hunks_hold_every_change_once_and_count_their_lines(
            old in text(), new in text(), context in 0usize..4,
        ) {
            let d = lines(&old, &new);
            let hunks = unified(&d, context);
            let in_hunks: Vec<Change> = hunks
                .iter()
                .flat_map(|h| h.changes.iter().copied().filter(|c| !matches!(c, Same(_))))
                .collect();
            let all: Vec<Change> = d.iter().copied().filter(|c| !matches!(c, Same(_))).collect();
            prop_assert_eq!(in_hunks, all);
            let old_lines: Vec<&str> = old.lines().collect();
            for h in &hunks {
                let (o, n) = sides(&h.changes);
                prop_assert_eq!(h.old_len, o.len());
                prop_assert_eq!(h.new_len, n.len());
                // The hunk's old lines are where its header says.
                if h.old_len > 0 {
                    prop_assert_eq!(&old_lines[h.old_start - 1..h.old_start - 1 + h.old_len], &o[..]);
                }
                // At most `context` unchanged lines at either end.
                let lead = h.changes.iter().take_while(|c| matches!(c, Same(_))).count();
                let trail = h.changes.iter().rev().take_while(|c| matches!(c, Same(_))).count();
                prop_assert!(lead <= context && trail <= context);
            }
        }
    }
}
