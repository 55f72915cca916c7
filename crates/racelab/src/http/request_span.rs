//! The span every request's log lines sit in: method, route, URI and version, as tower-http's default
//! span has them (plus the route the request matched), but with the URI cut (a client can send URIs of
//! up to 64 kB, which were logged whole at INFO). It is the one span per request: each handler's own
//! span, at DEBUG, sits inside it and carries only what that handler works on (its post, its run), not
//! the method or URI again. It must never log a request's whole URI, body or headers.

use axum::extract::MatchedPath;

use super::echo::cut;

/// The most characters of a request's URI the request log records.
pub const LOGGED_URI_LIMIT: usize = 200;

/// The request log's span: method, route (the matched path, as the metrics label it), URI and
/// version, with the URI cut to [`LOGGED_URI_LIMIT`] characters and its full length said.
pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    let uri = request.uri().to_string();
    let logged = if uri.chars().count() > LOGGED_URI_LIMIT {
        format!("{} ({} bytes)", cut(&uri, LOGGED_URI_LIMIT), uri.len())
    } else {
        uri
    };
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        uri = %logged,
        version = ?request.version()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log layer that keeps the `uri` field of every new span.
    struct Uris(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Uris {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Uri<'a>(&'a std::sync::Mutex<Vec<String>>);
            impl tracing::field::Visit for Uri<'_> {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                    if field.name() == "uri" {
                        self.0.lock().expect("lock").push(format!("{value:?}"));
                    }
                }
            }
            attrs.record(&mut Uri(&self.0));
        }
    }

    #[test]
    fn logged_uris_are_bounded() {
        use tracing_subscriber::layer::SubscriberExt;

        let uris = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Uris(uris.clone()));
        let long = format!("/test-db/2th?workers={}", "7".repeat(60_000));
        tracing::subscriber::with_default(subscriber, || {
            for uri in ["/test-db/2th?workers=2", long.as_str()] {
                let request = axum::http::Request::get(uri).body(()).expect("request");
                drop(request_span(&request));
            }
        });
        let uris = uris.lock().expect("lock");
        assert_eq!(uris[0], "/test-db/2th?workers=2");
        assert!(uris[1].len() < LOGGED_URI_LIMIT + 40, "{}", uris[1]);
        assert!(uris[1].ends_with(&format!("… ({} bytes)", long.len())), "{}", uris[1]);
    }
}
