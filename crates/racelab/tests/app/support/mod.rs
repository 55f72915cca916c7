//! What more than one test module needs, and nothing that is itself a test: the service started in
//! the test's process (`service`), the binary run as a user runs it (`binary`) and a folder of a test's
//! own (`scratch`). (A database account that may hold only a few connections is the testkit's.)
//! The browser binary uses it too.

pub mod binary;
pub mod scratch;
pub mod service;
