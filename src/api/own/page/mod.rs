//! The live cluster page at `GET /shoal/`: one HTML file with its CSS and JS inline,
//! compiled into the binary, no build step. It polls `/shoal/api/cluster` every few
//! seconds and draws everything in the browser: a map of every node, a summary by label
//! value, a filter, and the node list (nodes needing a look first, then natural order).
//! It is made for 1,000 nodes and more: the list is drawn in chunks the browser lays out
//! only near the screen, and what the user chose (filter, open node) lives in the URL's
//! fragment, so it survives every poll and can be shared.

use actix_web::http::header;
use actix_web::HttpResponse;

/// The page, as written in `index.html`.
pub const INDEX_HTML: &str = include_str!("index.html");

/// `GET /shoal/`.
pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // The page loads nothing from elsewhere; say so, so nothing injected could.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(INDEX_HTML)
}

/// `GET /shoal`: the page lives under the slash, so its relative URLs resolve.
pub async fn redirect() -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, "/shoal/"))
        .finish()
}
