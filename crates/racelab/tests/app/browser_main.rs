//! The browser tests' own binary (`--test browser`, named in `Cargo.toml`): they need Chromium and
//! chromedriver, so they stay apart from the `app` binary, whose `support` modules they share by
//! living in the same folder. The tests themselves are in `browser/`.

// The browser tests use only part of the support the HTTP tests share.
#[allow(dead_code)]
mod support;

mod browser;
