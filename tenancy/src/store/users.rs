//! Users: created with a generated password, rotated, disabled, deleted.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{tenant_id, user_id, Store};
use crate::audit::{self, Actor, Change};
use crate::error::{Error, ObjectKind, Result, ValidationError};
use crate::grant::Grant;
use crate::initial_password::InitialPassword;
use crate::names::{GrantPrefix, TenantName, UserName};
use crate::password::{NewCredentials, Password};

/// A user as stored, less its password hash, which never leaves the store.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub tenant: String,
    pub disabled: bool,
    pub grants: Vec<Grant>,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    name: String,
    disabled: bool,
    created_at: DateTime<Utc>,
    password_changed_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    user_id: i64,
    prefix: String,
    can_read: bool,
    can_write: bool,
    can_manage: bool,
}

impl Store {
    /// Creates a user. A generated password is returned here and never
    /// again; an imported one (plaintext or hash) is not returned at all
    /// (`None`), since the caller has it already. The audit row says how the
    /// password was set, never what it is.
    pub async fn create_user(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        user: &UserName,
        grants: &[Grant],
        initial: InitialPassword,
    ) -> Result<Option<NewCredentials>> {
        let mut seen = HashSet::new();
        if let Some(dup) = grants.iter().find(|g| !seen.insert(g.prefix.as_str())) {
            return Err(ValidationError::new(
                "grants",
                format!("prefix '{}' is listed twice", dup.prefix),
            )
            .into());
        }
        let (generated, hash, origin) = match initial {
            InitialPassword::Generated => {
                let password = Password::generate();
                let hash = password.hash_blocking().await?;
                (Some(password), hash, "generated")
            }
            InitialPassword::Plaintext(password) => {
                (None, password.hash_blocking().await?, "imported")
            }
            InitialPassword::Hash(phc) => (None, phc.expose().to_owned(), "imported_hash"),
        };
        let mut tx = self.begin().await?;
        let tenant_id = tenant_id(&mut tx, tenant).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (tenant_id, name, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(tenant_id)
        .bind(user.as_str())
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::db("create the user"))?
        .ok_or_else(|| Error::exists(ObjectKind::User, user.as_str()))?;
        for grant in grants {
            insert_grant(&mut tx, id, grant).await?;
        }
        let change = Change {
            action: "user.create",
            tenant: Some(tenant.as_str()),
            target: user.as_str(),
            details: json!({ "grants": grants, "password": origin }),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit().await.map_err(Error::db("commit the user"))?;
        Ok(generated.map(|password| NewCredentials {
            username: user.as_str().to_owned(),
            password,
        }))
    }

    /// The tenant's users with their grants, by name.
    pub async fn list_users(&self, tenant: &TenantName) -> Result<Vec<User>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(Error::db("acquire a connection"))?;
        let tenant_id = tenant_id(&mut conn, tenant).await?;
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, name, disabled, created_at, password_changed_at
             FROM users WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("list users"))?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let grants: Vec<GrantRow> = sqlx::query_as(
            "SELECT user_id, prefix, can_read, can_write, can_manage FROM grants
             WHERE user_id = ANY($1) ORDER BY prefix",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::db("list grants"))?;
        Ok(rows
            .into_iter()
            .map(|row| User {
                grants: grants
                    .iter()
                    .filter(|g| g.user_id == row.id)
                    .map(|g| grant_from_row(tenant, g))
                    .collect(),
                name: row.name,
                tenant: tenant.as_str().to_owned(),
                disabled: row.disabled,
                created_at: row.created_at,
                password_changed_at: row.password_changed_at,
            })
            .collect())
    }

    /// One user of the tenant.
    pub async fn user(&self, tenant: &TenantName, user: &UserName) -> Result<User> {
        self.list_users(tenant)
            .await?
            .into_iter()
            .find(|u| u.name == user.as_str())
            .ok_or_else(|| Error::not_found(ObjectKind::User, user.as_str()))
    }

    /// Replaces the user's password with a fresh one, returned once. The
    /// old password stops verifying as soon as this commits.
    pub async fn rotate_password(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        user: &UserName,
    ) -> Result<NewCredentials> {
        let password = Password::generate();
        let hash = password.hash_blocking().await?;
        let mut tx = self.begin().await?;
        let id = user_id(&mut tx, tenant, user).await?;
        sqlx::query(
            "UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(&hash)
        .execute(&mut *tx)
        .await
        .map_err(Error::db("store the new password hash"))?;
        let change = Change {
            action: "user.rotate_password",
            tenant: Some(tenant.as_str()),
            target: user.as_str(),
            details: json!({}),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit()
            .await
            .map_err(Error::db("commit the rotation"))?;
        Ok(NewCredentials {
            username: user.as_str().to_owned(),
            password,
        })
    }

    /// Disables or re-enables a user without touching its password or grants.
    pub async fn set_user_disabled(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        user: &UserName,
        disabled: bool,
    ) -> Result<User> {
        let mut tx = self.begin().await?;
        let id = user_id(&mut tx, tenant, user).await?;
        sqlx::query("UPDATE users SET disabled = $2 WHERE id = $1")
            .bind(id)
            .bind(disabled)
            .execute(&mut *tx)
            .await
            .map_err(Error::db("update the user"))?;
        let change = Change {
            action: if disabled {
                "user.disable"
            } else {
                "user.enable"
            },
            tenant: Some(tenant.as_str()),
            target: user.as_str(),
            details: json!({ "disabled": disabled }),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit().await.map_err(Error::db("commit the user"))?;
        self.user(tenant, user).await
    }

    /// Deletes a user and its grants.
    pub async fn delete_user(
        &self,
        tenant: &TenantName,
        actor: &Actor,
        user: &UserName,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let id = user_id(&mut tx, tenant, user).await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(Error::db("delete the user"))?;
        let change = Change {
            action: "user.delete",
            tenant: Some(tenant.as_str()),
            target: user.as_str(),
            details: json!({}),
        };
        audit::record(&mut tx, actor, change).await?;
        tx.commit()
            .await
            .map_err(Error::db("commit the deletion"))?;
        Ok(())
    }
}

pub(super) async fn insert_grant(
    conn: &mut sqlx::PgConnection,
    user_id: i64,
    grant: &Grant,
) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO grants (user_id, prefix, can_read, can_write, can_manage) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, prefix) DO NOTHING",
    )
    .bind(user_id)
    .bind(grant.prefix.as_str())
    .bind(grant.read)
    .bind(grant.write)
    .bind(grant.manage)
    .execute(conn)
    .await
    .map_err(Error::db("store the grant"))?;
    if inserted.rows_affected() == 0 {
        return Err(Error::exists(ObjectKind::Grant, grant.prefix.as_str()));
    }
    Ok(())
}

/// Rows were validated on the way in; one that no longer parses (edited by
/// hand) is kept visible rather than dropped, so it can be found and removed.
fn grant_from_row(tenant: &TenantName, row: &GrantRow) -> Grant {
    let prefix = GrantPrefix::parse(tenant, &row.prefix)
        .unwrap_or_else(|_| GrantPrefix::unchecked(&row.prefix));
    Grant {
        prefix,
        read: row.can_read,
        write: row.can_write,
        manage: row.can_manage,
    }
}
