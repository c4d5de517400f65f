//! A per-node cache of what was recently read from each partition.
//!
//! Why: a partition has one reader on a node, and moving it to another
//! offset costs a fetch round trip (70–150 ms on tansu). When many groups
//! read the same stretch of a partition (a fan-out: every group gets every
//! message), each would move the reader back to its own cursor, and their
//! GETs would queue on it. With this cache, the first group to read a
//! stretch pays for it and the others are served from memory.
//!
//! A window is a sequence of offsets read in order: every message between
//! its start and its end is in it, so a gap inside one (a transaction
//! marker, a compacted record) is known to hold nothing deliverable.
//! Windows are bounded in bytes each and in total, and forgotten after a
//! short idle time or when their topic is deleted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use super::consumed::ConsumedMessage;

/// Bookkeeping bytes counted per message on top of its payload, so that a
/// window of tiny messages is weighed fairly.
const PER_MESSAGE_OVERHEAD: usize = 96;

/// Messages read in one go: the offsets `start..end` hold exactly these.
#[derive(Debug)]
struct Run {
    start: i64,
    end: i64,
    messages: Vec<ConsumedMessage>,
    weight: usize,
}

impl Run {
    fn new(start: i64, end: i64, messages: Vec<ConsumedMessage>) -> Self {
        let weight = messages
            .iter()
            .map(|m| m.size() + PER_MESSAGE_OVERHEAD)
            .sum();
        Self {
            start,
            end,
            messages,
            weight,
        }
    }
}

/// Runs of one partition, each ending where the next starts.
#[derive(Debug, Clone, Default)]
struct Window {
    runs: VecDeque<Arc<Run>>,
    weight: usize,
}

impl Window {
    fn start(&self) -> i64 {
        self.runs.front().map_or(0, |r| r.start)
    }

    fn end(&self) -> i64 {
        self.runs.back().map_or(0, |r| r.end)
    }

    fn push(&mut self, run: Run) {
        self.weight += run.weight;
        self.runs.push_back(Arc::new(run));
    }

    /// Drops the oldest runs until the window weighs at most `max`; the
    /// newest run always stays.
    fn trim(&mut self, max: usize) {
        while self.weight > max && self.runs.len() > 1 {
            if let Some(run) = self.runs.pop_front() {
                self.weight -= run.weight;
            }
        }
    }

    /// This window with `start..end` (read in order) added, or `None` when
    /// the two do not touch and the new run should start a window of its own.
    fn extended(&self, start: i64, end: i64, messages: &[ConsumedMessage]) -> Option<Window> {
        if self.runs.is_empty() || start < self.start() || start > self.end() {
            return None;
        }
        let mut window = self.clone();
        if end > window.end() {
            // Only what lies past the window's end is new.
            let from = window.end();
            let fresh = messages.iter().filter(|m| m.offset >= from).cloned();
            window.push(Run::new(from, end, fresh.collect()));
        }
        Some(window)
    }
}

/// What the cache served for a cursor.
#[derive(Debug, Default)]
pub struct Served {
    pub messages: Vec<ConsumedMessage>,
    /// Where the cursor goes: after the last message, or the window's end
    /// when the window ran out (a trailing gap holds nothing to deliver).
    pub next_cursor: i64,
    /// Payload bytes of `messages`.
    pub bytes: usize,
}

/// The cache; it does nothing when built with a budget of 0. Clones share
/// the same windows.
#[derive(Clone)]
pub struct RecentMessages {
    windows: Option<Cache<(String, i32), Arc<Window>>>,
    window_max: usize,
}

impl std::fmt::Debug for RecentMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentMessages")
            .field("enabled", &self.windows.is_some())
            .field("window_max", &self.window_max)
            .finish()
    }
}

