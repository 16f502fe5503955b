//! What a script may cost: memory, time, and the size of its values.
//!
//! Rhai's own limits bound the number of operations and the size of each
//! value, not the memory a script holds in total (a thousand closures each
//! capturing a 32 MiB string pass every per-value limit) nor the time one
//! operation takes over large values (`array.push` re-measures the whole
//! array). So locald counts the bytes each thread has allocated and not yet
//! freed, in the global allocator (a thread-local counter: no atomic, no
//! lock), and the engine's progress hook, which Rhai calls before every
//! operation, ends the script once its thread holds more than its budget or
//! its time is up. Per-value limits stay, small enough that a single
//! operation cannot allocate or scan much before the next check.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The allocator of every process that links the engine: the system's, with
/// a per-thread count of live bytes.
pub struct CountingAllocator;

thread_local! {
    /// Bytes allocated by this thread and not yet freed (by any thread: memory
    /// freed elsewhere stays counted here, which only errs on the safe side).
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn count(delta: i64) {
    // `try_with`: the slot may already be gone while the thread exits.
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_add(delta)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is a plain thread-local that neither allocates nor panics.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as i64);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as i64);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Bytes this thread has allocated and not freed since it started.
pub fn live_bytes() -> i64 {
    LIVE.try_with(Cell::get).unwrap_or(0)
}

/// What one evaluation may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// What the name says in messages: "loading the project", "the script".
    pub what: &'static str,
    /// Memory the evaluating thread may hold beyond what it held when the
    /// evaluation started.
    pub memory: u64,
    /// Wall-clock time of one evaluation; `None` for scripts that may run as
    /// long as their user wants (Ctrl-C still ends them).
    pub time: Option<Duration>,
    /// Length of one string, in bytes.
    pub string: usize,
    /// Elements of one array, or entries of one map (nested ones included).
    pub collection: usize,
    /// Size of a script's source, in bytes.
    pub source: usize,
}

impl Limits {
    /// Loading a project: `locald.rhai` (and `locald.toml`) describe services;
    /// nothing legitimate comes near these, and `status` or `down` must not
    /// hang on a config that misbehaves.
    pub const PROJECT: Limits = Limits {
        what: "loading the project",
        memory: 256 << 20,
        time: Some(Duration::from_secs(10)),
        string: 1 << 20,
        collection: 16_384,
        source: crate::config::MAX_SOURCE_BYTES,
    };

    /// Verbs, task scripts and the REPL: they may run for as long as they
    /// are wanted, so only memory and value sizes are bounded.
    pub const SCRIPT: Limits = Limits {
        what: "the script",
        memory: 1 << 30,
        time: None,
        string: 64 << 20,
        collection: 65_536,
        source: crate::config::MAX_SOURCE_BYTES,
    };

    /// The message for a source file that is too large.
    pub fn source_too_large(&self, size: u64) -> String {
        format!(
            "is {} large: more than the {} allowed for {}",
            human_bytes(size),
            human_bytes(self.source as u64),
            self.what
        )
    }
}

/// Measures one evaluation against its [`Limits`]; the engine's progress
/// hook calls [`Meter::check`] before each operation.
#[derive(Debug)]
pub struct Meter {
    limits: Limits,
    /// `live_bytes()` when the current evaluation started.
    baseline: AtomicI64,
    started: Mutex<Instant>,
}

/// Time is read once every this many operations: reading the clock costs
/// more than an operation.
const CLOCK_EVERY: u64 = 256;

impl Meter {
    pub fn new(limits: Limits) -> Self {
        Meter {
            limits,
            baseline: AtomicI64::new(live_bytes()),
            started: Mutex::new(Instant::now()),
        }
    }

    /// `Some(reason)` when the evaluation must stop. `operations` is Rhai's
    /// count for the current evaluation: 1 on its first operation, which is
    /// where the meter starts again.
    pub fn check(&self, operations: u64) -> Option<String> {
        if operations <= 1 {
            self.baseline.store(live_bytes(), Ordering::Relaxed);
            *self.started.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
            return None;
        }
        let held = live_bytes().saturating_sub(self.baseline.load(Ordering::Relaxed));
        if held > 0 && held as u64 > self.limits.memory {
            return Some(format!(
                "{} uses more than {} of memory (the limit)",
                self.limits.what,
                human_bytes(self.limits.memory)
            ));
        }
        if let Some(limit) = self.limits.time {
            if operations.is_multiple_of(CLOCK_EVERY) {
                let started = *self.started.lock().unwrap_or_else(|p| p.into_inner());
                if started.elapsed() > limit {
                    return Some(format!(
                        "{} took longer than {} s (the limit): is there an endless loop?",
                        self.limits.what,
                        limit.as_secs()
                    ));
                }
            }
        }
        None
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_follows_this_threads_allocations() {
        let before = live_bytes();
        let block = vec![0u8; 4 << 20];
        assert!(live_bytes() - before >= 4 << 20);
        drop(block);
        assert!(live_bytes() - before < 4 << 20);
    }

    #[test]
    fn other_threads_do_not_count() {
        let before = live_bytes();
        let held = std::thread::spawn(|| vec![0u8; 8 << 20]).join().unwrap();
        // Freed here, allocated there: this thread's count only goes down.
        assert!(live_bytes() - before < 1 << 20);
        drop(held);
    }

    #[test]
    fn a_meter_stops_memory_past_its_budget_and_restarts_per_evaluation() {
        let limits = Limits {
            memory: 1 << 20,
            ..Limits::SCRIPT
        };
        let meter = Meter::new(limits);
        assert_eq!(meter.check(1), None);
        let block = vec![1u8; 2 << 20];
        let reason = meter.check(2).expect("over budget");
        assert!(reason.contains("more than 1 MiB"), "{reason}");
        // A new evaluation starts from what the thread holds then.
        assert_eq!(meter.check(1), None);
        assert_eq!(meter.check(2), None);
        drop(block);
    }

    #[test]
    fn a_meter_stops_time_past_its_limit() {
        let limits = Limits {
            time: Some(Duration::ZERO),
            ..Limits::PROJECT
        };
        let meter = Meter::new(limits);
        assert_eq!(meter.check(1), None);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(
            meter.check(CLOCK_EVERY - 1),
            None,
            "the clock is read only every so often"
        );
        let reason = meter.check(CLOCK_EVERY).expect("over time");
        assert!(reason.contains("longer than 0 s"), "{reason}");
    }
}
