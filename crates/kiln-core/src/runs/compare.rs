//! What differs between runs' experiments: each resolved `experiment.toml` flattened to dotted
//! keys, then only the keys whose values are not all the same.

use std::collections::{BTreeMap, BTreeSet};

/// `model.dropout` → `0.3`, for every leaf of a resolved experiment file.
pub fn flatten_experiment(text: &str) -> BTreeMap<String, String> {
    let mut flat = BTreeMap::new();
    if let Ok(table) = toml::from_str::<toml::Table>(text) {
        flatten_into("", &table, &mut flat);
    }
    flat
}

fn flatten_into(prefix: &str, table: &toml::Table, flat: &mut BTreeMap<String, String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten_into(&path, inner, flat),
            toml::Value::String(s) => {
                flat.insert(path, s.clone());
            }
            other => {
                flat.insert(path, other.to_string());
            }
        }
    }
}

/// Keys whose values differ between the runs (absent counts as a value), with each run's value.
/// The run's name and description are left out: they always differ and say nothing.
pub fn differing_settings(runs: &[BTreeMap<String, String>]) -> Vec<(String, Vec<Option<String>>)> {
    let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.keys()).collect();
    keys.into_iter()
        .filter(|key| !matches!(key.as_str(), "name" | "description"))
        .filter_map(|key| {
            let values: Vec<Option<String>> = runs.iter().map(|r| r.get(key).cloned()).collect();
            let first = &values[0];
            values
                .iter()
                .any(|v| v != first)
                .then(|| (key.clone(), values))
        })
        .collect()
}
