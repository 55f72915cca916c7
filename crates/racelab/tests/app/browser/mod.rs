//! The page in a real browser: Debian's headless Chromium, driven through chromedriver by fantoccini,
//! against a real service on a fresh database. Each test starts its own chromedriver (on a free port)
//! and its own service; screenshots for a person to look at go to `target/screenshots/`.
//!
//! ```sh
//! apt-get install chromium chromium-driver      # scripts/test does this when they are missing
//! cargo nextest run -p racelab --test browser   # RACELAB_CHROMEDRIVER=/path to use another driver
//! ```
//!
//! A missing chromedriver fails every test, naming the package to install: nothing is skipped.

mod driver;
mod lab;
mod outage;
mod page;
mod spec;
mod workloads;
