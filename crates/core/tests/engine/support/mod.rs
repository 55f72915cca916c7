//! What more than one test module of the engine's tests needs, and nothing that is itself a test.

pub mod anomaly_token;
pub mod liked;
pub mod workload;
