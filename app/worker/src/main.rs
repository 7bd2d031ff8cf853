//! The explorer's engine, in a Web Worker: the page posts [`ToWorker`] messages (JSON, an
//! upload's bytes beside them) and gets [`FromWorker`] messages back, so that loading the model
//! and running it never freeze the page. Only the upload page starts this worker; browsing
//! never downloads the engine.

mod analyse;
mod model;

use std::cell::RefCell;
use std::rc::Rc;

use salient_engine::site::{FromWorker, ToWorker};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(message: &FromWorker) {
    let text = serde_json::to_string(message).expect("plain data");
    let _ = scope().post_message(&JsValue::from_str(&text));
}

fn main() {
    console_error_panic_hook::set_once();
    let loaded: Rc<RefCell<Option<Rc<model::Loaded>>>> = Rc::default();
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
        let data = js_sys::Array::from(&event.data());
        let Some(text) = data.get(0).as_string() else { return };
        let message: ToWorker = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                return post(&FromWorker::Failed(format!("the page sent a message the worker does not know ({e})")));
            }
        };
        let loaded = loaded.clone();
        match message {
            ToWorker::Load { model, backend } => spawn_local(async move {
                let progress = |done, total| post(&FromWorker::Progress { done, total });
                match model::load(&model, &backend, progress).await {
                    Ok(l) => {
                        post(&FromWorker::Loaded {
                            backend: l.backend.into(),
                            from_cache: l.from_cache,
                            load_ms: l.load_ms,
                            description: model.description.clone(),
                        });
                        *loaded.borrow_mut() = Some(Rc::new(l));
                    }
                    Err(e) => post(&FromWorker::Failed(e)),
                }
            }),
            ToWorker::Analyse { name, labels } => {
                let bytes = js_sys::Uint8Array::new(&data.get(1)).to_vec();
                let Some(l) = loaded.borrow().clone() else {
                    return post(&FromWorker::AnalysisFailed("the model is not loaded yet".into()));
                };
                spawn_local(async move {
                    post(&match analyse::analyse(&l, &name, &bytes, &labels).await {
                        Ok(a) => FromWorker::Analysed(a),
                        Err(e) => FromWorker::AnalysisFailed(e),
                    })
                });
            }
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // Messages posted before the wasm ran are lost: the page waits for this one.
    post(&FromWorker::Ready);
}
