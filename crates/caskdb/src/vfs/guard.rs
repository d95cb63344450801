//! Copies out of a memory mapping that survive a page that cannot be read.
//!
//! Touching a mapped page the kernel cannot provide (the file was truncated underneath, or the
//! disk failed to read it) raises SIGBUS, which kills the process. Here a copy out of a mapping
//! runs *guarded*: the thread notes the address range it copies from, and the SIGBUS handler,
//! finding the fault inside that range, maps a zero page over the bad one (so the copy can
//! finish) and records the address. The copy then reports the fault. A fault outside a guarded
//! copy goes to the handler that was there before (Rust's runtime installs one to report stack
//! overflows), and then to the default action: the process dies as it would have.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{Ordering, compiler_fence};

thread_local! {
    /// The range `[start, end)` this thread is copying from, if any.
    static GUARDED: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// The lowest and highest addresses that faulted during the current guarded copy (0, 0:
    /// none). A copy may fault on several pages, in any order (memcpy may copy the tail first).
    static FAULTS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// The SIGBUS handler that was installed before ours; and the page size.
struct Installed {
    previous: libc::sigaction,
    page: usize,
}

static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();

/// Installs the handler once per process; `false` if that failed (copies then run unguarded,
/// as before).
fn install() -> bool {
    INSTALLED
        .get_or_init(|| {
            // SAFETY: sysconf and sigaction with a zeroed, then filled, plain struct; the
            // handler only touches thread-locals without destructors, reads INSTALLED (set
            // before any guarded copy starts) and calls mmap/sigaction.
            unsafe {
                let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).ok()?;
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_sigbus as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let mut previous: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(libc::SIGBUS, &action, &mut previous) != 0 {
                    return None;
                }
                Some(Installed { previous, page })
            }
        })
        .is_some()
}

/// The page size (4096 if the handler could not be installed).
pub(super) fn page_size() -> u64 {
    match INSTALLED.get() {
        Some(Some(i)) => i.page as u64,
        _ => 4096,
    }
}

/// Copies `dst.len()` bytes from `src` into `dst`. `Err((low, high))` if pages of the source
/// could not be read: the lowest and highest addresses that faulted (`dst` holds zeros for
/// those pages).
///
/// # Safety
/// `src..src + dst.len()` must lie inside a live mapping for the whole copy.
pub(super) unsafe fn copy(src: *const u8, dst: &mut [u8]) -> Result<(), (usize, usize)> {
    if !install() {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
        return Ok(());
    }
    let start = src as usize;
    GUARDED.set((start, start + dst.len()));
    FAULTS.set((0, 0));
    // The copy must happen between the marks, as written.
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the caller's contract; a page that faults is replaced by the handler.
    unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    compiler_fence(Ordering::SeqCst);
    GUARDED.set((0, 0));
    match FAULTS.get() {
        (0, _) => Ok(()),
        range => Err(range),
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (start, end) = GUARDED.try_with(Cell::get).unwrap_or((0, 0));
    let installed = INSTALLED.get().and_then(Option::as_ref);
    if let Some(i) = installed
        && (start..end).contains(&addr)
    {
        let page = addr & !(i.page - 1);
        // SAFETY: replaces one page of a mapping this thread is copying from with a private
        // zero page, read-only (a write there would fault again rather than be lost).
        let mapped = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                i.page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped != libc::MAP_FAILED {
            let _ = FAULTS.try_with(|f| {
                f.set(match f.get() {
                    (0, _) => (addr, addr),
                    (low, high) => (low.min(addr), high.max(addr)),
                });
            });
            return;
        }
    }
    // Not ours: to the previous handler, or the default action (the faulting instruction
    // runs again and the process dies of SIGBUS, as without this handler).
    // SAFETY: calls the handler that was installed, with the arguments the kernel gave us;
    // or resets SIGBUS to its default with a zeroed (SIG_DFL) action.
    unsafe {
        if let Some(i) = installed {
            let prev = i.previous.sa_sigaction;
            if prev != libc::SIG_DFL && prev != libc::SIG_IGN {
                if i.previous.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(prev);
                    f(sig, info, context);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev);
                    f(sig);
                }
                return;
            }
        }
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
    }
}
