//! Output for people and programs: terminal tables now; JSON, CSV and SVG charts beside them.

pub mod table;
