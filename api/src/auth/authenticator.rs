//! Verifies Basic credentials against argon2id hashes, with a per-node
//! cache so that the ~30 ms of CPU a verification costs is paid once per
//! credential, not once per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tenancy::{Password, Store, TenantName};
use tokio::sync::Semaphore;

use super::principal::Principal;
use crate::ratelimit::LoginThrottle;

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password or disabled user/tenant: one answer
    /// for all, so that nothing reveals which.
    #[error("invalid credentials")]
    Rejected,
    /// The user is not cached and the tenancy database is unreachable.
    #[error("cannot check credentials: {0}")]
    Unavailable(#[source] tenancy::Error),
    /// Too many password checks for this username or address.
    #[error("too many login attempts")]
    Throttled(Duration),
}

/// A verified credential. The tag binds username, password and the stored
/// hash under a per-node random key, so the cache never holds anything a
/// password could be recovered from, and a rotated hash never matches.
struct CachedLogin {
    tag: [u8; 32],
    password_hash: SecretString,
    principal: Arc<Principal>,
}

/// The node's authenticator.
pub struct Authenticator {
    store: Store,
    cache: Cache<String, Arc<CachedLogin>>,
    key: [u8; 32],
    permits: Semaphore,
    /// A hash of a random password, verified for unknown users so that
    /// they cost the same time as known ones.
    dummy_hash: SecretString,
    verifications: AtomicU64,
    throttle: LoginThrottle,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

/// Longest username worth looking up: `<tenant (32)>.<user (64)>`.
const MAX_USERNAME_LEN: usize = 97;

impl Authenticator {
    pub fn new(
        store: Store,
        ttl: Duration,
        max_concurrent: usize,
        throttle: LoginThrottle,
    ) -> Result<Self, tenancy::Error> {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Ok(Self {
            store,
            cache: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(100_000)
                .support_invalidation_closures()
                .build(),
            key,
            permits: Semaphore::new(max_concurrent),
            dummy_hash: Password::generate().hash()?.into(),
            verifications: AtomicU64::new(0),
            throttle,
        })
    }

    /// How many argon2 verifications this node has run.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    fn tag(&self, username: &str, password: &Password, hash: &SecretString) -> [u8; 32] {
        // The key is 32 bytes; HMAC accepts any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        for part in [
            username.as_bytes(),
            password.expose().as_bytes(),
            hash.expose_secret().as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Runs one argon2 verification on the blocking pool, at most
    /// `max_concurrent` at a time on this node.
    async fn verify(&self, password: &Password, hash: &SecretString) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        self.verifications.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_argon2_verifications_total").increment(1);
        let password = password.clone();
        let hash = hash.clone();
        tokio::task::spawn_blocking(move || password.verify(hash.expose_secret()))
            .await
            .unwrap_or(false)
    }

    /// Authenticates a username and password from a client address.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &Password,
        address: Option<std::net::IpAddr>,
    ) -> Result<Arc<Principal>, AuthError> {
        let result = self.authenticate_inner(username, password, address).await;
        if let Err(err) = &result {
            let reason = match err {
                AuthError::Rejected => "rejected",
                AuthError::Unavailable(_) => "unavailable",
                AuthError::Throttled(_) => "throttled",
            };
            metrics::counter!("sluice_auth_failures_total", "reason" => reason).increment(1);
        }
        result
    }

    async fn authenticate_inner(
        &self,
        username: &str,
        password: &Password,
        address: Option<std::net::IpAddr>,
    ) -> Result<Arc<Principal>, AuthError> {
        if username.len() > MAX_USERNAME_LEN || !username.contains('.') {
            return Err(AuthError::Rejected);
        }
        if let Some(hit) = self.cache.get(username).await {
            let tag = self.tag(username, password, &hit.password_hash);
            if bool::from(tag.ct_eq(&hit.tag)) {
                metrics::counter!("sluice_auth_cache_hits_total").increment(1);
                return Ok(hit.principal.clone());
            }
            self.throttle
                .attempt(username, address)
                .map_err(AuthError::Throttled)?;
            // A wrong password for a cached user: the stored hash has not
            // changed (a change would have dropped the entry), so it cannot
            // verify. Pay the same cost as any other failure anyway.
            self.verify(password, &self.dummy_hash).await;
            return Err(AuthError::Rejected);
        }
        metrics::counter!("sluice_auth_cache_misses_total").increment(1);
        // Past the threshold, refused before any database or argon2 work.
        self.throttle
            .attempt(username, address)
            .map_err(AuthError::Throttled)?;
        let credentials = self
            .store
            .credentials(username)
            .await
            .map_err(AuthError::Unavailable)?;
        let Some(credentials) = credentials else {
            self.verify(password, &self.dummy_hash).await;
            return Err(AuthError::Rejected);
        };
        if !self.verify(password, &credentials.password_hash).await || credentials.disabled {
            return Err(AuthError::Rejected);
        }
        let principal = Arc::new(Principal {
            username: credentials.username,
            tenant: credentials.tenant,
            grants: credentials.grants,
            quota: credentials.quota,
        });
        let login = CachedLogin {
            tag: self.tag(username, password, &credentials.password_hash),
            password_hash: credentials.password_hash,
            principal: principal.clone(),
        };
        self.cache
            .insert(username.to_owned(), Arc::new(login))
            .await;
        Ok(principal)
    }

    /// Drops a user's cached login.
    pub async fn forget_user(&self, username: &str) {
        self.cache.invalidate(username).await;
    }

    /// Drops the cached logins of every user of a tenant.
    pub fn forget_tenant(&self, tenant: &TenantName) {
        let tenant = tenant.clone();
        if let Err(err) = self
            .cache
            .invalidate_entries_if(move |_, login| login.principal.tenant == tenant)
        {
            tracing::warn!(error = %err, "cannot drop a tenant's logins; dropping all");
            self.cache.invalidate_all();
        }
    }

    /// Drops every cached login.
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }
}
