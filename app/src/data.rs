//! Reading the site's data files (relative URLs: the site works under any prefix). Class pages
//! are kept once loaded, so moving between a class's features and images, and Back, are instant.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use salient_engine::site::{ClassPage, class_page};
use serde::de::DeserializeOwned;

/// Fetches and parses a JSON file of the site.
pub async fn json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let response = gloo_net::http::Request::get(path).send().await.map_err(|e| format!("{path}: {e}"))?;
    if !response.ok() {
        return Err(format!("{path}: HTTP {}", response.status()));
    }
    response.json::<T>().await.map_err(|e| format!("{path}: {e}"))
}

thread_local! {
    static CLASS_PAGES: RefCell<HashMap<usize, Rc<ClassPage>>> = RefCell::default();
}

/// A class's page, fetched once.
pub async fn class(class: usize) -> Result<Rc<ClassPage>, String> {
    if let Some(p) = CLASS_PAGES.with(|c| c.borrow().get(&class).cloned()) {
        return Ok(p);
    }
    let page = Rc::new(json::<ClassPage>(&class_page(class)).await?);
    CLASS_PAGES.with(|c| c.borrow_mut().insert(class, page.clone()));
    Ok(page)
}
