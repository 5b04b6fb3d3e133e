//! Whether burn's CUDA backend can run here, asked before cubecl is: cubecl panics when it
//! finds no CUDA install (`include_path()` uses `expect`) and unwraps the driver's answers, so
//! kiln checks the driver, a device, NVRTC and the CUDA headers itself, each with the reason in
//! plain words, then creates the device and compiles a first kernel with any panic caught.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::tensor::{Device, Tensor};
use cudarc::driver::result as driver;
use cudarc::driver::sys::CUdevice_attribute;

use crate::protocol::BackendSummary;

/// The GPU the driver reports first, as kiln describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CudaGpu {
    pub name: String,
    /// Compute capability, e.g. (9, 0) on Hopper.
    pub capability: (i32, i32),
    pub memory_gib: f64,
    pub nvrtc: (i32, i32),
}

impl CudaGpu {
    /// TF32 tensor cores arrived with compute capability 8.0 (Ampere); cubecl's matrix products
    /// and convolutions use them for f32 there.
    pub fn has_tf32(&self) -> bool {
        self.capability.0 >= 8
    }

    fn describe(&self) -> String {
        format!(
            "{} (sm_{}{}, {:.0} GiB, NVRTC {}.{})",
            self.name,
            self.capability.0,
            self.capability.1,
            self.memory_gib,
            self.nvrtc.0,
            self.nvrtc.1
        )
    }
}

/// The CUDA device, created and proven by a first kernel, or why CUDA cannot run here.
pub(super) fn init() -> Result<(Device, BackendSummary), String> {
    let gpu = probe()?;
    let device = quietly(|| Device::cuda(0))
        .map_err(|panic| format!("the CUDA device could not be created ({panic})"))?;
    // The first kernel is where NVRTC and the headers are really used.
    let sum = quietly(|| {
        let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        x.add_scalar(1.0).sum().into_data().try_to_vec::<f32>()
    })
    .map_err(|panic| format!("the first CUDA kernel failed ({panic})"))?
    .map_err(|err| format!("the first CUDA kernel's result could not be read ({err:?})"))?;
    if sum != [9.0] {
        return Err(format!(
            "the first CUDA kernel computed {sum:?} where 9 was expected"
        ));
    }
    let precision = if gpu.has_tf32() {
        "f32 (TF32 tensor cores in matrix products and convolutions)"
    } else {
        "f32"
    };
    Ok((
        device,
        BackendSummary {
            name: "cuda".into(),
            device: gpu.describe(),
            reason: "an NVIDIA GPU with a usable driver, NVRTC and CUDA headers".into(),
            precision: precision.into(),
            skipped: Vec::new(),
        },
    ))
}

/// Every check that needs no cubecl: the driver library, a device, NVRTC, the headers.
pub fn probe() -> Result<CudaGpu, String> {
    if !loadable("libcuda.so.1") {
        return Err("no libcuda.so.1 (no NVIDIA driver)".into());
    }
    let (name, capability, memory_gib) =
        quietly(first_device).map_err(|panic| format!("the CUDA driver failed ({panic})"))??;
    // SAFETY: only looks for the library on the loader's path; nothing is called in it.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(
            "NVRTC not found (no libnvrtc.so on the library path: install the \
             CUDA toolkit's NVRTC, or add PyTorch's nvidia/cu13/lib folder to LD_LIBRARY_PATH)"
                .into(),
        );
    }
    let nvrtc = quietly(nvrtc_version)
        .map_err(|panic| format!("NVRTC could not be loaded ({panic})"))??;
    headers(std::env::var_os("CUDA_PATH").map(PathBuf::from), &|p| {
        p.exists()
    })?;
    Ok(CudaGpu {
        name,
        capability,
        memory_gib,
        nvrtc,
    })
}

