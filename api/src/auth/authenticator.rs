//! Verifies Basic credentials against argon2id hashes, with a per-node
//! cache so that the ~30 ms of CPU a verification costs is paid once per
//! credential, not once per request.
//!
//! Two caches, both keyed by an HMAC of (username, password) under a random
//! per-node key, so that neither holds anything a password could be
//! recovered from:
//! - **logins** hold the principal (tenant, grants, quota) for
//!   `auth.cache_ttl`. A busy client never sees that expiry: past
//!   half the TTL, a hit is served at once and one background re-read of the
//!   user's row replaces it.
//! - **verified** remembers which stored hash a password was verified
//!   against. A row re-read (a refresh, or a login after a change notice
//!   dropped the principal) whose hash is unchanged needs no new argon2 run:
//!   the same password verifies against the same hash. A rotated password has
//!   a new hash, so the old password misses and is checked in full.
//!
//! **Revocation is final.** Every change notice bumps a generation counter
//! before it drops anything. A login or refresh that read the user's row
//! under an older generation reads it again instead of caching it, and an
//! entry inserted while a notice was being applied is dropped afterwards; a
//! revoke, disable or grant change can therefore never be undone by a login
//! that started before it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tenancy::{Credentials, Password, Store, TenantName};
use tokio::sync::Semaphore;

use super::principal::Principal;
use super::verifier::{Overloaded, Verifier};
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
    /// Too many failed password checks from this client network.
    #[error("too many login attempts")]
    Throttled(Duration),
    /// The argon2 queue is full or its deadline passed.
    #[error("too many password checks in progress")]
    Overloaded(Duration),
}

impl AuthError {
    /// The same failure for a request that waited on another's attempt
    /// with the same credentials (the original belongs to that attempt).
    fn shared_copy(&self) -> AuthError {
        match self {
            AuthError::Rejected => AuthError::Rejected,
            AuthError::Throttled(retry) => AuthError::Throttled(*retry),
            AuthError::Overloaded(retry) => AuthError::Overloaded(*retry),
            AuthError::Unavailable(err) => AuthError::Unavailable(err.duplicate()),
        }
    }
}

impl From<Overloaded> for AuthError {
    fn from(_: Overloaded) -> Self {
        AuthError::Overloaded(Duration::from_secs(1))
    }
}

type CacheKey = [u8; 32];

/// A stored hash's identity: a digest of its PHC string (salt included), so
/// that the hash itself is not kept around.
type HashId = [u8; 32];

fn hash_id(hash: &SecretString) -> HashId {
    Sha256::digest(hash.expose_secret().as_bytes()).into()
}

/// A verified login, with what a refresh needs.
struct CachedLogin {
    principal: Arc<Principal>,
    credential: HashId,
    loaded: Instant,
    refreshing: AtomicBool,
}

impl CachedLogin {
    fn new(credentials: Credentials) -> Self {
        Self {
            credential: hash_id(&credentials.password_hash),
            principal: Arc::new(Principal {
                username: credentials.username,
                tenant: credentials.tenant,
                grants: credentials.grants,
                quota: credentials.quota,
            }),
            loaded: Instant::now(),
            refreshing: AtomicBool::new(false),
        }
    }
}

/// How often a login re-reads the user's row when change notices keep
/// arriving while it runs, before it gives up with a retryable 503.
const MAX_READS: usize = 3;

