//! The `kiln` binary: parse, dispatch, and turn errors into a message and an exit code (2 for
//! bad input, 1 for a run that failed or any other failure).

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: kiln::allocator::KilnAllocator = kiln::allocator::KilnAllocator;

fn main() -> ExitCode {
    keep_freed_memory();
    // SAFETY: no other thread exists yet.
    unsafe { kiln::train::pin_burn_default_device() };
    kiln::install_pictures();
    match kiln::cli::run() {
        Ok(code) => code,
        Err(err) => {
            use std::io::Write;
            // Never panic on a closed stderr: the exit code still tells.
            let _ = writeln!(std::io::stderr(), "kiln: {err:#}");
            ExitCode::from(kiln::cli::exit_code(&err))
        }
    }
}

/// Keeps the memory of freed tensors in the process for the next ones. A training step frees
/// and allocates the same large buffers (activations, gradients) every batch; by default glibc
/// maps buffers over its adaptive threshold straight from the kernel and unmaps them on free,
/// so each step page-faults its buffers in anew. Measured with `kiln bench --ops` on the 2-core
/// machine: the first max-pool's forward and backward (32×16×64×64) went from 61 to 15 ms, the
/// first convolution's input gradient from 70 to 14 ms; `kiln bench`'s training loop gained
/// 8–25% on small64 and small64-bn, for ~50 MB more peak memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters, and it runs before any other thread exists.
    unsafe {
        // 32 MiB is the largest threshold glibc accepts; buffers from there on go to mimalloc
        // instead (`kiln::allocator`), so the two limits are one constant.
        libc::mallopt(
            libc::M_MMAP_THRESHOLD,
            kiln::allocator::LARGE_BUFFER as libc::c_int,
        );
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
