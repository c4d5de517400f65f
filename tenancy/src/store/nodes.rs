//! Node heartbeats, for splitting quotas between live nodes.

use std::time::Duration;

use super::Store;
use crate::error::{Error, Result};

impl Store {
    /// Records that node `id` is alive and returns how many nodes are,
    /// counting those seen within `alive_within`. Rows of long-dead nodes
    /// are removed on the way.
    pub async fn heartbeat(&self, id: uuid::Uuid, alive_within: Duration) -> Result<u32> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO nodes (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET last_seen = now()",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("record the heartbeat"))?;
        sqlx::query("DELETE FROM nodes WHERE last_seen < now() - interval '1 hour'")
            .execute(&mut *tx)
            .await
            .map_err(Error::db("forget dead nodes"))?;
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM nodes WHERE last_seen > now() - make_interval(secs => $1)",
        )
        .bind(alive_within.as_secs_f64())
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::db("count live nodes"))?;
        tx.commit()
            .await
            .map_err(Error::db("commit the heartbeat"))?;
        Ok(u32::try_from(live.max(1)).unwrap_or(u32::MAX))
    }
}
