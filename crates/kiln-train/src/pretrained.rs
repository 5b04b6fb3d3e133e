//! torchvision's weights into a backbone model: a `state_dict` saved as `.pth` (`torch.save`) or
//! `.safetensors`, read by burn-store with torchvision's names mapped onto kiln's layers. A file
//! that does not fit (another architecture, other shapes, a truncated file) is an error naming
//! the file and the first key that does not fit. The head's weights are kept when they fit the
//! data's classes and replaced (and reported) otherwise.

use std::path::{Path, PathBuf};

use burn_store::{
    ApplyError, ApplyResult, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};

use crate::experiment::{Backbone, ModelConfig};
use crate::model::Classifier;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{}: {message}", .path.display())]
    Read { path: PathBuf, message: String },
    #[error(
        "{}: `{key}` is {found:?} in the file but {expected:?} in {backbone}: weights of another \
         architecture or width?", .path.display()
    )]
    Shape {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
        backbone: &'static str,
    },
    #[error(
        "{}: no weights for `{key}` ({missing} of {backbone}'s tensors are missing): is it a \
         torchvision {backbone} state_dict?", .path.display()
    )]
    Missing {
        path: PathBuf,
        key: String,
        missing: usize,
        backbone: &'static str,
    },
    #[error(
        "{}: `{key}` has no place in {backbone} ({unused} such tensors): weights of another \
         architecture?", .path.display()
    )]
    Unexpected {
        path: PathBuf,
        key: String,
        unused: usize,
        backbone: &'static str,
    },
}

/// What loading did.
pub struct Loaded {
    pub model: Classifier,
    /// Tensors taken from the file.
    pub applied: usize,
    /// The file's head tensors that did not fit the data's classes and were replaced by a
    /// fresh head (empty when the head was kept).
    pub replaced_head: Vec<String>,
}

/// torchvision's names → kiln's, in order (each a regex and its replacement).
fn remapping(backbone: Backbone) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut add = |from: &str, to: &str| pairs.push((from.to_string(), to.to_string()));
    match backbone {
        Backbone::MobilenetV2 => {
            add(r"^features\.0\.0\.", "mobilenet.stem.conv.");
            add(r"^features\.0\.1\.", "mobilenet.stem.norm.");
            add(r"^features\.18\.0\.", "mobilenet.last.conv.");
            add(r"^features\.18\.1\.", "mobilenet.last.norm.");
            // Block 1 has no expansion, so its layers sit one place earlier in `conv`.
            add(
                r"^features\.1\.conv\.0\.0\.",
                "mobilenet.blocks.0.depthwise.conv.",
            );
            add(
                r"^features\.1\.conv\.0\.1\.",
                "mobilenet.blocks.0.depthwise.norm.",
            );
            add(r"^features\.1\.conv\.1\.", "mobilenet.blocks.0.project.");
            add(
                r"^features\.1\.conv\.2\.",
                "mobilenet.blocks.0.project_norm.",
            );
            for n in 2..=17 {
                let to = format!("mobilenet.blocks.{}", n - 1);
                let from = format!(r"^features\.{n}\.conv");
                add(&format!(r"{from}\.0\.0\."), &format!("{to}.expand.conv."));
                add(&format!(r"{from}\.0\.1\."), &format!("{to}.expand.norm."));
                add(
                    &format!(r"{from}\.1\.0\."),
                    &format!("{to}.depthwise.conv."),
                );
                add(
                    &format!(r"{from}\.1\.1\."),
                    &format!("{to}.depthwise.norm."),
                );
                add(&format!(r"{from}\.2\."), &format!("{to}.project."));
                add(&format!(r"{from}\.3\."), &format!("{to}.project_norm."));
            }
            add(r"^classifier\.1\.", "output.");
        }
        _ => {
            add(r"\.downsample\.0\.", ".downsample.conv.");
            add(r"\.downsample\.1\.", ".downsample.norm.");
            add(r"^(conv1|bn1|layer[1-4])\.", "resnet.$1.");
            add(r"^fc\.", "output.");
        }
    }
    pairs
}

