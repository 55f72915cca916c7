//! The HTTP service (built in its own issue).
