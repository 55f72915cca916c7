//! The socket as hyper sees it: reads tell the connection's [`Activity`] a request has begun, writes
//! and flushes how far a response has got to the client, and hyper's own answers are rewritten into
//! problems.
//!
//! hyper answers a request head it cannot parse itself, before any service runs: 400 (malformed),
//! 414 (a URI over 65534 bytes) and 431 (a head over `max_buf_size`, or over 100 header fields), each
//! with an empty body, then closes. Our limits (see `http::request_limits`) answer first in all but these
//! cases; for these, the bytes hyper writes while no request of ours is in flight and no response of
//! ours is on its way can only be that answer: they are replaced by a problem+json with the same
//! status. Then the connection lingers (reads and discards until the client closes, 1 s at most),
//! so the client's unread request does not turn the close into a reset that destroys the answer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::activity::Activity;
use crate::http::error::ApiError;
use crate::http::request_limits::{MAX_HEAD_BYTES, MAX_HEADER_FIELDS, MAX_URI_BYTES};

/// How long a connection closed after an error answer keeps reading, so the answer is not lost.
pub const LINGER: Duration = Duration::from_secs(1);

/// A TCP stream that reports reads to its connection's activity and rewrites hyper's bare answers.
pub struct TrackedIo {
    stream: TcpStream,
    activity: Arc<Activity>,
    /// Bytes read off the socket before hyper had it (the head of a connection admitted over the
    /// cap), handed to hyper first, and how many of them are handed.
    prefix: (Vec<u8>, usize),
    /// A problem answer replacing hyper's, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
    /// After a replaced answer: the deadline of the lingering close.
    linger: Option<Pin<Box<Sleep>>>,
}

impl TrackedIo {
    /// `stream`, of which `prefix` was already read.
    pub fn new(stream: TcpStream, prefix: Vec<u8>, activity: Arc<Activity>) -> Self {
        Self { stream, activity, prefix: (prefix, 0), replacement: None, linger: None }
    }

    /// If `buf` is hyper's own answer, queues a problem in its place and returns true.
    fn intercept(&mut self, buf: &[u8]) -> bool {
        if self.replacement.is_some() || !buf.starts_with(b"HTTP/1.") || !self.activity.nothing_of_ours_to_write() {
            return false;
        }
        let Some(status) = buf.get(9..12).and_then(|code| StatusCode::from_bytes(code).ok()) else {
            return false;
        };
        let err = match status {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                ApiError::HeadTooLarge { max: MAX_HEAD_BYTES, fields: MAX_HEADER_FIELDS }
            }
            StatusCode::URI_TOO_LONG => ApiError::UriTooLong { length: None, max: MAX_URI_BYTES },
            StatusCode::BAD_REQUEST => ApiError::MalformedRequest,
            _ => return false,
        };
        tracing::info!(error = %err, status = status.as_u16(), "request refused before routing");
        self.replacement = Some((closing_response(status, &err), 0));
        true
    }

    /// The client took `n` bytes of what hyper writes (a response being sent is not stalled).
    fn wrote(&self, n: usize) {
        if n > 0 {
            self.activity.on_written();
        }
    }

    /// Writes what is left of the replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                break;
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Reads and discards until the client closes or the linger deadline passes.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = &mut self.linger else { return Poll::Ready(()) };
        let mut scratch = [0u8; 4096];
        loop {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A whole HTTP/1.1 answer carrying `err`'s problem, closing the connection.
pub fn closing_response(status: StatusCode, err: &ApiError) -> Vec<u8> {
    let body = serde_json::to_vec(&err.problem()).unwrap_or_else(|_| b"{}".to_vec());
    let retry_after = if status == StatusCode::SERVICE_UNAVAILABLE {
        format!("retry-after: {}\r\n", crate::http::error::RETRY_AFTER_SECS)
    } else {
        String::new()
    };
    let mut response = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n{retry_after}connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        crate::http::error::PROBLEM_JSON,
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

impl AsyncRead for TrackedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let (prefix, handed) = &mut self.prefix;
        if *handed < prefix.len() {
            let n = buf.remaining().min(prefix.len() - *handed);
            buf.put_slice(&prefix[*handed..*handed + n]);
            *handed += n;
            self.activity.on_read();
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.activity.on_read();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_replacement(cx))?;
        if self.intercept(buf) {
            // hyper's bytes count as written; the replacement goes out on the next write, flush or
            // shutdown.
            return Poll::Ready(Ok(buf.len()));
        }
        let written = ready!(Pin::new(&mut self.stream).poll_write(cx, buf))?;
        self.wrote(written);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_replacement(cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && self.intercept(first)
        {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        let written = ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, bufs))?;
        self.wrote(written);
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
        self.activity.on_flushed();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        if self.replacement.is_some() && self.linger.is_none() {
            ready!(Pin::new(&mut self.stream).poll_shutdown(cx))?;
            self.linger = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        if self.linger.is_some() {
            ready!(self.poll_linger(cx));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
