//! The paginated envelope `{next, previous, results, count}` and the query
//! parameters every list endpoint shares.

use domain::pagination::{Page, PageRequest};
use serde::Serialize;

use crate::url::BaseUrl;

#[derive(Debug, Serialize)]
pub struct Paginated<T: Serialize> {
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
    /// Present only on a first page (a request without a `cursor` parameter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// Reads `cursor` and `page_size` from the raw query (absent vs empty matters).
pub fn page_request(query: Option<&str>) -> PageRequest {
    let mut req = PageRequest::default();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "cursor" => req.cursor = Some(v.into_owned()),
            "page_size" => req.page_size = Some(v.into_owned()),
            _ => {}
        }
    }
    req
}

/// The current request's absolute URL with `cursor` replaced; all parameters
/// re-encoded and sorted by name, as the original does.
fn link(base: &BaseUrl, cursor: &str) -> String {
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(base.query.as_deref().unwrap_or("").as_bytes())
            .filter(|(k, _)| k != "cursor")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    params.push(("cursor".into(), cursor.into()));
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{}?{}", base.absolute(&base.path), query)
}

pub fn envelope<T: Serialize, U>(
    base: &BaseUrl,
    page: Page<U>,
    view: impl FnMut(U) -> T,
) -> Paginated<T> {
    Paginated {
        next: page.next.as_deref().map(|c| link(base, c)),
        previous: page.previous.as_deref().map(|c| link(base, c)),
        count: page.count,
        results: page.items.into_iter().map(view).collect(),
    }
}
