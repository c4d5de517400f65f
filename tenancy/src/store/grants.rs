//! Grants, added to and removed from existing users.

use serde_json::json;

use super::users::insert_grant;
use super::{user_id, Store};
use crate::audit::{self, Actor, Change};
use crate::error::{Error, ObjectKind, Result};
use crate::grant::Grant;
use crate::names::{GrantPrefix, TenantName, UserName};

impl Store {
    /// Adds a grant; a second grant on the same prefix is a conflict, so
    /// that an operator never silently overwrites rights.
    pub async fn add_grant(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        user: &UserName,
        grant: &Grant,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let id = user_id(&mut tx, tenant, user).await?;
        insert_grant(&mut tx, id, grant).await?;
        let change = Change {
            action: "grant.add",
            tenant: Some(tenant.as_str()),
            target: user.as_str(),
            details: json!({ "grant": grant }),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit().await.map_err(Error::db("commit the grant"))?;
        Ok(())
    }

    /// Removes the grant on exactly this prefix.
    pub async fn remove_grant(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        user: &UserName,
        prefix: &GrantPrefix,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let id = user_id(&mut tx, tenant, user).await?;
        let deleted = sqlx::query("DELETE FROM grants WHERE user_id = $1 AND prefix = $2")
            .bind(id)
            .bind(prefix.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Error::db("remove the grant"))?;
        if deleted.rows_affected() == 0 {
            return Err(Error::not_found(ObjectKind::Grant, prefix.as_str()));
        }
        let change = Change {
            action: "grant.remove",
            tenant: Some(tenant.as_str()),
            target: user.as_str(),
            details: json!({ "prefix": prefix }),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit().await.map_err(Error::db("commit the removal"))?;
        Ok(())
    }
}
