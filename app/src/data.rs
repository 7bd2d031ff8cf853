//! Reading the site's data files (relative URLs: the site works under any prefix).

use serde::de::DeserializeOwned;

/// Fetches and parses a JSON file of the site.
pub async fn json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let response = gloo_net::http::Request::get(path).send().await.map_err(|e| format!("{path}: {e}"))?;
    if !response.ok() {
        return Err(format!("{path}: HTTP {}", response.status()));
    }
    response.json::<T>().await.map_err(|e| format!("{path}: {e}"))
}

/// Fetches a file's bytes.
pub async fn bytes(path: &str) -> Result<Vec<u8>, String> {
    let response = gloo_net::http::Request::get(path).send().await.map_err(|e| format!("{path}: {e}"))?;
    if !response.ok() {
        return Err(format!("{path}: HTTP {}", response.status()));
    }
    response.binary().await.map_err(|e| format!("{path}: {e}"))
}