impl RecentMessages {
    /// A cache of at most `budget` bytes (payload plus bookkeeping), with
    /// at most an eighth of it per partition so that several fan-outs fit,
    /// and windows forgotten after `idle` without use.
    pub fn new(budget: u64, idle: Duration) -> Self {
        if budget == 0 {
            return Self {
                windows: None,
                window_max: 0,
            };
        }
        let window_max = usize::try_from((budget / 8).max(64 * 1024).min(budget))
            .unwrap_or(usize::MAX)
            .min(u32::MAX as usize);
        let windows = Cache::builder()
            .max_capacity(budget)
            .weigher(|_, w: &Arc<Window>| u32::try_from(w.weight).unwrap_or(u32::MAX))
            .time_to_idle(idle)
            .build();
        Self {
            windows: Some(windows),
            window_max,
        }
    }

    /// The messages from `cursor` on, up to `max_messages` and `max_bytes`
    /// (but at least one), when a window holds `cursor`.
    pub fn serve(
        &self,
        topic: &str,
        partition: i32,
        cursor: i64,
        max_messages: usize,
        max_bytes: usize,
    ) -> Option<Served> {
        let window = self.windows.as_ref()?.get(&(topic.to_owned(), partition))?;
        if cursor < window.start() || cursor >= window.end() {
            return None;
        }
        let mut served = Served {
            next_cursor: window.end(),
            ..Served::default()
        };
        let runs = window.runs.iter().skip_while(|r| r.end <= cursor);
        for message in runs.flat_map(|r| r.messages.iter()) {
            if message.offset < cursor {
                continue;
            }
            served.bytes += message.size();
            served.messages.push(message.clone());
            if served.messages.len() >= max_messages || served.bytes >= max_bytes {
                served.next_cursor = message.offset + 1;
                break;
            }
        }
        Some(served)
    }

    /// Remembers that reading `topic`/`partition` in order from `start`
    /// gave `messages` and stopped at `end`.
    pub fn record(
        &self,
        topic: &str,
        partition: i32,
        start: i64,
        end: i64,
        messages: &[ConsumedMessage],
    ) {
        let Some(windows) = &self.windows else {
            return;
        };
        if messages.is_empty() || end <= start {
            return;
        }
        let key = (topic.to_owned(), partition);
        let mut window = windows
            .get(&key)
            .and_then(|w| w.extended(start, end, messages))
            .unwrap_or_else(|| {
                let mut window = Window::default();
                window.push(Run::new(start, end, messages.to_vec()));
                window
            });
        window.trim(self.window_max);
        if window.weight > self.window_max {
            // A single read larger than a window's share is not kept.
            windows.invalidate(&key);
            return;
        }
        windows.insert(key, Arc::new(window));
    }

    /// Forgets every window: after notices may have been lost, any topic
    /// may have been deleted and created again, starting over at offset 0.
    pub fn forget_all(&self) {
        if let Some(windows) = &self.windows {
            windows.invalidate_all();
        }
    }

