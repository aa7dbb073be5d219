//! The sandbox's limits. Each is a constant with the reason for its value;
//! per-job values (timeout, memory) may be set in the config within the
//! ceilings below.

use std::time::Duration;

/// Default wall-clock deadline of one invocation. Prometheus' default
/// scrape timeout is 10 s and blackbox_exporter probes inherit it; a probe
/// slower than that is a timeout in either world.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest deadline a job may ask for. A plugin that needs more than five
/// minutes is a batch job, not a monitor, and would hold an instance slot
/// (and its memory) for that long.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Default linear-memory cap per instance. The largest first-party plugin
/// peaks under 4 MiB; interpreter guests (componentize-py, StarlingMonkey)
/// need ~30 MiB to start, so 64 MiB leaves room without letting one bad
/// plugin take a noticeable share of the machine.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;

/// Largest memory cap a job may ask for; also the pooling allocator's
/// per-slot reservation, which is virtual address space, not RSS.
pub const MAX_MEMORY_BYTES: u64 = 1 << 30;

/// Wasm stack per invocation. Deep recursion must trap as a stack overflow
/// long before it could touch the host's own thread stack; 512 KiB is
/// ample for real plugins (Rust's default main-thread stack in wasm is 1 MiB
/// of *linear* memory, which is separate and unaffected).
pub const MAX_WASM_STACK_BYTES: usize = 512 << 10;

/// Largest result the host accepts from one invocation, counted as the
/// message plus every sample's name, labels and 16 bytes for value and time.
/// A probe reports a dozen samples (~1 KiB); an exporter scraping a large
/// `/metrics` (node_exporter: ~2,000 series) stays well under 1 MiB. The
/// result is lifted into host memory before it is measured, so the guest's
/// memory cap bounds what this check can cost.
pub const DEFAULT_OUTPUT_BYTES: u64 = 4 << 20;

/// How often the epoch ticks. The deadline is checked on each tick, so an
/// infinite loop is stopped within this much of its deadline; each tick also
/// yields to tokio so a spinning guest cannot starve other tasks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Extra time the tokio timeout allows over the plugin's deadline. Epochs
/// stop running wasm; this stops time spent blocked in host calls (an HTTP
/// request, a socket read) that epochs cannot interrupt.
pub const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// Deadline for `describe` at install and load: it returns constants.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Instances that may be alive at once (the pooling allocator's slots).
/// The scheduler's concurrency is capped to this.
pub const MAX_INSTANCES: u32 = 256;

/// Linear memory a freed pooling slot keeps mapped (only what the guest
/// dirtied, up to this much). The http probe dirties ~0.5 MiB per run.
pub const KEEP_RESIDENT_MEMORY_BYTES: usize = 512 << 10;

/// Table bytes a freed pooling slot keeps mapped.
pub const KEEP_RESIDENT_TABLE_BYTES: usize = 16 << 10;

/// Idle pooling slots that keep their pages; beyond these, slots are reused
/// across plugins rather than taking cold ones.
pub const MAX_UNUSED_WARM_SLOTS: u32 = 16;

/// Table elements per table. Interpreter guests (Python, JS) keep large
/// function tables; 100k worked for componentize-py and componentize-js.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Size cap of one value in a plugin's key-value state. State is for
/// cursors, learned parameters and small caches; a detector's model fits.
pub const MAX_KV_VALUE_BYTES: usize = 1 << 20;

/// Size cap of one key.
pub const MAX_KV_KEY_BYTES: usize = 512;

/// Log lines one invocation may write. Past this they are dropped and one
/// warning says how many, so a plugin cannot flood the host's log.
pub const MAX_LOG_LINES_PER_INVOCATION: u32 = 100;

/// Longest log line kept; longer ones are cut.
pub const MAX_LOG_LINE_BYTES: usize = 4096;

/// What the host keeps of a plugin's stderr (Rust panics land there); the
/// tail is quoted in a trap's message.
pub const STDERR_CAPTURE_BYTES: usize = 16 << 10;

/// `filesystem-stats.stat` calls, over all plugins, that may still be
/// waiting after their caller gave up on them: a file system that does not
/// answer (a dead NFS server, a stuck FUSE daemon) holds the call's thread
/// until the kernel gives up, which for a hard NFS mount is never. A path
/// with a call still waiting fails at once, so one dead mount holds one
/// thread; this caps what a plugin statting many paths on dead mounts can
/// hold (threads and their stacks).
pub const MAX_STRANDED_STATFS: usize = 16;

/// Invocations whose own thread (plugins granted files run on one, see
/// `Runtime::invoke`) is still blocked in a file call past its deadline: a
/// FIFO, `/proc/kmsg`, a dead NFS mount. Each keeps its instance slot and
/// memory until the call returns. While this many are stranded,
/// invocations of plugins granted files start on the async threads, their
/// file calls each sent to tokio's blocking pool: slower (the `node`
/// plugin's collection takes twice as long), but a blocked call then
/// strands only a pool thread, not an instance. Checked as an invocation
/// starts, so invocations already running when the count is reached may
/// strand a few more.
pub const MAX_STRANDED_INVOCATIONS: usize = 8;
