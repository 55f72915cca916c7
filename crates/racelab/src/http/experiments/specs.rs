//! `GET /specs`: the repository's isolation-tester spec files (`specs/*.spec`, `specs/hermitage/*.spec`),
//! embedded in the binary when it is built, so the page can offer them to run (`POST /experiments`
//! with `kind: "spec"`) wherever the server runs, without a checkout beside it. Nothing is run.
//!
//! The list is written out, file by file: the app's tests compare it with the directory, so a spec
//! added to the repository and not here fails them.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// One spec file of the repository.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpecFile {
    /// Its path under `specs/`, e.g. `blocking.spec`, `hermitage/lost-update.spec`.
    pub name: &'static str,
    /// The file's text, as `POST /experiments` takes it in `spec`.
    pub text: &'static str,
}

macro_rules! spec_files {
    ($($name:literal),* $(,)?) => {
        [$(SpecFile { name: $name, text: include_str!(concat!("../../../../../specs/", $name)) }),*]
    };
}

/// The repository's spec files, by name.
pub const SPECS: [SpecFile; 26] = spec_files!(
    "blocking.spec",
    "row-lock.spec",
    "deadlock.spec",
    "notices.spec",
    "nowait.spec",
    "skip-locked.spec",
    "three-sessions.spec",
    "hermitage/lost-update.spec",
    "hermitage/read-skew.spec",
    "hermitage/write-skew.spec",
    "hermitage/g0.spec",
    "hermitage/g1a.spec",
    "hermitage/g1b.spec",
    "hermitage/g1c.spec",
    "hermitage/otv.spec",
    "hermitage/pmp.spec",
    "hermitage/pmp-write.spec",
    "hermitage/p4.spec",
    "hermitage/g-single.spec",
    "hermitage/g-single-write.spec",
    "hermitage/g2-item.spec",
    "hermitage/g2.spec",
    "hermitage/g2-fekete.spec",
    "hermitage/p4-increment.spec",
    "hermitage/read-then-write.spec",
    "hermitage/read-then-write-late.spec",
);

/// The repository's spec files (names and text), in the order above: the top-level ones, then
/// Hermitage's.
#[utoipa::path(get, path = "/specs", tag = "experiments",
    responses((status = 200, description = "The repository's spec files", body = Vec<SpecFile>)))]
pub async fn list_specs() -> Json<&'static [SpecFile]> {
    Json(&SPECS)
}
