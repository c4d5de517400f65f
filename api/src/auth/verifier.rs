//! The node's argon2 slots: a few verifications at a time, off the async
//! workers, behind a queue bounded in length and in time.
//!
//! A verification costs ~30 ms of CPU, so a node can do only so many a
//! second. Without a bound, a flood of first logins (or of wrong passwords
//! from many networks) would queue every other first login behind it for as
//! long as the flood lasts. Here a check that cannot start within the queue
//! deadline fails fast with [`Overloaded`], and the caller answers 503 with
//! `Retry-After`. Requests with a cached login never come here.
//!
//! The checks run on threads of their own at a lower priority
//! (`auth.verification_nice`): a flood of logins that keeps every slot busy
//! would otherwise take as many cores as there are slots from the threads
//! answering every other request, and a cached client's latency would rise
//! with the flood.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use tenancy::{Password, Scratch};
use tokio::sync::Semaphore;

/// How long a slot's argon2 working memory (19 MiB) is kept unused before
/// it is freed: reused through a burst of logins, given back to the system
/// once the burst is over rather than held by an idle node for good.
const SCRATCH_IDLE: Duration = Duration::from_secs(5);

/// Roughly what one verification costs; used only to size the queue so
/// that it never holds more than the slots can verify within the deadline.
const TYPICAL_VERIFICATION: Duration = Duration::from_millis(25);

/// The argon2 queue was full, or a check waited past its deadline.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password checks in progress")]
pub struct Overloaded;

/// Bounded argon2 verification.
pub struct Verifier {
    /// Owned permits move into the argon2 job, so that a cancelled
    /// request cannot free its slot while its argon2 run goes on.
    permits: Arc<Semaphore>,
    /// One thread per slot, at the configured nice value.
    threads: rayon::ThreadPool,
    queue_deadline: Duration,
    max_waiting: usize,
    waiting: AtomicUsize,
    /// argon2 working memory, one buffer per concurrent verification, with
    /// when it was last used.
    scratch: Arc<Mutex<Vec<(Scratch, Instant)>>>,
    /// [`SCRATCH_IDLE`], shorter in tests.
    scratch_idle: Duration,
    verifications: AtomicU64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("queue_deadline", &self.queue_deadline)
            .field("max_waiting", &self.max_waiting)
            .finish_non_exhaustive()
    }
}

/// Decrements a counter when dropped, also when the future holding it is
/// cancelled.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Lowers the calling thread's priority to `nice` (Linux keeps a nice
/// value per thread). Failing to is logged, not fatal: the checks still
/// run, at the same priority as everything else.
fn lower_priority(nice: u8) {
    if nice == 0 {
        return;
    }
    // thread-priority maps 0..=99 onto the nice values 19..=-20.
    let value = ((19 - i32::from(nice.min(19))) * 99 / 39) as u8;
    let priority = thread_priority::ThreadPriorityValue::try_from(value)
        .map(thread_priority::ThreadPriority::Crossplatform);
    if let Err(err) = priority.map(thread_priority::set_current_thread_priority) {
        tracing::warn!(?err, nice, "cannot lower the priority of an argon2 thread");
    }
}

