//! SQLite's memory, taken from the program's global allocator instead of the C library's
//! `malloc`.
//!
//! SQLite allocates for every value it hands out (sqlx copies each one) and every page it
//! caches; sqlx frees those copies on the async runtime's thread while SQLite's worker thread
//! allocates, and glibc's `malloc` pays for that with arena locks, consolidation, and memory
//! given back to the kernel and faulted in again. The binary's allocator (mimalloc) is built
//! for exactly this. This module owns that one setting and nothing else; it must run before
//! SQLite's first use in the process.

use std::alloc::{Layout, alloc, dealloc, realloc};
use std::os::raw::{c_int, c_void};
use std::sync::Once;

use libsqlite3_sys as ffi;

/// Every block carries its size in front (SQLite asks for it back, and Rust's allocator needs
/// it to free): one 8-byte word, which also keeps SQLite's 8-byte alignment.
const HEADER: usize = 8;
const ALIGN: usize = 8;

/// The layout of a block holding `size` bytes for SQLite, or None past what fits.
fn block_layout(size: c_int) -> Option<Layout> {
    let total = usize::try_from(size).ok()?.checked_add(HEADER)?;
    Layout::from_size_align(total, ALIGN).ok()
}

/// The start of the block behind `p`, and its layout.
///
/// # Safety
/// `p` came from `sqlite_malloc` or `sqlite_realloc` and was not freed.
unsafe fn block_of(p: *mut c_void) -> (*mut u8, Layout) {
    // SAFETY: per the contract, the HEADER bytes before `p` hold the block's total size, a
    // size that made a valid layout when the block was allocated.
    unsafe {
        let block = p.cast::<u8>().sub(HEADER);
        let total = block.cast::<usize>().read();
        (block, Layout::from_size_align_unchecked(total, ALIGN))
    }
}

/// Writes the header of a fresh block and returns what SQLite gets.
///
/// # Safety
/// `block` is null or a live allocation of `layout`.
unsafe fn handed_out(block: *mut u8, layout: Layout) -> *mut c_void {
    if block.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the block holds layout.size() ≥ HEADER bytes, aligned to 8.
    unsafe {
        block.cast::<usize>().write(layout.size());
        block.add(HEADER).cast()
    }
}

unsafe extern "C" fn sqlite_malloc(size: c_int) -> *mut c_void {
    let Some(layout) = block_layout(size) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout's size is at least HEADER, never zero.
    unsafe { handed_out(alloc(layout), layout) }
}

unsafe extern "C" fn sqlite_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only what its xMalloc/xRealloc returned, once.
    unsafe {
        let (block, layout) = block_of(p);
        dealloc(block, layout);
    }
}

unsafe extern "C" fn sqlite_realloc(p: *mut c_void, size: c_int) -> *mut c_void {
    if p.is_null() {
        // SAFETY: as any allocation.
        return unsafe { sqlite_malloc(size) };
    }
    let Some(new_layout) = block_layout(size) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `p` is a live block of ours; on success the old block is gone and the new one
    // keeps the first min(old, new) bytes.
    unsafe {
        let (block, layout) = block_of(p);
        handed_out(realloc(block, layout, new_layout.size()), new_layout)
    }
}

unsafe extern "C" fn sqlite_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: SQLite asks only about live blocks of its own.
    let (_, layout) = unsafe { block_of(p) };
    c_int::try_from(layout.size() - HEADER).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn sqlite_roundup(size: c_int) -> c_int {
    // The size a block of `size` bytes reports: exactly what was asked for.
    size
}

unsafe extern "C" fn sqlite_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn sqlite_shutdown(_: *mut c_void) {}

/// Points SQLite's allocations at the global allocator, once per process, before SQLite is
/// first used. If SQLite was already initialised (something opened a database before the
/// store), SQLite refuses and keeps the C library's `malloc`: slower, not wrong, so this is
/// logged and not an error.
pub(super) fn use_global_allocator() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(sqlite_malloc),
            xFree: Some(sqlite_free),
            xRealloc: Some(sqlite_realloc),
            xSize: Some(sqlite_size),
            xRoundup: Some(sqlite_roundup),
            xInit: Some(sqlite_init),
            xShutdown: Some(sqlite_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to a sqlite3_mem_methods, which SQLite
        // copies before it returns; the functions it names live as long as the program.
        let rc = unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_MALLOC,
                &methods as *const ffi::sqlite3_mem_methods,
            )
        };
        if rc != ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was already in use: it keeps the C library's malloc"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_size_and_contents_through_realloc() {
        // SAFETY: each block is used within its size and freed once.
        unsafe {
            let p = sqlite_malloc(10);
            assert!(!p.is_null());
            assert_eq!(p as usize % 8, 0);
            assert_eq!(sqlite_size(p), 10);
            std::ptr::copy_nonoverlapping(b"0123456789".as_ptr(), p.cast::<u8>(), 10);
            let q = sqlite_realloc(p, 5000);
            assert_eq!(sqlite_size(q), 5000);
            assert_eq!(
                std::slice::from_raw_parts(q.cast::<u8>(), 10),
                b"0123456789"
            );
            let r = sqlite_realloc(q, 3);
            assert_eq!(sqlite_size(r), 3);
            assert_eq!(std::slice::from_raw_parts(r.cast::<u8>(), 3), b"012");
            sqlite_free(r);
            sqlite_free(std::ptr::null_mut());
            assert!(sqlite_malloc(-1).is_null());
            let s = sqlite_realloc(std::ptr::null_mut(), 4);
            assert_eq!(sqlite_size(s), 4);
            sqlite_free(s);
        }
    }
}
