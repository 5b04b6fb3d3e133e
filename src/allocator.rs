//! The binary's memory allocator: glibc's for ordinary buffers, mimalloc's for the very large
//! ones that glibc would map from the kernel afresh on every allocation.
//!
//! A training step frees and allocates the same buffers every batch. glibc keeps freed buffers
//! up to its mmap threshold on its heap for reuse (`main.rs` raises that threshold to 32 MiB, the
//! most it accepts), but maps each larger buffer anew and unmaps it on free, so every step
//! page-faults it in again: the case study's activations and gradients are 100–400 MB each, and
//! a 411 MB buffer took 168 ms to first write with fresh pages against 33 ms reused. mimalloc
//! keeps such buffers, so they go there. Smaller ones stay with glibc, where mimalloc measured no
//! better (and slower on small64-bn: 1,049–1,166 against 1,104–1,259 img/s in alternating runs).

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Buffers of this size and up go to mimalloc: the largest glibc keeps on its heap.
pub const LARGE_BUFFER: usize = 32 << 20;

/// glibc below [`LARGE_BUFFER`], mimalloc from it on; a buffer is freed by the allocator its size
/// sent it to, and one that `realloc` moves across the boundary is copied from one to the other.
pub struct KilnAllocator;

fn is_large(size: usize) -> bool {
    size >= LARGE_BUFFER
}

// SAFETY: each call is forwarded to the allocator that the layout's size selects, and the same
// size selects the same allocator again when the block is freed or resized (`GlobalAlloc`
// passes the block's layout back), so no block is ever freed by an allocator that did not
// allocate it.
unsafe impl GlobalAlloc for KilnAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if is_large(layout.size()) {
                MiMalloc.alloc(layout)
            } else {
                System.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if is_large(layout.size()) {
                MiMalloc.alloc_zeroed(layout)
            } else {
                System.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe {
            if is_large(layout.size()) {
                MiMalloc.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            match (is_large(layout.size()), is_large(new_size)) {
                (false, false) => System.realloc(ptr, layout, new_size),
                (true, true) => MiMalloc.realloc(ptr, layout, new_size),
                _ => {
                    // SAFETY: `GlobalAlloc::realloc`'s contract: new_size, rounded up to the
                    // alignment, does not overflow isize.
                    let moved = Layout::from_size_align_unchecked(new_size, layout.align());
                    let new = self.alloc(moved);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}
