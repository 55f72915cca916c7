//! A folder of one test's own under the system's temporary folder, removed when dropped (also when
//! the test fails). It never holds anything a later test reads.

use std::path::{Path, PathBuf};

pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A new, empty folder named `racelab-{purpose}-{a fresh UUID}`.
    pub fn new(purpose: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("racelab-{purpose}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a folder under the temporary folder");
        Self(dir)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
