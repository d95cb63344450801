//! Copies out of a memory mapping that survive a page that cannot be read.
//!
//! Touching a mapped page the kernel cannot provide (the file was truncated underneath, or the
//! disk failed to read it) raises SIGBUS, which kills the process. Here a copy out of a mapping
//! runs *guarded*: the thread notes the address range it copies from, and the SIGBUS handler,
//! finding the fault inside that range, maps a zero page over the bad one (so the copy can
//! finish) and records the address. The copy then reports the fault. A fault outside a guarded
//! copy goes to the handler that was there before (Rust's runtime installs one to report stack
//! overflows), and then to the default action: the process dies as it would have.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering, compiler_fence};

// What the handler and the interrupted copy share: atomics, as state shared with a signal
// handler must be.
thread_local! {
    /// The range `[start, end)` this thread is copying from (0, 0: none).
    static GUARD_START: AtomicUsize = const { AtomicUsize::new(0) };
    static GUARD_END: AtomicUsize = const { AtomicUsize::new(0) };
    /// The lowest and highest addresses that faulted during the current guarded copy (0: none).
    /// A copy may fault on several pages, in any order (memcpy may copy the tail first).
    static FAULT_LOW: AtomicUsize = const { AtomicUsize::new(0) };
    static FAULT_HIGH: AtomicUsize = const { AtomicUsize::new(0) };
}

/// The pages the handler replaced with zero pages, latest last (a ring): a copy by another
/// thread over such a page reads zeros without faulting, so every copy looks here too.
static REPLACED: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];
/// Where the next replaced page goes in `REPLACED`.
static REPLACED_NEXT: AtomicUsize = AtomicUsize::new(0);
/// Pages in `REPLACED` (0: none, the fast path; may overcount after the ring wraps).
static REPLACED_LIVE: AtomicUsize = AtomicUsize::new(0);

/// A mapping at `[start, end)` is going away: its replaced pages are forgotten, so that a new
/// mapping at the same addresses reads normally.
pub(super) fn forget(start: usize, end: usize) {
    for slot in &REPLACED {
        let p = slot.load(Ordering::Acquire);
        if p != 0
            && (start..end).contains(&p)
            && slot
                .compare_exchange(p, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            REPLACED_LIVE.fetch_sub(1, Ordering::AcqRel);
        }
    }
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
    let end = start + dst.len();
    FAULT_LOW.with(|f| f.store(0, Ordering::Relaxed));
    FAULT_HIGH.with(|f| f.store(0, Ordering::Relaxed));
    GUARD_START.with(|g| g.store(start, Ordering::Relaxed));
    GUARD_END.with(|g| g.store(end, Ordering::Relaxed));
    // The copy must happen between the marks, as written.
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the caller's contract; a page that faults is replaced by the handler.
    unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    compiler_fence(Ordering::SeqCst);
    GUARD_START.with(|g| g.store(0, Ordering::Relaxed));
    GUARD_END.with(|g| g.store(0, Ordering::Relaxed));
    let mut low = FAULT_LOW.with(|f| f.load(Ordering::Relaxed));
    let mut high = FAULT_HIGH.with(|f| f.load(Ordering::Relaxed));
    // A page another thread faulted on reads as zeros here, without a fault.
    if REPLACED_LIVE.load(Ordering::Acquire) != 0 {
        let page = page_size() as usize;
        for slot in &REPLACED {
            let p = slot.load(Ordering::Acquire);
            if p != 0 && p < end && start < p + page {
                let at = p.max(start);
                low = if low == 0 { at } else { low.min(at) };
                high = high.max(at);
            }
        }
    }
    match low {
        0 => Ok(()),
        _ => Err((low, high)),
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    let start = GUARD_START
        .try_with(|g| g.load(Ordering::Relaxed))
        .unwrap_or(0);
    let end = GUARD_END
        .try_with(|g| g.load(Ordering::Relaxed))
        .unwrap_or(0);
    let installed = INSTALLED.get().and_then(Option::as_ref);
    // (A code <= 0 is a signal someone sent, not a fault.)
    if let Some(i) = installed
        && code > 0
        && start != 0
        // A machine-check fault reports its page's start, which may lie before `start`.
        && ((start & !(i.page - 1))..end).contains(&addr)
    {
        let page = addr & !(i.page - 1);
        // SAFETY: replaces one page of a mapping this thread is copying from with a private
        // zero page, read-only (a write there would fault again rather than be lost). The raw
        // system call, not libc's wrapper: the call must be async-signal-safe.
        let mapped = unsafe {
            libc::syscall(
                libc::SYS_mmap,
                page,
                i.page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped != -1 {
            let n = REPLACED_NEXT.fetch_add(1, Ordering::AcqRel);
            if REPLACED[n % REPLACED.len()].swap(page, Ordering::AcqRel) == 0 {
                REPLACED_LIVE.fetch_add(1, Ordering::AcqRel);
            }
            let at = addr.max(start);
            let _ = FAULT_LOW.try_with(|f| {
                let low = f.load(Ordering::Relaxed);
                f.store(if low == 0 { at } else { low.min(at) }, Ordering::Relaxed);
            });
            let _ = FAULT_HIGH.try_with(|f| f.fetch_max(at, Ordering::Relaxed));
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
