//! Errors in experiment files and `--set` overrides, each naming where the bad value came from.

use std::fmt;
use std::path::PathBuf;

/// Where a setting's value came from: a line of a file, a `--set` argument, or kiln's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: usize },
    CommandLine { argument: String },
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::CommandLine { argument } => write!(f, "--set {argument}"),
            Origin::Default => write!(f, "kiln's default"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The I/O error is part of the message, not a source: `kiln: {err:#}` would say it twice.
    #[error("{}: cannot read experiment file: {problem}", path.display())]
    Read {
        path: PathBuf,
        problem: std::io::Error,
    },
    #[error("{origin}: invalid TOML: {message}")]
    Syntax { origin: Origin, message: String },
    #[error("{origin}: unknown key `{key}`{}", suggestion_text(.suggestion))]
    UnknownKey {
        origin: Origin,
        key: String,
        suggestion: Option<String>,
    },
    #[error("{origin}: `{key}` must be {expected}, found {found}")]
    WrongType {
        origin: Origin,
        key: String,
        expected: String,
        found: String,
    },
    #[error("{origin}: `{key}` = {value}: {problem}")]
    Invalid {
        origin: Origin,
        key: String,
        value: String,
        problem: String,
    },
    #[error("{origin}: extends \"{target}\": {problem}")]
    Extends {
        origin: Origin,
        target: String,
        problem: String,
    },
    #[error("--set {argument}: {problem}")]
    BadOverride { argument: String, problem: String },
    #[error("{}", list(.0))]
    Several(Vec<ConfigError>),
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(key) => format!("; did you mean `{key}`?"),
        None => String::new(),
    }
}

fn list(errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// A short, readable rendering of a TOML value for messages.
pub fn show_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Table(_) => "a table".to_string(),
        toml::Value::Array(_) => format!("the list {value}"),
        other => other.to_string(),
    }
}

/// The TOML type name of a value, for "found …" in messages.
pub fn type_name(value: &toml::Value) -> String {
    let kind = match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    };
    match value {
        toml::Value::Table(_) => kind.to_string(),
        _ => format!("{kind} ({})", show_value(value)),
    }
}
