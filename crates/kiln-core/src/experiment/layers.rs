//! Reading experiment files into raw TOML layers: syntax and key checks with line numbers,
//! `extends` chains, `--set` overrides, and the merge that records where each value came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, Origin, show_value, type_name};
use super::schema::{self, Kind};

/// Raw settings with the origin of every leaf value, keyed by dotted path (`model.dropout`).
#[derive(Debug, Default, Clone)]
pub struct Layer {
    pub table: toml::Table,
    pub origins: BTreeMap<String, Origin>,
}

impl Layer {
    /// Puts `other` on top of `self`: its keys replace ours, section by section.
    pub fn overlay(mut self, other: Layer) -> Layer {
        for (key, value) in other.table {
            match (self.table.get_mut(&key), value) {
                (Some(toml::Value::Table(ours)), toml::Value::Table(theirs)) => {
                    ours.extend(theirs);
                }
                (_, value) => {
                    self.table.insert(key, value);
                }
            }
        }
        self.origins.extend(other.origins);
        self
    }

    /// The value at a dotted path.
    pub fn get(&self, path: &str) -> Option<&toml::Value> {
        match path.split_once('.') {
            None => self.table.get(path),
            Some((section, key)) => self.table.get(section)?.as_table()?.get(key),
        }
    }

    /// Where the value at `path` came from.
    pub fn origin(&self, path: &str) -> Origin {
        self.origins.get(path).cloned().unwrap_or(Origin::Default)
    }
}

/// Reads `path` and every file it extends, the base at the bottom.
pub fn read_with_extends(path: &Path) -> Result<Layer, ConfigError> {
    read_chain(path, &mut Vec::new())
}

fn read_chain(path: &Path, chain: &mut Vec<PathBuf>) -> Result<Layer, ConfigError> {
    let mut layer = read_file(path)?;
    let Some(extends) = layer.table.remove("extends") else {
        return Ok(layer);
    };
    let origin = layer.origin("extends");
    let target = extends.as_str().unwrap_or_default().to_string();
    let base_path = path.parent().unwrap_or(Path::new(".")).join(&target);
    let canonical = base_path
        .canonicalize()
        .map_err(|source| ConfigError::Extends {
            origin: origin.clone(),
            target: target.clone(),
            problem: format!("cannot open {}: {source}", base_path.display()),
        })?;
    chain.push(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
    if chain.contains(&canonical) {
        return Err(ConfigError::Extends {
            origin,
            target,
            problem: "the files extend each other in a cycle".into(),
        });
    }
    let base = read_chain(&base_path, chain)?;
    chain.pop();
    layer.origins.remove("extends");
    Ok(base.overlay(layer))
}

/// Reads one file: TOML syntax, known keys and their types, each problem with its line.
pub fn read_file(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|problem| ConfigError::Read {
        path: path.to_path_buf(),
        problem,
    })?;
    let at = |offset: usize| Origin::File {
        path: path.to_path_buf(),
        line: line_of(&text, offset),
    };
    let table: toml::Table = toml::from_str(&text).map_err(|err| ConfigError::Syntax {
        origin: at(err.span().map_or(0, |span| span.start)),
        message: err.message().trim().to_string(),
    })?;
    let key_offsets = key_offsets(&text);
    let origin_of = |key: &str| at(key_offsets.get(key).copied().unwrap_or(0));

    let mut origins = BTreeMap::new();
    let mut errors = Vec::new();
    for (key, value) in &table {
        if let (toml::Value::Table(section), SWEEP) = (value, key.as_str()) {
            errors.extend(section.iter().filter_map(|(name, values)| {
                check_sweep(name, values, origin_of(&format!("{SWEEP}.{name}"))).err()
            }));
        } else if let toml::Value::Table(section) = value {
            if !schema::is_section(key) {
                errors.push(unknown_key(origin_of(key), key));
                continue;
            }
            for (name, value) in section {
                let dotted = format!("{key}.{name}");
                let origin = origin_of(&dotted);
                if let Err(err) = check_key(&dotted, value, origin.clone()) {
                    errors.push(err);
                }
                origins.insert(dotted, origin);
            }
        } else if schema::is_section(key) {
            errors.push(ConfigError::WrongType {
                origin: origin_of(key),
                key: key.clone(),
                expected: format!("a table ([{key}])"),
                found: type_name(value),
            });
        } else {
            let origin = origin_of(key);
            if let Err(err) = check_key(key, value, origin.clone()) {
                errors.push(err);
            }
            origins.insert(key.clone(), origin);
        }
    }
    match errors.len() {
        0 => Ok(Layer { table, origins }),
        1 => Err(errors.remove(0)),
        _ => Err(ConfigError::Several(errors)),
    }
}

