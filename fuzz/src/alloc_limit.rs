//! An allocation bomb is a finding, also without a sanitizer.
//!
//! libFuzzer's `-malloc_limit_mb` relies on the sanitizer runtime's malloc
//! hooks, so with `-s none` (the only choice on a stable toolchain) it does
//! nothing. This global allocator does the same job for Rust allocations:
//! a single request above [`LIMIT`] prints a line and aborts, which
//! libFuzzer reports as a crash and saves the input. No input of the
//! sizes these targets run with (at most a few KiB) justifies more.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// The largest single allocation allowed: 64 MiB.
pub const LIMIT: usize = 64 << 20;

/// [`System`], refusing requests above [`LIMIT`].
#[derive(Debug)]
pub struct Limited;

#[cold]
fn bomb() -> ! {
    // Stderr is unbuffered and writing a static string does not allocate.
    let _ = std::io::stderr().write_all(b"\n==sydra-fuzz== allocation above the 64 MiB limit\n");
    std::process::abort()
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, or aborts before allocating.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            bomb();
        }
        // SAFETY: forwarded as received (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            bomb();
        }
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > LIMIT {
            bomb();
        }
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Limited = Limited;
