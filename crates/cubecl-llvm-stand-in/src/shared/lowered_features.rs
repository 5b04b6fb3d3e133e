//! Narrowing device features to what the LLVM backend lowers: cubecl-cuda calls this only when
//! LLVM is its default backend, which kiln's `cpp` feature rules out, so it changes nothing.

use cubecl_ir::DeviceProperties;

/// The GPU families the real crate lowers for; cubecl-cuda names NVPTX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuTarget {
    Nvptx,
}

/// Leaves `props` as they are: with NVRTC compiling, every feature cubecl-cuda advertises holds.
pub fn restrict_features(_props: &mut DeviceProperties, _target: GpuTarget) {}
