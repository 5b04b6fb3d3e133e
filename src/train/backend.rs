//! Choosing where to train: a real GPU through burn-wgpu, or burn's CPU backend (flex), or (in a
//! build with the `torch` feature) burn's LibTorch backend, with the reason in plain words.
//! Software adapters (llvmpipe, lavapipe, SwiftShader) count as no GPU: they are far slower
//! than the CPU backend.

use std::sync::OnceLock;

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind};

use crate::experiment::{BackendChoice, TORCH_BUILD};
use crate::protocol::BackendSummary;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend = \"gpu\" was asked for, but {0}; use --backend cpu or auto")]
    NoGpu(String),
    #[error(
        "backend = \"torch\" needs a kiln built with the torch feature ({TORCH_BUILD}); \
         use --backend auto, gpu or cpu"
    )]
    TorchNotBuilt,
}

/// A usable hardware adapter as wgpu reports it.
#[derive(Debug, Clone)]
struct Adapter {
    name: String,
    api: String,
    kind: DeviceKind,
}

/// Picks the device and says why.
pub fn choose(choice: BackendChoice) -> Result<(Device, BackendSummary), BackendError> {
    match choice {
        BackendChoice::Cpu => return Ok(cpu("the CPU backend was asked for".into())),
        BackendChoice::Torch => return torch(),
        BackendChoice::Auto | BackendChoice::Gpu => {}
    }
    match (gpu(), choice) {
        (Ok(chosen), _) => Ok(chosen.clone()),
        (Err(reason), BackendChoice::Gpu) => Err(BackendError::NoGpu(reason.clone())),
        (Err(reason), _) => Ok(cpu(reason.clone())),
    }
}

/// The GPU device, found and initialised once per process: wgpu's runtime can be registered
/// only once, and every run of a process (bench loops, ladder rungs) must share it.
fn gpu() -> &'static Result<(Device, BackendSummary), String> {
    static GPU: OnceLock<Result<(Device, BackendSummary), String>> = OnceLock::new();
    GPU.get_or_init(|| {
        let (adapter, ignored) = find_gpu();
        let adapter = adapter.ok_or_else(|| no_gpu_reason(&ignored))?;
        match Device::wgpu_options().device_kind(adapter.kind).init() {
            Ok(device) => Ok((
                device,
                BackendSummary {
                    name: "wgpu".into(),
                    device: format!("{} ({})", adapter.name, adapter.api),
                    reason: "a GPU adapter was found".into(),
                },
            )),
            Err(err) => Err(format!(
                "the GPU {} could not be initialised ({err})",
                adapter.name
            )),
        }
    })
}

fn cpu(reason: String) -> (Device, BackendSummary) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    (
        Device::flex(),
        BackendSummary {
            name: "flex".into(),
            device: cpu_threads(threads),
            reason,
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
            },
        )
    })
}

fn no_gpu_reason(ignored: &[String]) -> String {
    if ignored.is_empty() {
        "no GPU adapter was found".into()
    } else {
        format!(
            "no GPU adapter was found (ignored software adapter {})",
            ignored.join(", ")
        )
    }
}

fn is_software(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_ascii_lowercase();
    info.device_type == wgpu::DeviceType::Cpu
        || ["llvmpipe", "lavapipe", "swiftshader", "softpipe"]
            .iter()
            .any(|soft| name.contains(soft))
}

/// The first hardware adapter (discrete before integrated), and the software ones passed over.
fn find_gpu() -> (Option<Adapter>, Vec<String>) {
    // A broken driver can panic inside wgpu; that must mean "no GPU", not a crashed kiln.
    let adapters = std::panic::catch_unwind(|| {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .into_iter()
            .map(|adapter| adapter.get_info())
            .collect::<Vec<_>>()
    })
    .unwrap_or_default();

    let mut ignored = Vec::new();
    let mut hardware: Vec<(u8, Adapter)> = Vec::new();
    let mut counts = [0usize; 3];
    for info in adapters {
        if is_software(&info) {
            ignored.push(info.name.clone());
            continue;
        }
        let (rank, kind) = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => (0, DeviceKind::DiscreteGpu(counts[0])),
            wgpu::DeviceType::IntegratedGpu => (1, DeviceKind::IntegratedGpu(counts[1])),
            wgpu::DeviceType::VirtualGpu => (2, DeviceKind::VirtualGpu(counts[2])),
            _ => continue,
        };
        counts[rank as usize] += 1;
        hardware.push((
            rank,
            Adapter {
                name: info.name.clone(),
                api: format!("{:?}", info.backend),
                kind,
            },
        ));
    }
    hardware.sort_by_key(|(rank, _)| *rank);
    ignored.dedup();
    (hardware.into_iter().next().map(|(_, a)| a), ignored)
}
