//! The page's side of the engine worker (`worker/`): started by the upload page on its first
//! visit and kept for the page's lifetime; messages are [`ToWorker`] / [`FromWorker`] as JSON,
//! an upload's bytes beside them (transferred, not copied).

use salient_engine::site::{FromWorker, ToWorker};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker};

/// The worker's script, written by trunk beside the page (unhashed: its name is fixed).
const SCRIPT: &str = "./salient-worker_loader.js";

/// Starts the worker; `on_message` receives everything it sends.
pub fn start(on_message: impl Fn(FromWorker) + 'static) -> Result<Worker, String> {
    let worker = Worker::new(SCRIPT).map_err(|e| format!("the engine worker cannot start ({e:?})"))?;
    let handler = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
        let Some(text) = event.data().as_string() else { return };
        match serde_json::from_str::<FromWorker>(&text) {
            Ok(m) => on_message(m),
            Err(e) => leptos::logging::warn!("the worker sent an unknown message ({e})"),
        }
    });
    worker.set_onmessage(Some(handler.as_ref().unchecked_ref()));
    handler.forget();
    let onerror = Closure::<dyn Fn(JsValue)>::new(move |_| leptos::logging::warn!("the engine worker failed to load"));
    worker.set_onerror(Some(onerror.as_ref().unchecked_ref()));
    onerror.forget();
    Ok(worker)
}

/// Sends a message, with bytes whose buffer is transferred to the worker.
pub fn send(worker: &Worker, message: &ToWorker, bytes: Option<js_sys::Uint8Array>) {
    let text = serde_json::to_string(message).expect("plain data");
    let parts = js_sys::Array::of1(&JsValue::from_str(&text));
    match bytes {
        Some(b) => {
            parts.push(&b);
            let _ = worker.post_message_with_transfer(&parts, &js_sys::Array::of1(&b.buffer()));
        }
        None => {
            let _ = worker.post_message(&parts);
        }
    }
}
