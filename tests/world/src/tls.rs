//! The one crypto provider used everywhere in the test world.

use rustls::crypto::CryptoProvider;

/// The ring provider, named explicitly so no process-wide default provider is needed.
pub(crate) fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}