/// The node's authenticator.
pub struct Authenticator {
    store: Store,
    logins: Cache<CacheKey, Arc<CachedLogin>>,
    verified: moka::sync::Cache<CacheKey, HashId>,
    key: [u8; 32],
    /// Past this age a hit triggers a background refresh.
    refresh_after: Duration,
    verifier: Verifier,
    /// Credential lookups in progress, bounded so that a flood of first
    /// logins can take only a share of the database pool that logged-in
    /// requests and other tenants need.
    lookups: Semaphore,
    /// A hash of a random password, verified for unknown users so that
    /// they cost the same time as known ones.
    dummy_hash: SecretString,
    /// Bumped before every invalidation; see the module documentation.
    generation: AtomicU64,
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
        verifier: Verifier,
        max_lookups: usize,
        throttle: LoginThrottle,
    ) -> Result<Self, tenancy::Error> {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Ok(Self {
            store,
            logins: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(100_000)
                .support_invalidation_closures()
                .build(),
            verified: moka::sync::Cache::builder()
                .time_to_idle(Duration::from_secs(3600).max(ttl * 10))
                .max_capacity(100_000)
                .build(),
            key,
            refresh_after: ttl / 2,
            verifier,
            lookups: Semaphore::new(max_lookups.max(1)),
            dummy_hash: Password::generate().hash()?.into(),
            generation: AtomicU64::new(0),
            throttle,
        })
    }

    /// How many argon2 verifications this node has run.
    pub fn verifications(&self) -> u64 {
        self.verifier.verifications()
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

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Authenticates a username and password from a client address.
    pub async fn authenticate(
        self: &Arc<Self>,
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
                AuthError::Overloaded(_) => "overloaded",
            };
            metrics::counter!("sluice_auth_failures_total", "reason" => reason).increment(1);
        }
        result
    }

    async fn authenticate_inner(
        self: &Arc<Self>,
        username: &str,
        password: &Password,
        address: Option<std::net::IpAddr>,
    ) -> Result<Arc<Principal>, AuthError> {
        if username.len() > MAX_USERNAME_LEN || !username.contains('.') {
            return Err(AuthError::Rejected);
        }
        let key = self.key_of(username, password);
        if let Some(hit) = self.logins.get(&key).await {
            metrics::counter!("sluice_auth_cache_hits_total").increment(1);
            let principal = hit.principal.clone();
            if hit.loaded.elapsed() >= self.refresh_after
                && !hit.refreshing.swap(true, Ordering::AcqRel)
            {
                let this = self.clone();
                let username = username.to_owned();
                tokio::spawn(async move { this.refresh(key, &username, hit).await });
            }
            return Ok(principal);
        }
        metrics::counter!("sluice_auth_cache_misses_total").increment(1);
        let generation = self.generation();
        // Only a success is cached; a failure reaches the requests that
        // were waiting on it and is then forgotten.
        let result = self
            .logins
            .try_get_with(key, self.login(username, password, key, address))
            .await
            .map(|login| login.principal.clone())
            .map_err(|shared| match Arc::try_unwrap(shared) {
                Ok(err) => err,
                Err(shared) => shared.shared_copy(),
            });
        if result.is_ok() && self.generation() != generation {
            // A notice was applied while this login ran: it may have come
            // between the login's last read and the insertion.
            self.logins.invalidate(&key).await;
        }
        result
    }

    /// The cache-miss path: the throttle, the user's row, and a password
    /// check unless this password is already known to match that row's hash.
    async fn login(
        &self,
        username: &str,
        password: &Password,
        key: CacheKey,
        address: Option<std::net::IpAddr>,
    ) -> Result<Arc<CachedLogin>, AuthError> {
        // Refused before any database or argon2 work when this network has
        // failed too often, or has too many checks in progress.
        let _permit = self
            .throttle
            .admit(username, address)
            .map_err(AuthError::Throttled)?;
        for _ in 0..MAX_READS {
            let generation = self.generation();
            let credentials = self.lookup(username).await?;
            let Some(credentials) = credentials else {
                // Unknown users cost what known ones do.
                self.verifier.verify(password, &self.dummy_hash).await?;
                self.throttle.fail(username, address);
                return Err(AuthError::Rejected);
            };
            let credential = hash_id(&credentials.password_hash);
            if self.verified.get(&key) != Some(credential) {
                if !self
                    .verifier
                    .verify(password, &credentials.password_hash)
                    .await?
                {
                    self.throttle.fail(username, address);
                    return Err(AuthError::Rejected);
                }
                self.verified.insert(key, credential);
            }
            if credentials.disabled {
                self.throttle.fail(username, address);
                return Err(AuthError::Rejected);
            }
            if self.generation() == generation {
                return Ok(Arc::new(CachedLogin::new(credentials)));
            }
        }
        Err(AuthError::Overloaded(Duration::from_secs(1)))
    }

    /// Reads a user's row in one of the bounded lookup slots, waiting no
    /// longer than a password check may wait for argon2.
    async fn lookup(&self, username: &str) -> Result<Option<Credentials>, AuthError> {
        let _slot = tokio::time::timeout(self.verifier.queue_deadline(), self.lookups.acquire())
            .await
            .map_err(|_| Overloaded)?
            .map_err(|_| Overloaded)?;
        self.store
            .credentials(username)
            .await
            .map_err(AuthError::Unavailable)
    }

    /// Re-reads a busy login's row ahead of its expiry: no argon2 run while
    /// the stored hash is unchanged. A changed, disabled or deleted user is
    /// dropped, so its next request logs in from scratch. If the database is
    /// unreachable, the entry is served until it expires.
    async fn refresh(&self, key: CacheKey, username: &str, stale: Arc<CachedLogin>) {
        let generation = self.generation();
        match self.lookup(username).await {
            Ok(Some(credentials))
                if !credentials.disabled
                    && hash_id(&credentials.password_hash) == stale.credential =>
            {
                if self.generation() != generation {
                    self.logins.invalidate(&key).await;
                    return;
                }
                self.logins
                    .insert(key, Arc::new(CachedLogin::new(credentials)))
                    .await;
                if self.generation() != generation {
                    self.logins.invalidate(&key).await;
                }
            }
            Ok(_) => self.logins.invalidate(&key).await,
            Err(err) => {
                tracing::debug!(error = %err, "cannot refresh a cached login; serving it until it expires");
                stale.refreshing.store(false, Ordering::Release);
            }
        }
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
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Err(err) = self
            .logins
            .invalidate_entries_if(move |_, login| matches(login))
        {
            tracing::warn!(error = %err, "cannot drop some cached logins; dropping all");
            self.logins.invalidate_all();
        }
    }

    /// Drops every cached login.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.logins.invalidate_all();
    }
}
