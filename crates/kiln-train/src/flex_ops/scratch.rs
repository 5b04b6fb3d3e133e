//! Per-thread scratch buffers that the convolution kernels reuse from call to call: unfolding
//! an image then neither allocates nor zeroes memory that is about to be overwritten (zeroing
//! a few MiB of unfolded input per layer and pass took ~8% of a ResNet-18 training step).

use std::cell::RefCell;

thread_local! {
    static SLOTS: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// Runs `work` with two buffers of `lens` values each. Their contents are whatever the thread's
/// last call left: `work` must write every value before it reads it.
pub(super) fn with_scratch<R>(
    lens: [usize; 2],
    work: impl FnOnce(&mut [f32], &mut [f32]) -> R,
) -> R {
    SLOTS.with(|slots| match slots.try_borrow_mut() {
        Ok(mut slots) => {
            for (slot, &len) in slots.iter_mut().zip(&lens) {
                if slot.len() < len {
                    slot.resize(len, 0.0);
                }
            }
            let [first, second] = &mut *slots;
            work(&mut first[..lens[0]], &mut second[..lens[1]])
        }
        // Only if a kernel ran inside another on this thread: buffers of its own.
        Err(_) => work(&mut vec![0.0; lens[0]], &mut vec![0.0; lens[1]]),
    })
}
