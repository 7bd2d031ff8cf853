//! Scroll positions across navigation: a new page starts at the top, Back and Forward return
//! to where the reader was. Each history entry gets an id in `history.state`; positions are
//! kept per id while the page is scrolled and restored once the page is tall enough again
//! (its data may still be loading).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::*;

use crate::route::Route;

const KEY: &str = "salientEntry";

fn entry_id() -> Option<u32> {
    let state = window().history().ok()?.state().ok()?;
    js_sys::Reflect::get(&state, &KEY.into()).ok()?.as_f64().map(|v| v as u32)
}

fn set_entry_id(id: u32) {
    let state = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&state, &KEY.into(), &JsValue::from(id));
    if let Ok(h) = window().history() {
        let _ = h.replace_state(&state, "");
    }
}

/// Starts managing scrolling for the page's lifetime.
pub fn manage(route: ReadSignal<Route>) {
    if let Ok(h) = window().history() {
        let _ = h.set_scroll_restoration(web_sys::ScrollRestoration::Manual);
    }
    let positions: Rc<RefCell<HashMap<u32, f64>>> = Rc::default();
    let next = Rc::new(RefCell::new(js_sys::Date::now() as u32));
    let restoring = Rc::new(RefCell::new(false));
    if entry_id().is_none() {
        set_entry_id(*next.borrow());
    }
    {
        let (positions, restoring) = (positions.clone(), restoring.clone());
        window_event_listener(leptos::ev::scroll, move |_| {
            if let Some(id) = entry_id().filter(|_| !*restoring.borrow()) {
                positions.borrow_mut().insert(id, window().scroll_y().unwrap_or(0.0));
            }
        });
    }
    let mut first = true;
    Effect::new(move |_| {
        route.track();
        if std::mem::take(&mut first) {
            return;
        }
        match entry_id() {
            // A new entry: the top of the new page.
            None => {
                *next.borrow_mut() += 1;
                set_entry_id(*next.borrow());
                window().scroll_to_with_x_and_y(0.0, 0.0);
            }
            // Back or forward: where the reader was.
            Some(id) => {
                let target = positions.borrow().get(&id).copied().unwrap_or(0.0);
                *restoring.borrow_mut() = true;
                restore(target, 0, restoring.clone());
            }
        }
    });
}

/// Scrolls to `y` once the page is tall enough, trying each frame for about two seconds.
fn restore(y: f64, tries: u32, restoring: Rc<RefCell<bool>>) {
    let w = window();
    let tall_enough = w
        .document()
        .and_then(|d| d.document_element())
        .map(|e| f64::from(e.scroll_height()) - w.inner_height().ok().and_then(|h| h.as_f64()).unwrap_or(0.0) >= y)
        .unwrap_or(true);
    if tall_enough || tries > 120 {
        w.scroll_to_with_x_and_y(0.0, y);
        *restoring.borrow_mut() = false;
        return;
    }
    let again = Closure::once_into_js(move || restore(y, tries + 1, restoring));
    let _ = w.request_animation_frame(again.unchecked_ref());
}

use wasm_bindgen::JsCast;
