//! Result rows: the JSON file and the one table printed on stdout.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::http::Sample;
use crate::procstat::kib_to_mib;

/// Row names in the order the table and the JSON list them.
pub const ORDER: &[&str] = &[
    "raw_db_turn_rows",
    "noop_http",
    "turn_channels",
    "turn_code",
    "turn_openai",
    "experiments_list",
    "sessions_list",
    "timeout_scan",
    "session_detail",
    "console_pages",
    "widget_flow",
    "in_flight",
    "idle",
];

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: &'static str,
    pub concurrency: Option<u64>,
    pub rps: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub errors: Option<u64>,
    pub requests: Option<u64>,
    pub peak_rss_mib: Option<f64>,
    pub statements_per_request: Option<f64>,
    pub baseline_name: Option<String>,
    pub baseline_rps: Option<f64>,
    pub ratio: Option<f64>,
    pub target: String,
    /// The original's throughput for this measure, for the "vs orig" column.
    #[serde(skip)]
    pub original_rps: Option<f64>,
    /// Printed under the table.
    #[serde(skip)]
    pub note: Option<String>,
    /// Server CPU during the point, % of one core (table only).
    #[serde(skip)]
    pub server_cpu_pct: Option<f64>,
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

impl Row {
    pub fn empty(name: &'static str, target: &str) -> Row {
        Row {
            name,
            concurrency: None,
            rps: None,
            p50_ms: None,
            p90_ms: None,
            p99_ms: None,
            errors: None,
            requests: None,
            peak_rss_mib: None,
            statements_per_request: None,
            baseline_name: None,
            baseline_rps: None,
            ratio: None,
            target: target.to_string(),
            original_rps: None,
            note: None,
            server_cpu_pct: None,
        }
    }

    pub fn from_sample(name: &'static str, s: &Sample, target: &str) -> Row {
        Row {
            concurrency: Some(s.concurrency as u64),
            rps: Some(round(s.rps(), 1)),
            p50_ms: s.percentile_ms(0.50).map(|v| round(v, 2)),
            p90_ms: s.percentile_ms(0.90).map(|v| round(v, 2)),
            p99_ms: s.percentile_ms(0.99).map(|v| round(v, 2)),
            errors: Some(s.errors),
            requests: Some(s.ok + s.errors),
            peak_rss_mib: s.peak_rss_kib.map(|k| round(kib_to_mib(k), 1)),
            statements_per_request: s.statements_per_request.map(|v| round(v, 2)),
            server_cpu_pct: s.server_cpu_pct,
            ..Row::empty(name, target)
        }
    }

    pub fn baseline(mut self, name: &str, rps: Option<f64>) -> Row {
        self.baseline_name = Some(name.to_string());
        self.baseline_rps = rps;
        self.ratio = match (self.rps, rps) {
            (Some(a), Some(b)) if b > 0.0 => Some(round(a / b, 3)),
            _ => None,
        };
        self
    }

    /// Compared by median latency instead of throughput: `ratio` is this
    /// row's p50 ÷ the baseline's (how many times the floor a request costs).
    pub fn baseline_p50(mut self, name: &str, p50_ms: f64) -> Row {
        self.baseline_name = Some(format!("{name} p50 {p50_ms:.2} ms"));
        self.baseline_rps = None;
        self.ratio = match self.p50_ms {
            Some(p) if p50_ms > 0.0 => Some(round(p / p50_ms, 3)),
            _ => None,
        };
        self
    }

    pub fn original(mut self, rps: f64) -> Row {
        self.original_rps = Some(rps);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = Some(note.into());
        self
    }
}

/// The measure (`--only` name) a row belongs to: the console's rows are one
/// measure, `console_pages`.
pub fn measure_of(row: &str) -> &str {
    if row.starts_with("console_") {
        "console_pages"
    } else {
        row
    }
}

pub fn sort(rows: &mut [Row]) {
    // Stable: the console's rows keep the order they were measured in.
    rows.sort_by_key(|r| {
        (
            ORDER
                .iter()
                .position(|n| *n == measure_of(r.name))
                .unwrap_or(ORDER.len()),
            r.concurrency,
        )
    });
}

pub fn write_json(rows: &[Row], path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(rows)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

fn opt(v: Option<f64>, places: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.places$}"))
}

/// What the figures were measured on: the commit (with `+dirty` when the
/// tree has changes), the CPU and its cores, the memory. Read beside the
/// table, they make runs on different machines or sources comparable.
pub fn machine_facts() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!(
        "commit {commit}{} · {model} · {cores} cores · {mem_gib:.1} GiB",
        if dirty { "+dirty" } else { "" }
    )
}

pub fn print_table(rows: &[Row], heading: &str) -> Result<()> {
    let header = [
        "name",
        "c",
        "rps",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "errors",
        "RSS MiB",
        "stmts/req",
        "srv CPU%",
        "baseline",
        "ratio",
        "vs orig",
        "target",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in rows {
        let baseline = match (&r.baseline_name, r.baseline_rps) {
            (Some(n), Some(b)) => format!("{n} ({b:.0}/s)"),
            (Some(n), None) => n.clone(),
            _ => "-".into(),
        };
        let vs_orig = match (r.rps, r.original_rps) {
            (Some(a), Some(o)) if o > 0.0 => format!("{:.1}x", a / o),
            _ => "-".into(),
        };
        cells.push(vec![
            r.name.to_string(),
            r.concurrency.map_or_else(|| "-".into(), |c| c.to_string()),
            opt(r.rps, 1),
            opt(r.p50_ms, 2),
            opt(r.p90_ms, 2),
            opt(r.p99_ms, 2),
            r.errors.map_or_else(|| "-".into(), |e| e.to_string()),
            opt(r.peak_rss_mib, 1),
            opt(r.statements_per_request, 1),
            opt(r.server_cpu_pct, 0),
            baseline,
            r.ratio.map_or_else(|| "-".into(), |x| format!("{x:.3}")),
            vs_orig,
            r.target.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{heading}")?;
    for (n, row) in cells.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            // Text columns left-aligned, figures right-aligned.
            if i == 0 || i == 10 || i == header.len() - 1 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
            line.push_str("  ");
        }
        writeln!(out, "{}", line.trim_end())?;
        if n == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            writeln!(out, "{}", "-".repeat(total))?;
        }
    }
    let notes: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            r.note.as_ref().map(|n| match r.concurrency {
                Some(c) => format!("{} (c={c}): {n}", r.name),
                None => format!("{}: {n}", r.name),
            })
        })
        .collect();
    if !notes.is_empty() {
        writeln!(out)?;
        for n in notes {
            writeln!(out, "* {n}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn machine_facts_name_the_commit_and_the_machine() {
        let f = super::machine_facts();
        assert!(f.starts_with("commit "), "{f}");
        assert!(f.contains(" cores · "), "{f}");
        assert!(f.ends_with(" GiB"), "{f}");
    }
}
