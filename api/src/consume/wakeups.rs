//! Node-local wake-ups for consumers waiting on a group whose partitions
//! are all leased: a settle on this node (an ack or a nack, over HTTP or a
//! WebSocket) frees partitions without moving any watermark, so the
//! watermark notifier would not wake them. Keyed by (tenant, group,
//! topic), so that one tenant's acks wake only the waiters of that group.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tenancy::{GroupName, TenantName, TopicName};
use tokio::sync::Notify;

type Key = (String, String, String);

fn key(tenant: &TenantName, group: &GroupName, topic: &TopicName) -> Key {
    (tenant.to_string(), group.to_string(), topic.to_string())
}

/// The waiters of each group on this node.
#[derive(Debug, Default)]
pub struct Wakeups {
    waiting: Mutex<HashMap<Key, (Arc<Notify>, usize)>>,
}

/// One consumer's registration; dropping it forgets the group once no one
/// else waits on it, so the map holds only groups being consumed now.
#[derive(Debug)]
pub struct Waiter {
    wakeups: Arc<Wakeups>,
    key: Key,
    notify: Arc<Notify>,
}

impl Waiter {
    /// Resolves at the next settle of the group on this node (or at once if
    /// one happened since the last call).
    pub async fn settled(&self) {
        self.notify.notified().await;
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
        let key = key(tenant, group, topic);
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = waiting
            .entry(key.clone())
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        entry.1 += 1;
        Waiter {
            wakeups: self.clone(),
            key,
            notify: entry.0.clone(),
        }
    }

    /// Wakes the group's waiters on this node, after a settle.
    pub fn wake(&self, tenant: &TenantName, group: &str, topic: &TopicName) {
        let key = (tenant.to_string(), group.to_owned(), topic.to_string());
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((notify, _)) = waiting.get(&key) {
            notify.notify_waiters();
            // A waiter between attempts is not waiting yet: leave it a permit.
            notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_settle_wakes_only_the_waiters_of_its_group_and_the_map_empties() {
        let wakeups = Arc::new(Wakeups::default());
        let tenant = TenantName::parse("acme").unwrap();
        let topic = TopicName::parse(&tenant, "acme.orders").unwrap();
        let a = GroupName::parse("a").unwrap();
        let b = GroupName::parse("b").unwrap();
        let waiter_a = wakeups.wait_on(&tenant, &a, &topic);
        let waiter_b = wakeups.wait_on(&tenant, &b, &topic);
        wakeups.wake(&tenant, "a", &topic);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter_a.settled())
            .await
            .expect("group a was woken");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), waiter_b.settled())
                .await
                .is_err(),
            "group b was not"
        );
        drop((waiter_a, waiter_b));
        assert!(wakeups.waiting.lock().unwrap().is_empty());
    }
}
