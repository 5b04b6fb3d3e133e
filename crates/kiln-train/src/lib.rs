//! kiln's training side, on burn: the training thread ([`train`]: its loop, commands,
//! checkpoints, backends), the data pipeline ([`data`]), the model ([`model`]), kiln's own CPU
//! kernels ([`flex_ops`]), using a trained model ([`infer`]), the image view's pictures
//! ([`gallery`], [`augment_preview`]) and the machine's load ([`machine`]).
//!
//! The rule of this crate: it is where burn is; it depends on kiln-core and never on a terminal
//! library (kiln's tests check the rule: `tests/crate_rules.rs`).

pub mod augment_preview;
pub mod backbone;
pub mod data;
pub mod flex_ops;
pub mod gallery;
pub mod infer;
pub mod machine;
pub mod model;
pub mod pretrained;
pub mod train;

// kiln-core's modules under their own names, as the training code has always named them.
use kiln_core::{control, diagnose, experiment, fonts, metrics, protocol, runs, schedule, slurm};
