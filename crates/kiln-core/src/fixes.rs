//! Remedies that need a new model or data pipeline become a new experiment file that extends
//! the current one with just the changed settings.

use std::io;
use std::path::{Path, PathBuf};

/// Writes `<stem>-<suffix>.toml` beside `base` (or `-2`, `-3`, … if taken), extending it with
/// `settings` (dotted key, TOML value). Returns the new file's path.
pub fn write_extending(
    base: &Path,
    suffix: &str,
    settings: &[(String, String)],
) -> io::Result<PathBuf> {
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "experiment".into());
    let file_name = base
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = base.parent().unwrap_or(Path::new("."));
    let mut table = toml::Table::new();
    table.insert("extends".into(), toml::Value::String(file_name.clone()));
    table.insert(
        "name".into(),
        toml::Value::String(format!("{stem}-{suffix}")),
    );
    for (key, raw) in settings {
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let (section, name) = key.split_once('.').unwrap_or(("", key));
        let slot = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(inner) = slot {
            inner.insert(name.to_string(), value);
        }
    }
    let text = format!(
        "# Written by kiln: {file_name} with the {suffix} fix. Edit freely.\n{}",
        toml::to_string(&table).map_err(io::Error::other)?
    );
    let mut attempt = 1;
    loop {
        let name = if attempt == 1 {
            format!("{stem}-{suffix}.toml")
        } else {
            format!("{stem}-{suffix}-{attempt}.toml")
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                io::Write::write_all(&mut file, text.as_bytes())?;
                return Ok(path);
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => attempt += 1,
            Err(err) => return Err(err),
        }
    }
}
