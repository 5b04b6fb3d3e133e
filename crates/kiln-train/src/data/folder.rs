//! Datasets on disk: an image folder (`root/<class>/*.png`) and a CSV-labelled folder
//! (`root/images/` plus a CSV naming each image and its label).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::decode::{Shape, decode_files};
use super::{DataError, Dataset};

const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "pgm", "ppm",
];

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error(dir))?;
    entries.sort();
    Ok(entries)
}

/// `root/<class name>/<image files>`, classes in name order.
pub fn image_folder(root: &Path, shape: Shape) -> Result<Dataset, DataError> {
    let mut classes = Vec::new();
    let mut files = Vec::new();
    for class_dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
        let label = classes.len();
        classes.push(
            class_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        for file in sorted_entries(&class_dir)? {
            if file.is_file() && is_image(&file) {
                files.push((file, label));
            }
        }
    }
    if classes.is_empty() || files.is_empty() {
        return Err(DataError::Empty {
            path: root.display().to_string(),
            layout: "one sub-folder of images per class".into(),
        });
    }
    assemble(root, classes, files, shape)
}

/// A CSV with an image-name column and a label column; images under `root/image_dir`.
pub fn csv_labelled(
    root: &Path,
    csv: &str,
    image_dir: &str,
    image_column: &str,
    label_column: &str,
    shape: Shape,
) -> Result<Dataset, DataError> {
    let csv_path = root.join(csv);
    let shown = csv_path.display().to_string();
    let mut reader = csv::Reader::from_path(&csv_path).map_err(|err| DataError::BadRow {
        path: shown.clone(),
        line: 1,
        problem: err.to_string(),
    })?;
    let headers = reader
        .headers()
        .map_err(|err| DataError::BadRow {
            path: shown.clone(),
            line: 1,
            problem: err.to_string(),
        })?
        .clone();
    let column = |name: &str, key: &'static str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| DataError::MissingColumn {
                path: shown.clone(),
                column: name.to_string(),
                available: headers.iter().collect::<Vec<_>>().join(", "),
                key,
            })
    };
    let image_at = column(image_column, "image_column")?;
    let label_at = column(label_column, "label_column")?;

    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.map_err(|err| DataError::BadRow {
            path: shown.clone(),
            line,
            problem: err.to_string(),
        })?;
        let field = |at: usize, what: &str| {
            let value = record.get(at).unwrap_or("").trim();
            if value.is_empty() {
                Err(DataError::BadRow {
                    path: shown.clone(),
                    line,
                    problem: format!("empty {what}"),
                })
            } else {
                Ok(value.to_string())
            }
        };
        rows.push((field(image_at, "image name")?, field(label_at, "label")?));
    }
    if rows.is_empty() {
        return Err(DataError::Empty {
            path: shown,
            layout: format!("rows of {image_column},{label_column}"),
        });
    }

    let classes = class_names(rows.iter().map(|(_, label)| label.as_str()));
    let images = root.join(image_dir);
    let files: Vec<(PathBuf, usize)> = rows
        .iter()
        .map(|(name, label)| {
            let class = classes.iter().position(|c| c == label).unwrap_or(0);
            (images.join(name), class)
        })
        .collect();
    let missing: Vec<&PathBuf> = files
        .iter()
        .map(|(p, _)| p)
        .filter(|p| !p.is_file())
        .collect();
    if let Some(first) = missing.first() {
        return Err(DataError::MissingFiles {
            path: shown,
            count: missing.len(),
            first: first.display().to_string(),
        });
    }
    assemble(root, classes, files, shape)
}

/// Distinct labels, numeric order when all are numbers (so "10" follows "9").
fn class_names<'a>(labels: impl Iterator<Item = &'a str>) -> Vec<String> {
    let distinct: BTreeSet<&str> = labels.collect();
    let mut names: Vec<String> = distinct.into_iter().map(str::to_string).collect();
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        names.sort_by(|a, b| {
            a.parse::<f64>()
                .unwrap_or(0.0)
                .total_cmp(&b.parse().unwrap_or(0.0))
        });
    }
    names
}

fn assemble(
    root: &Path,
    classes: Vec<String>,
    files: Vec<(PathBuf, usize)>,
    shape: Shape,
) -> Result<Dataset, DataError> {
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let decoded = decode_files(&paths, shape);
    let mut pixels = Vec::with_capacity(files.len() * shape.image_len());
    let mut labels = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    for ((path, label), image) in files.into_iter().zip(decoded) {
        match image {
            Some(bytes) => {
                pixels.extend(bytes);
                labels.push(label);
            }
            None => {
                let shown = path.strip_prefix(root).unwrap_or(&path);
                skipped.push(shown.display().to_string());
            }
        }
    }
    Ok(Dataset {
        name: root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| root.display().to_string()),
        classes,
        channels: shape.channels,
        height: shape.side,
        width: shape.side,
        pixels,
        labels,
        skipped,
    })
}
