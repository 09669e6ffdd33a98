//! The live dashboard `weir up` serves at `GET /`: static files compiled into the binary (no build step,
//! no CDN: the machine may have no internet), which poll `GET /api/status` once a second and compute
//! rates from counter deltas, so the page costs the same at 10 or 100,000 events/s.
//!
//! Assets are answered with an `ETag` (a hash of their bytes) and `Cache-Control: no-cache`: browsers
//! revalidate on every load and get `304 Not Modified` until the binary changes. The pages carry a
//! strict Content-Security-Policy: everything comes from this origin, and there is no inline script.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::LazyLock;

use crate::error::ApiError;

/// The dashboard page.
pub const INDEX_PATH: &str = "/";
/// Its scripts, styles and icon.
pub const ASSETS_PATH: &str = "/assets/{file}";
/// The routes [`router`] serves, as in [`crate::api::ROUTES`] (`GET` also answers `HEAD`).
pub const ROUTES: &[(&str, &str)] = &[("GET", INDEX_PATH), ("GET", ASSETS_PATH)];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    etag: HeaderValue,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(body))).expect("hex digits are a valid header");
        Asset {
            name,
            content_type,
            body,
            etag,
        }
    }
}

/// `index.html` first; the rest are served under `/assets/`.
static ASSETS: LazyLock<[Asset; 4]> = LazyLock::new(|| {
    [
        Asset::new(
            "index.html",
            "text/html; charset=utf-8",
            include_bytes!("../assets/index.html"),
        ),
        Asset::new(
            "dashboard.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../assets/dashboard.js"),
        ),
        Asset::new(
            "dashboard.css",
            "text/css; charset=utf-8",
            include_bytes!("../assets/dashboard.css"),
        ),
        Asset::new("favicon.svg", "image/svg+xml", include_bytes!("../assets/favicon.svg")),
    ]
});

/// `GET /` and `GET /assets/{file}`; stateless, so it merges into a router of any state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            INDEX_PATH,
            get(|headers: HeaderMap| async move { serve(&ASSETS[0], &headers) }).fallback(method_not_allowed),
        )
        .route(ASSETS_PATH, get(asset).fallback(method_not_allowed))
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS[1..].iter().find(|a| a.name == file) {
        Some(asset) => serve(asset, &headers),
        None => ApiError::not_found(format!("no dashboard asset named {file:?}")).into_response(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET")
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &asset.etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, asset.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if asset.content_type.starts_with("text/html") {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    response
}

/// `If-None-Match` holds `*` or a list of (possibly weak) entity tags (RFC 9110 §13.1.2).
fn etag_matches(if_none_match: &str, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == etag)
}

/// FNV-1a, 64 bits: enough to tell builds apart, and no dependency for it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(uri: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(uri);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let response = router::<()>()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes().to_vec();
        (parts.status, parts.headers, body)
    }

    #[tokio::test]
    async fn serves_every_asset_with_its_content_type_and_etag() {
        for (uri, content_type) in [
            ("/", "text/html; charset=utf-8"),
            ("/assets/dashboard.js", "text/javascript; charset=utf-8"),
            ("/assets/dashboard.css", "text/css; charset=utf-8"),
            ("/assets/favicon.svg", "image/svg+xml"),
        ] {
            let (status, headers, body) = get(uri, None).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{uri}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{uri}");
            assert!(!body.is_empty(), "{uri}");
            let etag = headers[header::ETAG].to_str().expect("ASCII etag");
            let (status, headers, body) = get(uri, Some(&format!("\"other\", W/{etag}"))).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{uri}");
            assert_eq!(headers[header::ETAG], etag, "{uri}");
            assert!(body.is_empty(), "{uri}");
        }
    }

    #[tokio::test]
    async fn page_references_only_assets_that_exist() {
        let (_, headers, body) = get("/", None).await;
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
        let html = String::from_utf8(body).expect("UTF-8 page");
        let referenced: Vec<&str> = html
            .split("\"/assets/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap_or(rest))
            .collect();
        assert_eq!(referenced.len(), 3, "{referenced:?}");
        for file in referenced {
            let (status, ..) = get(&format!("/assets/{file}"), None).await;
            assert_eq!(status, StatusCode::OK, "{file}");
        }
    }

    #[tokio::test]
    async fn unknown_asset_is_a_json_404() {
        let (status, headers, body) = get("/assets/missing.js", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
        assert_eq!(body["error"]["code"], "not_found");
        // index.html is the page at `/`, not an asset.
        let (status, ..) = get("/assets/index.html", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
