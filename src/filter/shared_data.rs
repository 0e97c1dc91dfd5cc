//! [`Store`] over proxy-wasm shared data: one key-value space per `vm_id`, shared by every
//! worker VM of the Envoy process and kept across plugin reloads with the same `vm_id`.

use crate::store::{Store, StoreError, Versioned};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// The host's shared data.
pub struct HostStore;

impl Store for HostStore {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(bytes), Some(cas))) => Ok(Some(Versioned { bytes, cas })),
            Ok((_, _)) => Ok(None),
            Err(status) => Err(StoreError::Unavailable(format!("{status:?}"))),
        }
    }

    fn set_if_cas(&mut self, key: &str, bytes: &[u8], cas: u32) -> Result<(), StoreError> {
        let cas = (cas != 0).then_some(cas);
        match hostcalls::set_shared_data(key, Some(bytes), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(status) => Err(StoreError::Unavailable(format!("{status:?}"))),
        }
    }
}