fn read_error(path: &Path, err: impl std::fmt::Display) -> WeightsError {
    WeightsError::Read {
        path: path.to_path_buf(),
        message: err.to_string(),
    }
}

/// `model` as a new run (or lr-find) starts it: with the weights `config` names
/// (`model.weights`, for its backbone), or as it is when it names none; with them, the words
/// for the run's first line (`weights resnet18.pth (100 tensors, a new head for 2 classes)`).
pub fn for_config(
    model: Classifier,
    config: &ModelConfig,
    classes: usize,
) -> Result<(Classifier, Option<String>), WeightsError> {
    let (Some(file), Some(backbone)) = (&config.weights, config.backbone) else {
        return Ok((model, None));
    };
    let path = Path::new(file);
    let loaded = load(model, backbone, path)?;
    let name = path
        .file_name()
        .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    let head = if loaded.replaced_head.is_empty() {
        String::new()
    } else {
        format!(", a new head for {classes} classes")
    };
    let words = format!("weights {name} ({} tensors{head})", loaded.applied);
    Ok((loaded.model, Some(words)))
}

/// Loads the weights at `path` (a torchvision `backbone` state_dict) into `model`.
pub fn load(
    mut model: Classifier,
    backbone: Backbone,
    path: &Path,
) -> Result<Loaded, WeightsError> {
    if !path.is_file() {
        return Err(read_error(path, "no such file"));
    }
    let remapper =
        KeyRemapper::from_patterns(remapping(backbone)).map_err(|e| read_error(path, e))?;
    let result = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => {
            let mut store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .remap(remapper)
                .allow_partial(true)
                .validate(false);
            model
                .load_from(&mut store)
                .map_err(|e| read_error(path, e))?
        }
        _ => {
            let mut store = PytorchStore::from_file(path)
                .remap(remapper)
                .allow_partial(true)
                .validate(false);
            model
                .load_from(&mut store)
                .map_err(|e| read_error(path, e))?
        }
    };
    let replaced_head = check(&result, backbone, path)?;
    Ok(Loaded {
        model,
        applied: result.applied.len(),
        replaced_head,
    })
}

/// Everything must fit but the head (whose class count is the data's) and batch norm's step
/// counter (which burn does not keep); returns the head tensors replaced.
fn check(
    result: &ApplyResult,
    backbone: Backbone,
    path: &Path,
) -> Result<Vec<String>, WeightsError> {
    let name = backbone.name();
    let is_head = |key: &str| key.starts_with("output.");
    let mut replaced = Vec::new();
    for error in &result.errors {
        match error {
            ApplyError::ShapeMismatch {
                path: key,
                expected,
                found,
            } => {
                if is_head(key) {
                    replaced.push(key.clone());
                    continue;
                }
                return Err(WeightsError::Shape {
                    path: path.to_path_buf(),
                    key: key.clone(),
                    expected: expected.to_vec(),
                    found: found.to_vec(),
                    backbone: name,
                });
            }
            other => return Err(read_error(path, format!("{other:?}"))),
        }
    }
    let missing: Vec<&String> = result
        .missing
        .iter()
        .map(|(key, _)| key)
        .filter(|key| !is_head(key))
        .collect();
    if let Some(first) = missing.first() {
        return Err(WeightsError::Missing {
            path: path.to_path_buf(),
            key: (*first).clone(),
            missing: missing.len(),
            backbone: name,
        });
    }
    let unused: Vec<&String> = result
        .unused
        .iter()
        .filter(|key| !key.ends_with("num_batches_tracked"))
        .collect();
    if let Some(first) = unused.first() {
        return Err(WeightsError::Unexpected {
            path: path.to_path_buf(),
            key: (*first).clone(),
            unused: unused.len(),
            backbone: name,
        });
    }
    Ok(replaced)
}
