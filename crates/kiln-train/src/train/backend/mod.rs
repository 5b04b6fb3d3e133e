//! Choosing where to train, with the reason in plain words: CUDA on an NVIDIA GPU ([`cuda`]),
//! another GPU through burn-wgpu ([`wgpu`]), burn's CPU backend (flex), or (in a build with the
//! `torch` feature) burn's LibTorch backend; and whether the chosen one computes in the
//! precision the experiment asks for.

pub mod cuda;
mod wgpu;

use std::sync::OnceLock;

use burn::tensor::{Device, FloatDType};

use crate::experiment::{BackendChoice, Precision, TORCH_BUILD};
use crate::protocol::BackendSummary;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend = \"{asked}\" was asked for, but {why}; use --backend auto or cpu")]
    Unavailable { asked: &'static str, why: String },
    #[error(
        "backend = \"torch\" needs a kiln built with the torch feature ({TORCH_BUILD}); \
         use --backend auto, gpu, cuda, wgpu or cpu"
    )]
    TorchNotBuilt,
    #[error(
        "train.precision = \"bf16\" needs bf16 arithmetic, which {backend} on {device} does not \
         have; use precision = \"f32\", or a backend with bf16 (cuda on an NVIDIA GPU of compute \
         capability 8.0 or newer, or cpu)"
    )]
    NoBf16 { backend: String, device: String },
}

/// Makes burn's default device the CPU backend for this process.
///
/// burn's default is the first backend compiled in, CUDA here, and burn creates a few tensors
/// there unasked: an optimiser state loaded from a checkpoint lives on the default device until
/// the next step moves it to the parameters' (`ModuleOptimizer::load_record`). On a machine
/// without CUDA that panics. Every tensor kiln makes names its device, so nothing else moves.
///
/// # Safety
///
/// Sets an environment variable (`BURN_DEVICE`), so it must run before any other thread exists.
pub unsafe fn pin_burn_default_device() {
    // SAFETY: the caller runs this before starting any thread.
    unsafe { std::env::set_var("BURN_DEVICE", "flex") };
}

/// Picks the device for `choice` and says why, in `precision`.
pub fn choose(
    choice: BackendChoice,
    precision: Precision,
) -> Result<(Device, BackendSummary), BackendError> {
    let (device, mut summary) = device_for(choice)?;
    if precision == Precision::Bf16 {
        if !device.supports_dtype(FloatDType::BF16) {
            return Err(BackendError::NoBf16 {
                backend: summary.name,
                device: summary.device,
            });
        }
        summary.precision =
            "bf16 mixed (bf16 compute; f32 weights, optimiser state, batch norm and loss)".into();
    }
    Ok((device, summary))
}

fn device_for(choice: BackendChoice) -> Result<(Device, BackendSummary), BackendError> {
    let unavailable = |why: String| BackendError::Unavailable {
        asked: choice.name(),
        why,
    };
    match choice {
        BackendChoice::Cpu => Ok(cpu("the CPU backend was asked for".into(), Vec::new())),
        BackendChoice::Torch => torch(),
        BackendChoice::Cuda => cuda().clone().map_err(unavailable),
        BackendChoice::Wgpu => wgpu().clone().map_err(unavailable),
        BackendChoice::Gpu | BackendChoice::Auto => {
            let mut skipped = Vec::new();
            for (name, found) in [("cuda", cuda as Found), ("wgpu", wgpu as Found)] {
                match found() {
                    Ok((device, summary)) => {
                        let summary = BackendSummary {
                            skipped,
                            ..summary.clone()
                        };
                        return Ok((device.clone(), summary));
                    }
                    Err(why) => skipped.push(format!("{name}: {why}")),
                }
            }
            if choice == BackendChoice::Gpu {
                return Err(unavailable(format!(
                    "no GPU is usable ({})",
                    skipped.join("; ")
                )));
            }
            Ok(cpu("no GPU backend is usable".into(), skipped))
        }
    }
}

type Found = fn() -> &'static Result<(Device, BackendSummary), String>;

/// The CUDA device, checked and initialised once per process (every run of a process, bench
/// loops and ladder rungs, shares it).
fn cuda() -> &'static Result<(Device, BackendSummary), String> {
    static CUDA: OnceLock<Result<(Device, BackendSummary), String>> = OnceLock::new();
    CUDA.get_or_init(cuda::init)
}

/// The wgpu device, found and initialised once per process: wgpu's runtime can be registered
/// only once.
fn wgpu() -> &'static Result<(Device, BackendSummary), String> {
    static WGPU: OnceLock<Result<(Device, BackendSummary), String>> = OnceLock::new();
    WGPU.get_or_init(wgpu::init)
}

fn cpu(reason: String, skipped: Vec<String>) -> (Device, BackendSummary) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    (
        Device::flex(),
        BackendSummary {
            name: "flex".into(),
            device: cpu_threads(threads),
            reason,
            precision: "f32".into(),
            skipped,
        },
    )
}

fn cpu_threads(threads: usize) -> String {
    let plural = if threads == 1 { "" } else { "s" };
    format!("CPU, {threads} thread{plural}")
}

#[cfg(not(feature = "torch"))]
fn torch() -> Result<(Device, BackendSummary), BackendError> {
    Err(BackendError::TorchNotBuilt)
}

/// LibTorch on the GPU PyTorch sees, else on the CPU with PyTorch's own threads.
#[cfg(feature = "torch")]
// burn 0.22 marks its LibTorch backend deprecated (CubeCL is its future); kiln offers it only
// as an opt-in for comparing with, and running on, an installed PyTorch.
#[allow(deprecated)]
fn torch() -> Result<(Device, BackendSummary), BackendError> {
    let reason = "the LibTorch backend was asked for".to_string();
    Ok(if tch::Cuda::is_available() {
        (
            Device::libtorch_cuda(0),
            BackendSummary {
                name: "libtorch".into(),
                device: format!("CUDA device 0 of {}", tch::Cuda::device_count()),
                reason,
                precision: "f32".into(),
                skipped: Vec::new(),
            },
        )
    } else {
        // LibTorch's OpenMP threads spin between operations and stall when kiln's loader or
        // monitoring thread takes their core: on 2 cores its training fell to 0.41–0.82× of the
        // bare loop with 2 threads, 0.99–1.21× with 1. So leave one core to kiln, unless the
        // user chose a count.
        if std::env::var_os("OMP_NUM_THREADS").is_none() {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            tch::set_num_threads(cores.saturating_sub(1).max(1) as i32);
        }
        (
            Device::libtorch(),
            BackendSummary {
                name: "libtorch".into(),
                device: cpu_threads(tch::get_num_threads() as usize),
                reason,
                precision: "f32".into(),
                skipped: Vec::new(),
            },
        )
    })
}
