//! Data-plane authentication (HTTP Basic against argon2id hashes, with a
//! per-node cache) and authorization (topic-prefix grants).

mod authenticator;
mod extractor;
mod principal;
mod verifier;

pub use authenticator::{AuthError, Authenticator};
pub use extractor::{Admitted, Authenticated, TrustedProxies};
pub use principal::{Access, Principal};
pub use verifier::{Overloaded, Verifier};