/// Applies `--set key=value` overrides on top of `layer`.
pub fn apply_overrides(layer: Layer, overrides: &[String]) -> Result<Layer, ConfigError> {
    let mut result = layer;
    for argument in overrides {
        let bad = |problem: String| ConfigError::BadOverride {
            argument: argument.clone(),
            problem,
        };
        let (key, raw) = split_override(argument)
            .ok_or_else(|| bad("expected KEY=VALUE, e.g. model.dropout=0.3".into()))?;
        let Some(kind) = schema::kind_of(key) else {
            return Err(ConfigError::UnknownKey {
                origin: Origin::CommandLine {
                    argument: argument.clone(),
                },
                key: key.to_string(),
                suggestion: schema::nearest(key),
            });
        };
        if key == "extends" {
            return Err(bad("`extends` can only be set in a file".into()));
        }
        let value = parse_override_value(raw.trim(), kind);
        let origin = Origin::CommandLine {
            argument: argument.clone(),
        };
        check_key(key, &value, origin.clone())?;
        let mut table = toml::Table::new();
        match key.split_once('.') {
            None => {
                table.insert(key.to_string(), value);
            }
            Some((section, name)) => {
                let mut inner = toml::Table::new();
                inner.insert(name.to_string(), value);
                table.insert(section.to_string(), toml::Value::Table(inner));
            }
        }
        let origins = BTreeMap::from([(key.to_string(), origin)]);
        result = result.overlay(Layer { table, origins });
    }
    Ok(result)
}

/// A `--set` argument's key and raw value: `model.dropout=0.3` → (`model.dropout`, `0.3`).
pub fn split_override(argument: &str) -> Option<(&str, &str)> {
    argument.split_once('=').map(|(key, raw)| (key.trim(), raw))
}

/// A `--set` value is TOML; a bare word for a string key needs no quotes.
fn parse_override_value(raw: &str, kind: Kind) -> toml::Value {
    let parsed = toml::from_str::<toml::Table>(&format!("value = {raw}"))
        .ok()
        .and_then(|mut table| table.remove("value"));
    match parsed {
        Some(value) if !matches!(kind, Kind::String | Kind::Choice(_)) || value.is_str() => value,
        _ => toml::Value::String(raw.to_string()),
    }
}

/// The table `kiln sweep` reads its grid from.
const SWEEP: &str = "sweep";

/// A `[sweep]` entry: a known dotted key and a non-empty list of values of its type.
fn check_sweep(key: &str, values: &toml::Value, origin: Origin) -> Result<(), ConfigError> {
    let Some(kind) = schema::kind_of(key) else {
        return Err(unknown_key(origin, key));
    };
    let fits = match values {
        toml::Value::Array(items) => !items.is_empty() && items.iter().all(|v| kind.accepts(v)),
        _ => false,
    };
    if fits {
        return Ok(());
    }
    Err(ConfigError::WrongType {
        origin,
        key: format!("{SWEEP}.\"{key}\""),
        expected: format!("a non-empty list, each value {}", kind.describe()),
        found: type_name(values),
    })
}

fn check_key(key: &str, value: &toml::Value, origin: Origin) -> Result<(), ConfigError> {
    let Some(kind) = schema::kind_of(key) else {
        return Err(unknown_key(origin, key));
    };
    if kind.accepts(value) {
        return Ok(());
    }
    let found = match (kind, value) {
        (Kind::Choice(_), toml::Value::String(_)) => show_value(value),
        _ => type_name(value),
    };
    Err(ConfigError::WrongType {
        origin,
        key: key.to_string(),
        expected: kind.describe(),
        found,
    })
}

fn unknown_key(origin: Origin, key: &str) -> ConfigError {
    ConfigError::UnknownKey {
        origin,
        key: key.to_string(),
        suggestion: schema::nearest(key),
    }
}

/// Byte offset of each key's first appearance, by dotted path (`section.key`).
fn key_offsets(text: &str) -> BTreeMap<String, usize> {
    let mut offsets = BTreeMap::new();
    let Ok(document) = toml::de::DeTable::parse(text) else {
        return offsets;
    };
    for (key, value) in document.get_ref() {
        let name = key.get_ref().to_string();
        offsets.insert(name.clone(), key.span().start);
        if let toml::de::DeValue::Table(section) = value.get_ref() {
            for (inner, _) in section {
                offsets.insert(format!("{name}.{}", inner.get_ref()), inner.span().start);
            }
        }
    }
    offsets
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
