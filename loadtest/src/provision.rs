//! The tenants, users and topics a run creates through the admin API, and
//! their removal at the end, so that a run leaves an operator's cluster as
//! it found it.

use anyhow::Result;
use rand::Rng;

use crate::client::{Admin, Quota};

/// A tenant made for one scenario: its user(s) and topic.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Tenant name.
    pub name: String,
    /// `(username, password)` of its users.
    pub users: Vec<(String, String)>,
    /// Its topic.
    pub topic: String,
}

/// Creates tenants and remembers them for cleanup.
#[derive(Debug)]
pub struct Provisioner {
    admin: Admin,
    run_id: String,
    created: Vec<String>,
}

impl Provisioner {
    /// A provisioner whose tenant names share a random run id, so
    /// concurrent runs and leftovers of a crashed run never collide.
    pub fn new(admin: Admin) -> Self {
        let mut rng = rand::thread_rng();
        let run_id: String = (0..6)
            .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
            .collect();
        Self {
            admin,
            run_id,
            created: Vec::new(),
        }
    }

    /// Creates tenant `lt<run>-<label>` with `users` users and one topic of
    /// `partitions` partitions.
    pub async fn tenant(
        &mut self,
        label: &str,
        quota: Quota,
        users: usize,
        partitions: u32,
    ) -> Result<Tenant> {
        let name = format!("lt{}-{label}", self.run_id);
        self.admin.create_tenant(&name, quota).await?;
        self.created.push(name.clone());
        let topic = format!("{name}.bench");
        self.admin.create_topic(&name, &topic, partitions).await?;
        let mut list = Vec::with_capacity(users);
        for i in 0..users {
            let user = format!("{name}.u{i}");
            let password = self.admin.create_user(&name, &user).await?;
            list.push((user, password));
        }
        Ok(Tenant {
            name,
            users: list,
            topic,
        })
    }

    /// The admin API it provisions through.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Deletes every tenant this provisioner created, all at once (each
    /// delete waits out sluice's release grace for its topics); failures
    /// are reported, not fatal, so that one bad delete does not leave the
    /// rest.
    pub async fn cleanup(&mut self) {
        let names: Vec<String> = self.created.drain(..).collect();
        let admin = &self.admin;
        let deletes = names.iter().map(|name| async move {
            if let Err(e) = admin.delete_tenant(name).await {
                eprintln!("sluice-loadtest: cleanup of tenant {name} failed: {e:#}");
            }
        });
        futures::future::join_all(deletes).await;
    }
}
