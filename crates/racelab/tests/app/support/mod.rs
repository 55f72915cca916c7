//! What more than one test module needs, and nothing that is itself a test: the service started in
//! the test's process (`service`), the binary run as a user runs it (`binary`), and a database account
//! that may hold only a few connections (`limited_account`). The browser binary uses it too.

pub mod binary;
pub mod limited_account;
pub mod service;
