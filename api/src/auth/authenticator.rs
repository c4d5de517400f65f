//! Verifies Basic credentials against argon2id hashes, with a per-node
//! cache so that the ~30 ms of CPU a verification costs is paid once per
//! credential, not once per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use tenancy::{Password, Scratch, Store, TenantName};
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

impl AuthError {
    /// The same failure for a request that waited on another's attempt
    /// with the same credentials (the original belongs to that attempt).
    fn shared_copy(&self) -> AuthError {
        match self {
            AuthError::Rejected => AuthError::Rejected,
            AuthError::Throttled(retry) => AuthError::Throttled(*retry),
            AuthError::Unavailable(err) => AuthError::Unavailable(err.duplicate()),
        }
    }
}

/// A verified credential, cached under a keyed hash of (username,
/// password): the cache never holds anything a password could be recovered
/// from, a wrong password is simply a different key (a miss), and
/// concurrent first requests with the same credentials share one argon2
/// run instead of each paying for their own.
struct CachedLogin {
    principal: Arc<Principal>,
}

type CacheKey = [u8; 32];

/// The node's authenticator.
pub struct Authenticator {
    store: Store,
    cache: Cache<CacheKey, Arc<CachedLogin>>,
    key: [u8; 32],
    permits: Semaphore,
    /// argon2 working memory, one buffer per concurrent verification.
    scratch: Mutex<Vec<Scratch>>,
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
            scratch: Mutex::new(Vec::with_capacity(max_concurrent)),
            dummy_hash: Password::generate().hash()?.into(),
            verifications: AtomicU64::new(0),
            throttle,
        })
    }

    /// How many argon2 verifications this node has run.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// The cache key of a credential: an HMAC under a per-node random key.
    fn key_of(&self, username: &str, password: &Password) -> CacheKey {
        // The key is 32 bytes; HMAC accepts any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        for part in [username.as_bytes(), password.expose().as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Runs one argon2 verification on the blocking pool, at most
    /// `max_concurrent` at a time on this node, each in one of at most
    /// `max_concurrent` reused working buffers.
    async fn verify(&self, password: &Password, hash: &SecretString) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        self.verifications.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_argon2_verifications_total").increment(1);
        let password = password.clone();
        let hash = hash.clone();
        let mut scratch = self
            .scratch
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default();
        let Ok((verified, scratch)) = tokio::task::spawn_blocking(move || {
            let verified = password.verify_in(hash.expose_secret(), &mut scratch);
            (verified, scratch)
        })
        .await
        else {
            return false;
        };
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push(scratch);
        }
        verified
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
        let key = self.key_of(username, password);
        if let Some(hit) = self.cache.get(&key).await {
            metrics::counter!("sluice_auth_cache_hits_total").increment(1);
            return Ok(hit.principal.clone());
        }
        metrics::counter!("sluice_auth_cache_misses_total").increment(1);
        // Past the threshold, refused before any database or argon2 work.
        // Every miss counts, whether it runs argon2 or waits for a
        // concurrent identical attempt that does.
        self.throttle
            .attempt(username, address)
            .map_err(AuthError::Throttled)?;
        // Only a success is cached; a failure reaches the requests that
        // were waiting on it and is then forgotten.
        self.cache
            .try_get_with(key, self.check(username, password))
            .await
            .map(|login| login.principal.clone())
            .map_err(|shared| match Arc::try_unwrap(shared) {
                Ok(err) => err,
                Err(shared) => shared.shared_copy(),
            })
    }

    /// Looks the user up and verifies the password: the cache-miss path.
    async fn check(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<Arc<CachedLogin>, AuthError> {
        let credentials = self
            .store
            .credentials(username)
            .await
            .map_err(AuthError::Unavailable)?;
        let Some(credentials) = credentials else {
            // Unknown users cost what known ones do.
            self.verify(password, &self.dummy_hash).await;
            return Err(AuthError::Rejected);
        };
        if !self.verify(password, &credentials.password_hash).await || credentials.disabled {
            return Err(AuthError::Rejected);
        }
        Ok(Arc::new(CachedLogin {
            principal: Arc::new(Principal {
                username: credentials.username,
                tenant: credentials.tenant,
                grants: credentials.grants,
                quota: credentials.quota,
            }),
        }))
    }

    /// Drops a user's cached logins.
    pub fn forget_user(&self, username: &str) {
        let username = username.to_owned();
        self.forget_where(move |login| login.principal.username == username);
    }

    /// Drops the cached logins of every user of a tenant.
    pub fn forget_tenant(&self, tenant: &TenantName) {
        let tenant = tenant.clone();
        self.forget_where(move |login| login.principal.tenant == tenant);
    }

    /// Drops the cached logins that match; all of them if moka refuses the
    /// predicate, since keeping a stale login is the one thing not allowed.
    fn forget_where(&self, matches: impl Fn(&CachedLogin) -> bool + Send + Sync + 'static) {
        if let Err(err) = self
            .cache
            .invalidate_entries_if(move |_, login| matches(login))
        {
            tracing::warn!(error = %err, "cannot drop some cached logins; dropping all");
            self.cache.invalidate_all();
        }
    }

    /// Drops every cached login.
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }
}
