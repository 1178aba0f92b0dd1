//! The one executor: runs any plan, journals every step, emits events.

pub mod plan;
