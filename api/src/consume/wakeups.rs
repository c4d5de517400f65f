//! Node-local wake-ups for consumers waiting on a group whose partitions
//! are all leased: a settle on this node (an ack or a nack, over HTTP or a
//! WebSocket) frees partitions without moving any watermark, so the
//! watermark notifier would not wake them. Keyed by (tenant, group,
//! topic), so that one tenant's acks wake only the waiters of that group.
//!
//! Each key holds a settle counter in a `watch` channel: a waiter sees
//! every settle made since it last looked, even one made while it was not
//! waiting (a stream between two batches), so none is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tenancy::{GroupName, TenantName, TopicName};
use tokio::sync::watch;

type Key = (String, String, String);

fn key(tenant: &TenantName, group: &str, topic: &TopicName) -> Key {
    (tenant.to_string(), group.to_owned(), topic.to_string())
}

/// The waiters of each group on this node.
#[derive(Debug, Default)]
pub struct Wakeups {
    waiting: Mutex<HashMap<Key, (watch::Sender<u64>, usize)>>,
}

/// One consumer's registration, for as long as it consumes (a GET's long
/// poll, or a stream's whole life); dropping it forgets the group once no
/// one else waits on it, so the map holds only groups being consumed now.
#[derive(Debug)]
pub struct Waiter {
    wakeups: Arc<Wakeups>,
    key: Key,
    settles: watch::Receiver<u64>,
}

impl Waiter {
    /// Resolves at the first settle of the group on this node since the
    /// last call (at once if one happened in between).
    pub async fn settled(&mut self) {
        if self.settles.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut waiting = self
            .wakeups
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, count)) = waiting.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.key);
            }
        }
    }
}

impl Wakeups {
    /// Registers a consumer of the group.
    pub fn wait_on(
        self: &Arc<Self>,
        tenant: &TenantName,
        group: &GroupName,
        topic: &TopicName,
    ) -> Waiter {
        let key = key(tenant, group.as_str(), topic);
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = waiting
            .entry(key.clone())
            .or_insert_with(|| (watch::channel(0).0, 0));
        entry.1 += 1;
        Waiter {
            wakeups: self.clone(),
            key,
            settles: entry.0.subscribe(),
        }
    }

    /// Wakes the group's waiters on this node, after a settle.
    pub fn wake(&self, tenant: &TenantName, group: &str, topic: &TopicName) {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((settles, _)) = waiting.get(&key(tenant, group, topic)) {
            settles.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_settle_wakes_only_its_group_even_between_waits_and_the_map_empties() {
        let wakeups = Arc::new(Wakeups::default());
        let tenant = TenantName::parse("acme").unwrap();
        let topic = TopicName::parse(&tenant, "acme.orders").unwrap();
        let a = GroupName::parse("a").unwrap();
        let b = GroupName::parse("b").unwrap();
        let mut waiter_a = wakeups.wait_on(&tenant, &a, &topic);
        let mut other_a = wakeups.wait_on(&tenant, &a, &topic);
        let mut waiter_b = wakeups.wait_on(&tenant, &b, &topic);
        // Settled while nobody was waiting: still seen by both of group a.
        wakeups.wake(&tenant, "a", &topic);
        for waiter in [&mut waiter_a, &mut other_a] {
            tokio::time::timeout(Duration::from_secs(1), waiter.settled())
                .await
                .expect("group a was woken");
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(50), waiter_b.settled())
                .await
                .is_err(),
            "group b was not"
        );
        drop((waiter_a, other_a, waiter_b));
        assert!(wakeups.waiting.lock().unwrap().is_empty());
    }
}
