//! How much of a client's own text an answer or a log line may repeat: a 60 kB value must not come back
//! twice in a 400 body, nor a 64 kB URI land whole in the log. Every error that quotes the client goes
//! through [`echo`]; this module must never decide what is quoted, only how much.

/// The most characters of a client's value (or parameter name) an error message repeats.
pub const ECHO_LIMIT: usize = 40;

/// `text` as an error may repeat it: at most [`ECHO_LIMIT`] characters, then an ellipsis.
pub fn echo(text: &str) -> String {
    cut(text, ECHO_LIMIT)
}

/// At most `limit` characters of `text`, then an ellipsis if anything was cut.
pub fn cut(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}
