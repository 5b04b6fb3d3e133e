//! Finding a hardware GPU adapter through wgpu (Vulkan, Metal, DX12). Software adapters
//! (llvmpipe, lavapipe, SwiftShader) count as no GPU: they are far slower than the CPU backend.

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind};

use crate::protocol::BackendSummary;

/// A usable hardware adapter as wgpu reports it.
#[derive(Debug, Clone)]
struct Adapter {
    name: String,
    api: String,
    kind: DeviceKind,
}

/// The first hardware adapter, initialised, or why there is none.
pub(super) fn init() -> Result<(Device, BackendSummary), String> {
    let (adapter, ignored) = find_adapter();
    let adapter = adapter.ok_or_else(|| no_adapter_reason(&ignored))?;
    match Device::wgpu_options().device_kind(adapter.kind).init() {
        Ok(device) => Ok((
            device,
            BackendSummary {
                name: "wgpu".into(),
                device: format!("{} ({})", adapter.name, adapter.api),
                reason: "a GPU adapter was found".into(),
                precision: "f32".into(),
                skipped: Vec::new(),
            },
        )),
        Err(err) => Err(format!(
            "the GPU {} could not be initialised ({err})",
            adapter.name
        )),
    }
}

fn no_adapter_reason(ignored: &[String]) -> String {
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
fn find_adapter() -> (Option<Adapter>, Vec<String>) {
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
