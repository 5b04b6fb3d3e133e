//! kiln's allocator sends each buffer to glibc or mimalloc by size and keeps its contents when a
//! `realloc` carries it across that boundary, either way.

use std::alloc::{GlobalAlloc, Layout};

use kiln::allocator::{KilnAllocator, LARGE_BUFFER};

/// A byte pattern that no offset repeats within 251 bytes, so a misplaced copy shows.
fn pattern(at: usize) -> u8 {
    (at % 251) as u8
}

#[test]
fn a_buffer_keeps_its_contents_when_realloc_moves_it_between_the_two_allocators() {
    let small = 1 << 20;
    let large = LARGE_BUFFER + 4096;
    let layout = Layout::from_size_align(small, 64).unwrap();
    // SAFETY: every block is used within the size it was last given, and freed once with the
    // layout of that size.
    unsafe {
        let block = KilnAllocator.alloc(layout);
        assert!(!block.is_null());
        for at in 0..small {
            *block.add(at) = pattern(at);
        }
        // Up across the boundary: the first `small` bytes come along.
        let grown = KilnAllocator.realloc(block, layout, large);
        assert!(!grown.is_null());
        assert_eq!(grown as usize % 64, 0, "alignment kept");
        assert!((0..small).all(|at| *grown.add(at) == pattern(at)));
        for at in small..large {
            *grown.add(at) = pattern(at);
        }
        // Within the large side, then back down below it.
        let large_layout = Layout::from_size_align(large, 64).unwrap();
        let larger = KilnAllocator.realloc(grown, large_layout, 2 * large);
        assert!((0..large).all(|at| *larger.add(at) == pattern(at)));
        let larger_layout = Layout::from_size_align(2 * large, 64).unwrap();
        let shrunk = KilnAllocator.realloc(larger, larger_layout, small / 2);
        assert!(!shrunk.is_null());
        assert!((0..small / 2).all(|at| *shrunk.add(at) == pattern(at)));
        KilnAllocator.dealloc(shrunk, Layout::from_size_align(small / 2, 64).unwrap());
    }
}

#[test]
fn zeroed_buffers_are_zero_on_both_sides_of_the_boundary() {
    for size in [4096, LARGE_BUFFER, 3 * LARGE_BUFFER] {
        let layout = Layout::from_size_align(size, 4096).unwrap();
        // SAFETY: the block is read within its size and freed once with its layout.
        unsafe {
            // A block freed dirty first, so a reused one would show it.
            let dirty = KilnAllocator.alloc(layout);
            std::ptr::write_bytes(dirty, 0xAB, size);
            KilnAllocator.dealloc(dirty, layout);
            let block = KilnAllocator.alloc_zeroed(layout);
            assert!(!block.is_null());
            assert_eq!(block as usize % 4096, 0);
            assert!(
                std::slice::from_raw_parts(block, size)
                    .iter()
                    .all(|&b| b == 0),
                "{size} bytes"
            );
            KilnAllocator.dealloc(block, layout);
        }
    }
}
