//! The model in the browser: weights fetched in chunks (kept in Cache Storage, so a second
//! visit downloads nothing), then the engine on WebGPU when the browser has it, else on the CPU.

use salient_engine::burn::tensor::Device;
use salient_engine::site::SiteModel;
use salient_engine::{Engine, StateDict};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Which backend to use: `?backend=cpu` or `?backend=webgpu` in the page URL forces one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Auto,
    WebGpu,
    Cpu,
}

impl Choice {
    pub fn from_url() -> Choice {
        let search = leptos::prelude::window().location().search().unwrap_or_default();
        if search.contains("backend=cpu") {
            Choice::Cpu
        } else if search.contains("backend=webgpu") {
            Choice::WebGpu
        } else {
            Choice::Auto
        }
    }
}

pub struct Loaded {
    pub engine: Engine,
    /// "WebGPU" or "CPU".
    pub backend: &'static str,
    /// Whether the weights came from the browser's cache.
    pub from_cache: bool,
    pub load_ms: f64,
}

/// Progress while loading: bytes so far, of all.
pub type Progress = (u64, u64);

pub async fn load(model: &SiteModel, choice: Choice, progress: impl Fn(Progress)) -> Result<Loaded, String> {
    let t0 = now();
    let (bytes, from_cache) = fetch_weights(model, &progress).await?;
    let sd = StateDict::from_bytes("model.safetensors", &bytes).map_err(|e| e.to_string())?;
    let (device, backend) = device(choice).await?;
    let engine = Engine::from_state_dict(&sd, &device).map_err(|e| e.to_string())?;
    Ok(Loaded { engine, backend, from_cache, load_ms: now() - t0 })
}

async fn device(choice: Choice) -> Result<(Device, &'static str), String> {
    if choice != Choice::Cpu {
        match Device::wgpu_options().init_async().await {
            Ok(d) => return Ok((d, "WebGPU")),
            Err(e) if choice == Choice::WebGpu => return Err(format!("WebGPU is not available in this browser ({e})")),
            Err(_) => {}
        }
    }
    Ok((Device::flex(), "CPU"))
}

/// The chunks, from Cache Storage when there, else downloaded (and cached).
async fn fetch_weights(model: &SiteModel, progress: &impl Fn(Progress)) -> Result<(Vec<u8>, bool), String> {
    let window = leptos::prelude::window();
    let cache: Option<web_sys::Cache> = match window.caches() {
        Ok(storage) => JsFuture::from(storage.open("salient-model")).await.ok().map(|c| c.unchecked_into()),
        Err(_) => None,
    };
    let mut all = Vec::with_capacity(model.bytes as usize);
    let mut from_cache = true;
    progress((0, model.bytes));
    for chunk in &model.chunks {
        // The digest in the key: a new model never reuses an old chunk.
        let key = format!("{chunk}?sha256={}", model.sha256);
        let cached = match &cache {
            Some(c) => JsFuture::from(c.match_with_str(&key)).await.ok().and_then(|r| r.dyn_into::<web_sys::Response>().ok()),
            None => None,
        };
        let response = match cached {
            Some(r) => r,
            None => {
                from_cache = false;
                let r: web_sys::Response = JsFuture::from(window.fetch_with_str(chunk))
                    .await
                    .map_err(|_| format!("{chunk}: the download failed"))?
                    .unchecked_into();
                if !r.ok() {
                    return Err(format!("{chunk}: HTTP {}", r.status()));
                }
                if let (Some(c), Ok(copy)) = (&cache, r.clone()) {
                    let _ = JsFuture::from(c.put_with_str(&key, &copy)).await;
                }
                r
            }
        };
        let buffer = JsFuture::from(response.array_buffer().map_err(|_| format!("{chunk}: unreadable"))?)
            .await
            .map_err(|_| format!("{chunk}: unreadable"))?;
        all.extend(js_sys::Uint8Array::new(&buffer).to_vec());
        progress((all.len() as u64, model.bytes));
    }
    if all.len() as u64 != model.bytes {
        return Err(format!("the model is {} bytes, expected {}: the site is incomplete", all.len(), model.bytes));
    }
    Ok((all, from_cache))
}

/// Milliseconds since the page started.
pub fn now() -> f64 {
    leptos::prelude::window().performance().map_or(0.0, |p| p.now())
}
