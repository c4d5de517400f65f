//! WebSocket flow control: the client's credit is the most messages the
//! server keeps unacked on the connection. A message counts from the frame
//! that carried it until its receipt is acked or nacked on the socket, or
//! its visibility ends (then it went back to the group anyway).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;

/// The most credit a client may grant: ten of the largest batches.
pub const MAX_CREDIT: u64 = 100_000;

#[derive(Debug, Default)]
struct State {
    credit: u64,
    /// Receipt → (messages, when its visibility ends).
    held: HashMap<String, (u64, Instant)>,
}

/// One connection's credit and the receipts it holds.
#[derive(Debug, Default)]
pub struct Window {
    state: Mutex<State>,
    changed: Notify,
}

impl Window {
    pub fn new(credit: u64) -> Self {
        Self {
            state: Mutex::new(State {
                credit,
                held: HashMap::new(),
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Messages that may be sent now.
    pub fn available(&self) -> u64 {
        let mut state = self.lock();
        let now = Instant::now();
        state.held.retain(|_, (_, until)| *until > now);
        let held: u64 = state.held.values().map(|(n, _)| n).sum();
        state.credit.saturating_sub(held)
    }

    /// When the next held receipt's visibility ends, freeing credit.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.lock().held.values().map(|(_, until)| *until).min()
    }

    /// The client set its credit.
    pub fn set_credit(&self, credit: u64) {
        self.lock().credit = credit;
        self.changed.notify_one();
    }

    /// A frame carried `messages` under `receipt`, leased until `until`.
    pub fn hold(&self, receipt: String, messages: u64, until: Instant) {
        self.lock().held.insert(receipt, (messages, until));
    }

    /// The client settled `receipt` on the socket.
    pub fn release(&self, receipt: &str) {
        self.lock().held.remove(receipt);
        self.changed.notify_one();
    }

    /// Resolves at the next credit or settle (or at once if one happened
    /// since the last call).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn credit_counts_held_messages_until_they_are_settled_or_expire() {
        let window = Window::new(10);
        let later = Instant::now() + Duration::from_secs(60);
        window.hold("a".into(), 6, later);
        assert_eq!(window.available(), 4);
        window.hold("b".into(), 4, Instant::now() - Duration::from_millis(1));
        assert_eq!(window.available(), 4, "an expired receipt holds nothing");
        window.release("a");
        assert_eq!(window.available(), 10);
        window.set_credit(0);
        assert_eq!(window.available(), 0);
    }
}
