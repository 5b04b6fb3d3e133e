//! The compiler types cubecl-cuda names, and the compiler that refuses.

pub mod lowered_features;

use cubecl_environment::backtrace::BackTrace;
use cubecl_ir::amd::GfxArch;
use cubecl_ir::nvidia::SmArch;
use cubecl_runtime::compiler::{CompilationError, Compiler};
use cubecl_runtime::kernel::{BufferIOAttr, KernelDefinition};

use crate::nvptx::ptx_version::PtxVersion;
use crate::{LlvmTarget, REFUSAL};

/// The LLVM compiler cubecl-cuda would run if its default backend were LLVM.
#[derive(Clone, Debug, Default)]
pub struct PlironCompiler {
    pub target: LlvmTarget,
}

/// The options cubecl-cuda fills in for the LLVM backend (same fields as 0.11.3's NVPTX build).
#[derive(Clone, Debug, Default)]
pub struct PlironOptions {
    pub arch: Option<GfxArch>,
    pub sm_arch: Option<SmArch>,
    pub ptx_version: Option<PtxVersion>,
    pub grid_constants: bool,
}

/// A compiled NVPTX module. Never built here; the fields are the ones cubecl-cuda reads.
#[derive(Clone, Debug)]
pub struct NvptxModule {
    pub ptx: Vec<core::ffi::c_char>,
    pub entrypoint: String,
    pub ir: String,
    pub shared_memory_size: usize,
    pub io: Vec<BufferIOAttr>,
}

/// What a compile produces. Only the NVPTX form is named by cubecl-cuda.
#[derive(Clone, Debug)]
pub enum PlironArtifact {
    NvptxCode(NvptxModule),
}

impl core::fmt::Display for PlironArtifact {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlironArtifact::NvptxCode(module) => f.write_str(&module.ir),
        }
    }
}

impl Compiler for PlironCompiler {
    type Representation = PlironArtifact;
    type CompilationOptions = PlironOptions;

    fn compile(
        &mut self,
        _kernel: KernelDefinition,
        _options: &Self::CompilationOptions,
    ) -> Result<Self::Representation, CompilationError> {
        Err(CompilationError::Generic {
            reason: REFUSAL.to_string(),
            backtrace: BackTrace::capture(),
        })
    }

    fn extension(&self) -> &'static str {
        "ll"
    }

    fn lang_tag(&self) -> &'static str {
        "llvm"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cubecl_ir::settings::{Dim3, ExecutionMode, KernelSettings};
    use cubecl_ir::{AddressType, Scope};

    #[test]
    fn every_kernel_is_refused_with_the_reason() {
        let settings =
            KernelSettings::new(Dim3::new_single(), ExecutionMode::Checked, AddressType::U32);
        let kernel = KernelDefinition {
            body: Scope::root(settings.clone()),
            info: Default::default(),
            settings,
        };
        let mut compiler = PlironCompiler {
            target: LlvmTarget::Nvptx,
        };
        let err = compiler
            .compile(kernel, &PlironOptions::default())
            .expect_err("the stand-in must never produce a kernel");
        let message = err.to_string();
        assert!(message.contains("NVRTC"), "{message}");
        assert!(message.contains("`cpp` feature"), "{message}");
    }
}