    /// Forgets every window of `topic`, which is about to be deleted (and
    /// may be created again, starting over at offset 0).
    pub fn forget_topic(&self, topic: &str) {
        let Some(windows) = &self.windows else {
            return;
        };
        let keys: Vec<_> = windows
            .iter()
            .filter(|(key, _)| key.0 == topic)
            .map(|(key, _)| (*key).clone())
            .collect();
        for key in keys {
            windows.invalidate(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64) -> ConsumedMessage {
        ConsumedMessage {
            partition: 0,
            offset,
            timestamp: None,
            key: None,
            value: Some(vec![b'x'; 10]),
            headers: Vec::new(),
        }
    }

    fn messages(offsets: impl IntoIterator<Item = i64>) -> Vec<ConsumedMessage> {
        offsets.into_iter().map(message).collect()
    }

    fn offsets(served: &Served) -> Vec<i64> {
        served.messages.iter().map(|m| m.offset).collect()
    }

    fn cache() -> RecentMessages {
        RecentMessages::new(1 << 20, Duration::from_secs(60))
    }

    #[test]
    fn a_cursor_inside_a_window_is_served_from_it_up_to_the_limit() {
        let recent = cache();
        recent.record("t", 0, 0, 10, &messages(0..10));

        let served = recent.serve("t", 0, 3, 4, usize::MAX).unwrap();

        assert_eq!(offsets(&served), vec![3, 4, 5, 6]);
        assert_eq!(served.next_cursor, 7);
    }

    #[test]
    fn a_window_that_runs_out_moves_the_cursor_to_its_end_past_a_trailing_gap() {
        let recent = cache();
        // Offsets 3 and 4 are transaction markers: nothing to deliver.
        recent.record("t", 0, 0, 5, &messages(0..3));

        let served = recent.serve("t", 0, 1, 100, usize::MAX).unwrap();
        assert_eq!(offsets(&served), vec![1, 2]);
        assert_eq!(served.next_cursor, 5);

        let gap = recent.serve("t", 0, 3, 100, usize::MAX).unwrap();
        assert!(gap.messages.is_empty());
        assert_eq!(gap.next_cursor, 5);
    }

    #[test]
    fn cursors_outside_every_window_are_not_served() {
        let recent = cache();
        recent.record("t", 0, 5, 10, &messages(5..10));

        assert!(recent.serve("t", 0, 4, 10, usize::MAX).is_none());
        assert!(recent.serve("t", 0, 10, 10, usize::MAX).is_none());
        assert!(recent.serve("t", 1, 5, 10, usize::MAX).is_none());
        assert!(recent.serve("u", 0, 5, 10, usize::MAX).is_none());
    }

    #[test]
    fn the_byte_cap_stops_a_batch_but_never_before_its_first_message() {
        let recent = cache();
        recent.record("t", 0, 0, 10, &messages(0..10));

        let served = recent.serve("t", 0, 0, 100, 1).unwrap();

        assert_eq!(offsets(&served), vec![0]);
        assert_eq!(served.next_cursor, 1);
    }

    #[test]
    fn reads_that_continue_a_window_extend_it_and_overlaps_are_not_kept_twice() {
        let recent = cache();
        recent.record("t", 0, 0, 4, &messages(0..4));
        recent.record("t", 0, 4, 8, &messages(4..8));
        recent.record("t", 0, 2, 10, &messages(2..10));

        let served = recent.serve("t", 0, 0, 100, usize::MAX).unwrap();

        assert_eq!(offsets(&served), (0..10).collect::<Vec<_>>());
        assert_eq!(served.next_cursor, 10);
    }

    #[test]
    fn a_read_elsewhere_in_the_partition_starts_a_new_window() {
        let recent = cache();
        recent.record("t", 0, 0, 4, &messages(0..4));
        recent.record("t", 0, 20, 22, &messages(20..22));

        assert!(recent.serve("t", 0, 1, 100, usize::MAX).is_none());
        assert_eq!(
            offsets(&recent.serve("t", 0, 20, 100, usize::MAX).unwrap()),
            vec![20, 21]
        );
    }

    #[test]
    fn a_window_keeps_its_newest_runs_within_its_share_of_the_budget() {
        // 64 KiB a window at least; each message weighs 10 + 96 bytes.
        let recent = RecentMessages::new(64 * 1024, Duration::from_secs(60));
        for start in (0..2000).step_by(100) {
            recent.record("t", 0, start, start + 100, &messages(start..start + 100));
        }

        assert!(recent.serve("t", 0, 0, 10, usize::MAX).is_none());
        let served = recent.serve("t", 0, 1900, 100, usize::MAX).unwrap();
        assert_eq!(served.messages.len(), 100);
    }

    #[test]
    fn a_forgotten_topic_is_read_from_kafka_again() {
        let recent = cache();
        recent.record("t", 0, 0, 4, &messages(0..4));
        recent.record("u", 0, 0, 4, &messages(0..4));

        recent.forget_topic("t");

        assert!(recent.serve("t", 0, 0, 10, usize::MAX).is_none());
        assert!(recent.serve("u", 0, 0, 10, usize::MAX).is_some());
    }

    #[test]
    fn a_zero_budget_turns_the_cache_off() {
        let recent = RecentMessages::new(0, Duration::from_secs(60));
        recent.record("t", 0, 0, 4, &messages(0..4));

        assert!(recent.serve("t", 0, 0, 10, usize::MAX).is_none());
    }
}
