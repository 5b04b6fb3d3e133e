//! A sweep opened in the browser: its runs' settings against their results and states, sorted
//! by any column, re-read while runs wait or train.

use crate::sweep::SweepRow;

/// The opened sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepTable {
    pub id: String,
    /// The swept keys, the table's first columns.
    pub keys: Vec<String>,
    pub rows: Vec<SweepRow>,
    /// The Slurm job, when the sweep went to a cluster.
    pub job: Option<String>,
    /// Sorted by this column: a swept key's index, then best val, gap, state.
    pub sort: usize,
    pub descending: bool,
}

/// The columns after the swept keys that a sweep can be sorted by.
const RESULT_COLUMNS: [&str; 3] = ["best val", "gap", "state"];

impl SweepTable {
    /// Best validation accuracy first, as `kiln sweep status` prints it.
    pub fn new(id: String, keys: Vec<String>, rows: Vec<SweepRow>, job: Option<String>) -> Self {
        let sort = keys.len();
        let mut table = Self {
            id,
            keys,
            rows,
            job,
            sort,
            descending: true,
        };
        table.apply_sort();
        table
    }

    /// New rows (a refresh), keeping the chosen order.
    pub fn replace_rows(&mut self, rows: Vec<SweepRow>) {
        self.rows = rows;
        self.apply_sort();
    }

    pub fn column_titles(&self) -> Vec<String> {
        self.keys
            .iter()
            .cloned()
            .chain(RESULT_COLUMNS.iter().map(|c| c.to_string()))
            .collect()
    }

    pub fn sort_title(&self) -> String {
        self.column_titles().swap_remove(self.sort)
    }

    /// `next`: the next column (results descending, settings ascending); else reverse.
    pub fn sort_by(&mut self, next: bool) {
        if next {
            self.sort = (self.sort + 1) % (self.keys.len() + RESULT_COLUMNS.len());
            self.descending = self.sort == self.keys.len() || self.sort == self.keys.len() + 1;
        } else {
            self.descending = !self.descending;
        }
        self.apply_sort();
    }

    /// Whether a run waits or trains: the table is worth reading again.
    pub fn is_live(&self) -> bool {
        self.rows.iter().any(|row| {
            ["pending", "starting", "running"]
                .iter()
                .any(|state| row.state.starts_with(state))
        })
    }

    fn apply_sort(&mut self) {
        let keys = self.keys.len();
        let column = self.sort;
        let metric = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
        self.rows.sort_by(|a, b| {
            let order = match column {
                c if c < keys => setting_order(setting(a, c), setting(b, c)),
                c if c == keys => metric(a.best_validation_accuracy)
                    .total_cmp(&metric(b.best_validation_accuracy)),
                c if c == keys + 1 => metric(a.final_gap).total_cmp(&metric(b.final_gap)),
                _ => a.state.cmp(&b.state),
            }
            .then_with(|| a.task.cmp(&b.task))
            .then_with(|| a.run_id.cmp(&b.run_id));
            if self.descending {
                order.reverse()
            } else {
                order
            }
        });
    }
}

fn setting(row: &SweepRow, index: usize) -> &str {
    row.settings
        .get(index)
        .map_or("", |(_, value)| value.as_str())
}

/// Numbers by value (`3e-3` after `1e-3`), anything else as text.
fn setting_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}
