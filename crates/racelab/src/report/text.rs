//! Text layout shared by every terminal output: the 80-column width, a borderless stacked table,
//! notes and wrapping, short milliseconds, a server's short name.
//!
//! Knows nothing of outcomes, benches or anomalies (the tables built on it do): it only lays out
//! strings, and never writes them anywhere.

use racelab_core::Backend;

/// The width the compact forms stay within: a default terminal's.
pub const COMPACT_WIDTH: usize = 80;

/// One row of a stacked table: a name, its figures, and what is said about them.
pub struct StackedRow {
    pub name: &'static str,
    pub figures: Vec<String>,
    /// Each wrapped on lines of its own below the figures, indented.
    pub notes: Vec<String>,
}

/// A table without borders: a header, then per row a line of right-aligned figures after a
/// left-aligned name (each column as wide as its widest entry) and the row's notes below it.
pub fn stacked(header: &[&str], rows: &[StackedRow]) -> String {
    let name_width = rows.iter().map(|r| r.name.len()).chain(["strategy".len()]).max().unwrap_or(0);
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter().filter_map(|r| r.figures.get(i)).map(String::len).chain([header[i].len()]).max().unwrap_or(0)
        })
        .collect();
    let line = |name: &str, figures: &mut dyn Iterator<Item = &str>| {
        let mut out = format!("{name:<name_width$} ");
        for (figure, width) in figures.zip(&widths) {
            out.push_str(&format!(" {figure:>width$}"));
        }
        out
    };
    let mut out = line("strategy", &mut header.iter().copied());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.name, &mut row.figures.iter().map(String::as_str)));
        for note_line in row.notes.iter().flat_map(|note| wrap(note, COMPACT_WIDTH - 4)) {
            out.push_str("\n    ");
            out.push_str(&note_line);
        }
    }
    out
}

/// "note: ..." wrapped to [`COMPACT_WIDTH`], continuation lines indented under the text.
pub fn note(text: &str) -> String {
    format!("note: {}", wrap(text, COMPACT_WIDTH - 6).join("\n      "))
}

/// Milliseconds with the precision that matters at that size: 0.83, 12.4, 205.
pub fn short_ms(ms: f64) -> String {
    match ms {
        ms if ms < 10.0 => format!("{ms:.2}"),
        ms if ms < 100.0 => format!("{ms:.1}"),
        ms => format!("{ms:.0}"),
    }
}

/// Splits `text` into lines of at most `width` characters at spaces (a longer word gets a line of its
/// own, unbroken).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// Shortens a `version()` string: PostgreSQL's names the compiler and platform, MariaDB's a suffix.
pub fn short_server_name(backend: Backend, version: &str) -> String {
    let first_token = version.split_whitespace().next().unwrap_or("");
    match backend {
        Backend::Postgres => {
            let number = version.split_whitespace().nth(1).unwrap_or(first_token);
            format!("PostgreSQL {number}")
        }
        Backend::MySql => {
            let number = first_token.split('-').next().unwrap_or(first_token);
            let product = if version.to_ascii_lowercase().contains("mariadb") { "MariaDB" } else { "MySQL" };
            format!("{product} {number}")
        }
        Backend::Sqlite => {
            let number = version.trim().trim_start_matches("SQLite").trim();
            format!("SQLite {number}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_within_the_width() {
        let text =
            "lost 3054 of 3200 updates: concurrent read-modify-writes read the same value and overwrote each other";
        let lines = wrap(text, 40);
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(wrap("a-word-longer-than-the-width", 5), ["a-word-longer-than-the-width"]);
    }

    #[test]
    fn milliseconds_keep_three_significant_digits_or_so() {
        assert_eq!(short_ms(0.834), "0.83");
        assert_eq!(short_ms(12.44), "12.4");
        assert_eq!(short_ms(204.6), "205");
    }

    #[test]
    fn server_names_are_short() {
        let pg = "PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc";
        assert_eq!(short_server_name(Backend::Postgres, pg), "PostgreSQL 15.20");
        assert_eq!(short_server_name(Backend::MySql, "10.11.19-MariaDB-0+deb12u1"), "MariaDB 10.11.19");
        assert_eq!(short_server_name(Backend::MySql, "8.0.36"), "MySQL 8.0.36");
        assert_eq!(short_server_name(Backend::Sqlite, "SQLite 3.51.3"), "SQLite 3.51.3");
        assert_eq!(short_server_name(Backend::Sqlite, "3.51.3"), "SQLite 3.51.3");
    }
}
