//! The article's tricks as experiment settings (dotted key, TOML value): what the ladder adds
//! rung by rung, and what the diagnosis's remedies write into a new experiment file.

pub type Setting = (&'static str, &'static str);

/// Against overfitting.
pub const DROPOUT: &[Setting] = &[("model.dropout", "0.3")];
/// Against slow training.
pub const BATCH_NORM: &[Setting] = &[("model.batch_norm", "true")];
/// Against too little data: small rotations, shifts and zooms that keep a digit or a vehicle
/// what it is.
pub const AUGMENT: &[Setting] = &[
    ("augment.rotation", "15.0"),
    ("augment.shift", "0.05"),
    ("augment.zoom", "0.1"),
];
/// Against underfitting.
pub const BIGGER: &[Setting] = &[
    ("model.conv_channels", "[32, 64, 128]"),
    ("model.dense", "[256]"),
];

/// Settings as `--set` arguments.
pub fn overrides(settings: &[Setting]) -> impl Iterator<Item = String> + '_ {
    settings.iter().map(|(key, value)| format!("{key}={value}"))
}
