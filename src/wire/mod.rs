//! Messages the filter exchanges with other services, encoded and decoded in pure code:
//! the glue only moves their bytes. A leaf: imports nothing from the crate.

pub mod rls;