/// Whether the dynamic loader finds `name`.
fn loadable(name: &str) -> bool {
    let Ok(name) = CString::new(name) else {
        return false;
    };
    // SAFETY: `name` is a valid C string; a handle we get is closed again at once. Loading the
    // NVIDIA driver library runs no code of ours.
    unsafe {
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        if handle.is_null() {
            return false;
        }
        libc::dlclose(handle);
    }
    true
}

/// The driver started, and its first device's name, compute capability and memory.
fn first_device() -> Result<(String, (i32, i32), f64), String> {
    driver::init().map_err(|e| format!("the CUDA driver did not start: {e}"))?;
    let count = driver::device::get_count().map_err(|e| format!("cuDeviceGetCount: {e}"))?;
    if count < 1 {
        return Err("the CUDA driver sees no GPU".into());
    }
    let device = driver::device::get(0).map_err(|e| format!("cuDeviceGet: {e}"))?;
    let name = driver::device::get_name(device).map_err(|e| format!("cuDeviceGetName: {e}"))?;
    let attribute = |which| {
        // SAFETY: `device` is a handle the driver just returned.
        unsafe { driver::device::get_attribute(device, which) }
            .map_err(|e| format!("cuDeviceGetAttribute: {e}"))
    };
    let major = attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
    let minor = attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
    // SAFETY: as above.
    let bytes = unsafe { driver::device::total_mem(device) }
        .map_err(|e| format!("cuDeviceTotalMem: {e}"))?;
    Ok((name, (major, minor), bytes as f64 / (1u64 << 30) as f64))
}

fn nvrtc_version() -> Result<(i32, i32), String> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC writes two ints through valid pointers.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if status != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(format!("nvrtcVersion failed ({status:?})"));
    }
    Ok((major, minor))
}

/// The CUDA headers' folder, found where cubecl-cuda 0.11.3 looks (`CUDA_PATH`, else
/// /usr/local/cuda, /opt/cuda, or /usr when nvcc is /usr/bin/nvcc): kiln must agree with it,
/// since cubecl passes that folder to NVRTC. A folder without `cuda_fp16.h` (which every
/// kernel includes) is no install.
pub fn headers(
    cuda_path: Option<PathBuf>,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    let root = cuda_path.or_else(|| {
        [
            ("/usr/local/cuda", "/usr/local/cuda"),
            ("/opt/cuda", "/opt/cuda"),
            ("/usr/bin/nvcc", "/usr"),
        ]
        .into_iter()
        .find(|(marker, _)| exists(Path::new(marker)))
        .map(|(_, root)| PathBuf::from(root))
    });
    let Some(root) = root else {
        return Err(
            "CUDA headers not found: set CUDA_PATH (the folder whose include/ holds \
             cuda_fp16.h)"
                .into(),
        );
    };
    let include = root.join("include");
    if exists(&include.join("cuda_fp16.h")) {
        Ok(include)
    } else {
        Err(format!(
            "CUDA headers not found: {} has no cuda_fp16.h; set CUDA_PATH (the folder whose \
             include/ holds it)",
            include.display()
        ))
    }
}

/// Runs `f`, turning a panic into its message without printing it (cubecl and cudarc panic
/// where kiln wants a reason). cubecl's device server runs on a thread of its own, whose panic
/// reaches `f` only as a closed channel; the first panic of any thread while `f` runs is the
/// one reported, as it names the cause.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let previous = std::panic::take_hook();
    let record = first.clone();
    std::panic::set_hook(Box::new(move |info| {
        let mut first = record.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(message(info.payload()));
        }
    }));
    // What `f` touched is dropped on a panic, never used again, so unwind safety holds.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|payload| {
        let first = first.lock().unwrap_or_else(|e| e.into_inner()).take();
        first.unwrap_or_else(|| message(payload.as_ref()))
    })
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .map(|s| first_line(s))
        .or_else(|| payload.downcast_ref::<&str>().map(|s| first_line(s)))
        .unwrap_or_else(|| "a panic without a message".into())
}

fn first_line(text: &str) -> String {
    text.trim()
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}
