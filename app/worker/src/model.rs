//! The site's model in the worker: chunks fetched in parallel, each checked against its SHA-256
//! before use, kept in Cache Storage under the model's version (older versions are deleted),
//! then the engine on WebGPU when the browser has it, else on the CPU.

use std::cell::Cell;

use futures::future::try_join_all;
use salient_engine::burn::tensor::Device;
use salient_engine::site::{SiteChunk, SiteModel};
use salient_engine::{Engine, StateDict};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response, WorkerGlobalScope};

/// Cache Storage names of the models, `salient-model-<sha256>`.
const CACHE_PREFIX: &str = "salient-model";

pub struct Loaded {
    pub engine: Engine,
    /// "WebGPU" or "CPU".
    pub backend: &'static str,
    /// Whether every chunk came from the browser's cache.
    pub from_cache: bool,
    pub load_ms: f64,
}

fn scope() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Milliseconds since the worker started.
pub fn now() -> f64 {
    scope().performance().map_or(0.0, |p| p.now())
}

/// Loads the model; `backend` is `auto`, `cpu` or `webgpu`; `progress(done, total)` in bytes.
pub async fn load(model: &SiteModel, backend: &str, progress: impl Fn(u64, u64)) -> Result<Loaded, String> {
    let t0 = now();
    let (bytes, from_cache) = fetch_weights(model, &progress).await?;
    let sd = StateDict::from_bytes("model.safetensors", &bytes).map_err(|e| e.to_string())?;
    let (device, backend) = device(backend).await?;
    let engine = Engine::from_state_dict(&sd, &device).map_err(|e| e.to_string())?;
    Ok(Loaded { engine, backend, from_cache, load_ms: now() - t0 })
}

async fn device(choice: &str) -> Result<(Device, &'static str), String> {
    if choice != "cpu" {
        match Device::wgpu_options().init_async().await {
            Ok(d) => return Ok((d, "WebGPU")),
            Err(e) if choice == "webgpu" => return Err(format!("WebGPU is not available in this browser ({e})")),
            Err(_) => {}
        }
    }
    Ok((Device::flex(), "CPU"))
}

/// This version's cache, after deleting the caches of other versions.
async fn open_cache(model: &SiteModel) -> Option<Cache> {
    let storage = scope().caches().ok()?;
    let name = format!("{CACHE_PREFIX}-{}", model.sha256);
    if let Ok(keys) = JsFuture::from(storage.keys()).await {
        for key in js_sys::Array::from(&keys).iter().filter_map(|k| k.as_string()) {
            if key.starts_with(CACHE_PREFIX) && key != name {
                let _ = JsFuture::from(storage.delete(&key)).await;
            }
        }
    }
    JsFuture::from(storage.open(&name)).await.ok().map(JsCast::unchecked_into)
}

/// The chunks, from Cache Storage when there, else downloaded, all at once; each checked.
async fn fetch_weights(model: &SiteModel, progress: &impl Fn(u64, u64)) -> Result<(Vec<u8>, bool), String> {
    let cache = open_cache(model).await;
    let done = Cell::new(0u64);
    progress(0, model.bytes);
    let parts = try_join_all(model.chunks.iter().map(|chunk| {
        let (cache, done) = (&cache, &done);
        async move {
            let (bytes, cached) = fetch_chunk(chunk, cache.as_ref()).await?;
            done.set(done.get() + bytes.len() as u64);
            progress(done.get(), model.bytes);
            Ok::<_, String>((bytes, cached))
        }
    }))
    .await?;
    let from_cache = parts.iter().all(|(_, cached)| *cached);
    let all: Vec<u8> = parts.into_iter().flat_map(|(b, _)| b).collect();
    if all.len() as u64 != model.bytes {
        return Err(format!("the model is {} bytes, expected {}: the site is incomplete", all.len(), model.bytes));
    }
    Ok((all, from_cache))
}

/// One chunk, checked against its digest; a cached copy that fails the check is fetched again.
async fn fetch_chunk(chunk: &SiteChunk, cache: Option<&Cache>) -> Result<(Vec<u8>, bool), String> {
    if let Some(c) = cache
        && let Ok(found) = JsFuture::from(c.match_with_str(&chunk.path)).await
        && let Ok(response) = found.dyn_into::<Response>()
    {
        let bytes = body(&chunk.path, &response).await?;
        if sha256_hex(&bytes).await? == chunk.sha256 {
            return Ok((bytes, true));
        }
        let _ = JsFuture::from(c.delete_with_str(&chunk.path)).await;
    }
    let response: Response = JsFuture::from(scope().fetch_with_str(&chunk.path))
        .await
        .map_err(|_| format!("{}: the download failed", chunk.path))?
        .unchecked_into();
    if !response.ok() {
        return Err(format!("{}: HTTP {}", chunk.path, response.status()));
    }
    let copy = response.clone().ok();
    let bytes = body(&chunk.path, &response).await?;
    let digest = sha256_hex(&bytes).await?;
    if digest != chunk.sha256 {
        return Err(format!(
            "{}: the download is corrupt (SHA-256 {}…, expected {}…): reload the page, or tell the site's owner",
            chunk.path,
            &digest[..12],
            chunk.sha256.get(..12).unwrap_or(&chunk.sha256)
        ));
    }
    if let (Some(c), Some(copy)) = (cache, copy) {
        let _ = JsFuture::from(c.put_with_str(&chunk.path, &copy)).await;
    }
    Ok((bytes, false))
}

async fn body(path: &str, response: &Response) -> Result<Vec<u8>, String> {
    let promise = response.array_buffer().map_err(|_| format!("{path}: unreadable"))?;
    let buffer = JsFuture::from(promise).await.map_err(|_| format!("{path}: unreadable"))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// SHA-256 by the browser's Web Crypto.
async fn sha256_hex(bytes: &[u8]) -> Result<String, String> {
    let subtle = scope().crypto().map_err(|_| "no Web Crypto in this browser".to_string())?.subtle();
    let data = js_sys::Uint8Array::from(bytes);
    let promise =
        subtle.digest_with_str_and_buffer_source("SHA-256", &data).map_err(|_| "SHA-256 is unavailable".to_string())?;
    let digest = JsFuture::from(promise).await.map_err(|_| "SHA-256 failed".to_string())?;
    Ok(js_sys::Uint8Array::new(&digest).to_vec().iter().map(|b| format!("{b:02x}")).collect())
}