impl Verifier {
    /// `slots` verifications at once, on threads at nice value `nice`; a
    /// check waits at most `queue_deadline` for a slot.
    pub fn new(slots: usize, queue_deadline: Duration, nice: u8) -> Result<Self, std::io::Error> {
        let slots = slots.max(1);
        let per_slot = (queue_deadline.as_millis() / TYPICAL_VERIFICATION.as_millis()).max(4);
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(slots)
            .thread_name(|i| format!("argon2-{i}"))
            .start_handler(move |_| lower_priority(nice))
            // A panic fails its check (the answer channel closes), never
            // the process, which rayon's default handler would abort.
            .panic_handler(|_| tracing::error!("a password check panicked"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(slots)),
            threads,
            queue_deadline,
            max_waiting: slots.saturating_mul(usize::try_from(per_slot).unwrap_or(usize::MAX)),
            waiting: AtomicUsize::new(0),
            scratch: Arc::new(Mutex::new(Vec::with_capacity(slots))),
            scratch_idle: SCRATCH_IDLE,
            verifications: AtomicU64::new(0),
        })
    }

    /// How long a check may wait for a slot.
    pub fn queue_deadline(&self) -> Duration {
        self.queue_deadline
    }

    /// How many verifications this node has run.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Verifies a password against a PHC hash in one of the slots.
    pub async fn verify(
        &self,
        password: &Password,
        hash: &SecretString,
    ) -> Result<bool, Overloaded> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Overloaded);
        }
        let waiting = Waiting(&self.waiting);
        let permit =
            tokio::time::timeout(self.queue_deadline, self.permits.clone().acquire_owned())
                .await
                .map_err(|_| Overloaded)?
                .map_err(|_| Overloaded)?;
        drop(waiting);
        self.verifications.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_argon2_verifications_total").increment(1);
        let password = password.clone();
        let hash = hash.clone();
        let mut scratch = self
            .scratch
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .map(|(scratch, _)| scratch)
            .unwrap_or_default();
        let (answer, outcome) = tokio::sync::oneshot::channel();
        self.threads.spawn(move || {
            let verified = password.verify_in(hash.expose_secret(), &mut scratch);
            drop(permit);
            let _ = answer.send((verified, scratch));
        });
        let Ok((verified, scratch)) = outcome.await else {
            return Ok(false);
        };
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push((scratch, Instant::now()));
        }
        self.free_idle_scratch_later();
        Ok(verified)
    }

    /// The nice value argon2 runs at, as the kernel reports it for one of
    /// the threads.
    #[cfg(test)]
    fn thread_nice(&self) -> i32 {
        self.threads.install(|| {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            // The fields after the command, which is in parentheses: the
            // nice value is field 19, the 17th after them.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            after.split(' ').nth(16).unwrap().parse().unwrap()
        })
    }

    /// Frees, [`SCRATCH_IDLE`] from now, the buffers not used since. The
    /// most recently used buffer is taken first, so a steady trickle of
    /// logins keeps one buffer and lets the others go.
    fn free_idle_scratch_later(&self) {
        let pool = Arc::clone(&self.scratch);
        let idle = self.scratch_idle;
        tokio::spawn(async move {
            tokio::time::sleep(idle).await;
            if let Ok(mut pool) = pool.lock() {
                pool.retain(|(_, used)| used.elapsed() < idle);
            }
        });
    }

    /// Buffers kept for the next verifications.
    #[cfg(test)]
    fn kept_scratch(&self) -> usize {
        self.scratch.lock().map_or(0, |pool| pool.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2_working_memory_is_reused_then_freed_once_logins_stop() {
        let mut verifier = Verifier::new(2, Duration::from_secs(1), 0).unwrap();
        verifier.scratch_idle = Duration::from_millis(300);
        let password = Password::generate();
        let hash: SecretString = password.hash().unwrap().into();
        assert!(verifier.verify(&password, &hash).await.unwrap());
        assert!(verifier.verify(&password, &hash).await.unwrap());
        assert_eq!(verifier.kept_scratch(), 1, "one buffer, reused");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(verifier.kept_scratch(), 0, "freed once unused");
    }

    #[tokio::test]
    async fn argon2_runs_on_threads_at_the_configured_nice_value() {
        let verifier = Verifier::new(2, Duration::from_secs(1), 10).unwrap();
        assert_eq!(verifier.thread_nice(), 10);
        let verifier = Verifier::new(1, Duration::from_secs(1), 19).unwrap();
        assert_eq!(verifier.thread_nice(), 19);
        let password = Password::generate();
        let hash: SecretString = password.hash().unwrap().into();
        assert!(verifier.verify(&password, &hash).await.unwrap());
    }

    #[tokio::test]
    async fn a_check_that_cannot_start_in_time_is_refused_quickly() {
        let verifier = Verifier::new(1, Duration::from_millis(50), 0).unwrap();
        let password = Password::generate();
        let hash: SecretString = password.hash().unwrap().into();
        // Hold the only slot.
        let _slot = verifier.permits.acquire().await.unwrap();
        let started = std::time::Instant::now();
        assert!(verifier.verify(&password, &hash).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(verifier.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_length() {
        let verifier = Verifier::new(1, Duration::from_millis(100), 0).unwrap();
        verifier
            .waiting
            .store(verifier.max_waiting, Ordering::Release);
        let password = Password::generate();
        let hash: SecretString = password.hash().unwrap().into();
        assert!(verifier.verify(&password, &hash).await.is_err());
        verifier.waiting.store(0, Ordering::Release);
        assert!(verifier.verify(&password, &hash).await.unwrap());
    }
}
