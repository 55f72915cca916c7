//! What one request may bring, checked before any handler runs: a URI of at most 8 KiB (414), header
//! fields of at most 16 KiB (431), a body of at most 16 KiB (413; the largest body an endpoint reads,
//! a post's JSON, is a few bytes). Each answer is
//! a problem naming the limit.
//!
//! Each limit is well below what hyper reads of a request head ([`MAX_HEAD_BYTES`](crate::http::request_limits::MAX_HEAD_BYTES)): past that, hyper
//! answers 431 (or 414, 400) itself, with an empty body, before any of this runs; `connections` turns
//! those answers into problems on their way out, but a limit of our own is the answer a client
//! normally meets, with the numbers in it.
//!
//! It must never read a body: only the declared length is checked here.

use axum::extract::Request;
use axum::http::{Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The longest request target accepted (nginx's and most proxies' order of magnitude).
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The most bytes of header fields (names, values and their separators) accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The largest request body accepted: far more than any endpoint reads (a post's JSON).
pub const MAX_BODY_BYTES: u64 = 16 * 1024;

/// The most header fields in a request (hyper's default, set explicitly so that the message saying it
/// is the limit enforced): past it, hyper answers 431 itself.
pub const MAX_HEADER_FIELDS: usize = 100;

/// What hyper buffers of a request head at most (its default is 400 kB): room for a URI and header
/// fields at their limits, so that ours answer first, and a bound on what a slow client can make
/// the server hold per connection.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Refuses a request over one of the limits above.
pub async fn enforce(request: Request, next: Next) -> Response {
    match check(&request) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

fn check(request: &Request) -> Result<(), ApiError> {
    let uri = uri_length(request.uri());
    if uri > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong { length: Some(uri), max: MAX_URI_BYTES });
    }
    // As on the wire: `name: value\r\n`.
    let headers: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge { length: headers, max: MAX_HEADER_BYTES });
    }
    let body = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match body {
        Some(length) if length > MAX_BODY_BYTES => {
            Err(ApiError::BodyTooLarge { length: Some(length), max: MAX_BODY_BYTES })
        }
        _ => Ok(()),
    }
}

/// The request target's length as sent (origin form, or absolute form with scheme and authority).
fn uri_length(uri: &Uri) -> usize {
    let path_and_query = uri.path_and_query().map_or(0, |p| p.as_str().len());
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + "://".len());
    scheme + authority + path_and_query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_length_counts_what_was_sent() {
        assert_eq!(uri_length(&"/a?b=c".parse().unwrap()), 6);
        assert_eq!(uri_length(&"http://h:1/a".parse().unwrap()), "http://h:1/a".len());
    }
}
