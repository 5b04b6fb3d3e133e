//! The machine a run trains on, sampled: the training process's CPU and memory (from `/proc`),
//! how long the trainer waited for its loader, and the first NVIDIA GPU's utilisation, memory
//! and temperature through NVML, loaded at run time and quietly absent without a driver.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::protocol::{GpuSample, MachineSample};

/// Takes samples; each covers the time since the one before.
pub struct Sampler {
    last: Instant,
    last_cpu: Option<Duration>,
    waited: Duration,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        Self {
            last: Instant::now(),
            last_cpu: process_cpu_time(),
            waited: Duration::ZERO,
        }
    }

    /// Time the trainer spent waiting for a batch, added up until the next sample.
    pub fn waited_for_loader(&mut self, time: Duration) {
        self.waited += time;
    }

    /// Time since the last sample.
    pub fn since_last(&self) -> Duration {
        self.last.elapsed()
    }

    pub fn sample(&mut self) -> MachineSample {
        let now = Instant::now();
        let wall = (now - self.last).as_secs_f64().max(1e-9);
        let cpu = process_cpu_time();
        let cpu_percent = match (cpu, self.last_cpu) {
            (Some(now), Some(before)) => 100.0 * now.saturating_sub(before).as_secs_f64() / wall,
            _ => 0.0,
        };
        let loader_wait = (self.waited.as_secs_f64() / wall).min(1.0);
        self.last = now;
        self.last_cpu = cpu;
        self.waited = Duration::ZERO;
        MachineSample {
            cpu_percent,
            memory_mb: resident_mb().unwrap_or(0.0),
            loader_wait,
            gpu: gpu_sample(),
        }
    }
}

/// User + system CPU time of this process (Linux), from `/proc/self/stat`.
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields are counted after its last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// Resident memory of this process in MB, from `/proc/self/status`.
fn resident_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// NVML, loaded once per process; `None` where no NVIDIA driver is installed.
fn nvml() -> Option<&'static nvml_wrapper::Nvml> {
    static NVML: OnceLock<Option<nvml_wrapper::Nvml>> = OnceLock::new();
    NVML.get_or_init(|| nvml_wrapper::Nvml::init().ok())
        .as_ref()
}

/// The first NVIDIA GPU as NVML sees it; `None` without a driver or a GPU.
pub fn gpu_sample() -> Option<GpuSample> {
    let device = nvml()?.device_by_index(0).ok()?;
    let memory = device.memory_info().ok()?;
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    Some(GpuSample {
        name: device.name().unwrap_or_else(|_| "NVIDIA GPU".into()),
        utilization_percent: device.utilization_rates().map_or(0, |u| u.gpu),
        memory_used_mb: mb(memory.used),
        memory_total_mb: mb(memory.total),
        temperature_c: device
            .temperature(nvml_wrapper::enum_wrappers::device::TemperatureSensor::Gpu)
            .unwrap_or(0),
    })
}
