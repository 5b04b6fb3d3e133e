//! A stand-in for `cubecl-llvm` 0.11.3, put in place of the real crate by kiln's
//! `[patch.crates-io]`.
//!
//! Why it exists: cubecl-cuda 0.11.3 always depends on cubecl-llvm, whose build downloads a
//! prebuilt LLVM (`tracel-llvm-bundler`, `llvm-sys`). kiln builds offline and runs cubecl-cuda
//! in its `cpp` mode, where kernels are CUDA C++ compiled by NVRTC at run time and the LLVM
//! path is never taken. cubecl-cuda still *names* a few items of cubecl-llvm; this crate
//! supplies exactly those, with the same shapes as 0.11.3:
//! `nvptx::ptx_version::PtxVersion`, `shared::lowered_features::{GpuTarget, restrict_features}`,
//! `PlironCompiler { target }`, `LlvmTarget::Nvptx`, `NvptxModule`, `PlironOptions` and
//! `PlironArtifact::NvptxCode`.
//!
//! Its compiler refuses every kernel with an error that says why; cubecl-cuda only reaches it
//! when its default backend is LLVM, which kiln's `cpp` feature rules out. When cubecl is
//! upgraded, compare these items with the new cubecl-cuda's `compiler.rs`, `runtime.rs` and
//! `compute/context.rs`, and bump the version in Cargo.toml to match.

pub mod nvptx;
pub mod shared;

pub use shared::{NvptxModule, PlironArtifact, PlironCompiler, PlironOptions};

/// The targets the real crate lowers to; only NVPTX is named by cubecl-cuda.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LlvmTarget {
    #[default]
    Cpu,
    Nvptx,
}

/// What every compile answers: the LLVM backend is not in this build.
pub const REFUSAL: &str = "kiln is built without cubecl's LLVM backend (cubecl-llvm is replaced \
     by kiln's offline stand-in); CUDA kernels are compiled by NVRTC through cubecl-cuda's \
     `cpp` feature, which must stay enabled";
