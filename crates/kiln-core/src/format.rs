//! One home for how kiln writes numbers and labels: learning rates, durations, the tricks in
//! use, and the aligned plain-text tables of `--plain` output and the ladder.

/// A learning rate in short scientific notation: `1e-3`, or `2.50e-4` when one digit is not
/// exact.
pub fn lr(value: f64) -> String {
    let short = format!("{value:.0e}");
    let exact = short
        .parse::<f64>()
        .is_ok_and(|v| (v - value).abs() <= value.abs() * 1e-9);
    if exact { short } else { format!("{value:.2e}") }
}

/// A duration for people: `42s`, `3m07s`, `2h05m`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `on` or `off`.
pub fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The article's tricks a run uses, each written the way one kind of output needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tricks {
    pub dropout: f64,
    pub batch_norm: bool,
    pub augmentation: bool,
}

impl Tricks {
    /// For a progress line: `dropout 0.3 · batch norm on · augmentation off`.
    pub fn sentence(&self) -> String {
        format!(
            "dropout {} · batch norm {} · augmentation {}",
            self.dropout,
            on_off(self.batch_norm),
            on_off(self.augmentation)
        )
    }

    /// For a table cell: `drop=0.30 bn aug` (only the tricks in use after the dropout).
    pub fn compact(&self) -> String {
        let mut parts = vec![format!("drop={:.2}", self.dropout)];
        if self.batch_norm {
            parts.push("bn".into());
        }
        if self.augmentation {
            parts.push("aug".into());
        }
        parts.join(" ")
    }
}

/// A number of parameters in thousands: `207k`.
pub fn thousands(count: usize) -> String {
    format!("{}k", (count + 500) / 1000)
}

/// A count for a narrow column: `950`, `13.7k`, `207k`, `1.2M`.
pub fn count(n: usize) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..100_000 => format!("{:.1}k", n as f64 / 1e3),
        100_000..1_000_000 => format!("{:.0}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// `-` for a missing value.
pub fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".into())
}

/// Text as one table token: whitespace becomes `_`, nothing becomes `-`.
pub fn token(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.replace(char::is_whitespace, "_")
    }
}

/// Pads every column to its widest cell, two spaces apart, one row a line (no trailing spaces).
pub fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
