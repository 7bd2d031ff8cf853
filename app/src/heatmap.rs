//! Masks in the page, drawn on canvases from their maps (the site stores each mask as its 7×7
//! map; the engine's own upsampling and JET colour map draw it): a heat layer (red = high,
//! transparent where the mask is low, so the image shows through) or the gray soft mask.

use std::rc::Rc;

use leptos::prelude::*;
use salient_engine::colormap::jet;
use salient_engine::nam::to_gray;
use salient_engine::site::MaskMap;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

/// The side masks are drawn at.
const SIDE: usize = 224;

/// How a mask is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// JET colours over the image, alpha rising with the mask.
    Heat,
    /// The soft mask itself, in gray levels (white = 1).
    Gray,
}

/// A mask from the site (a base64 map) on a canvas.
#[component]
pub fn MaskCanvas(
    map: String,
    #[prop(into)] opacity: Signal<f64>,
    #[prop(default = Style::Heat)] style: Style,
) -> impl IntoView {
    let levels = MaskMap::decode(&map).map(|m| to_gray(&m.mask(SIDE)));
    match levels {
        Ok(levels) => {
            view! { <LevelsCanvas levels=Rc::new(levels) side=SIDE opacity=opacity style=style /> }.into_any()
        }
        Err(e) => view! { <span class="error">{e}</span> }.into_any(),
    }
}

/// Gray levels (`side × side`) on a canvas.
#[component]
pub fn LevelsCanvas(
    levels: Rc<Vec<u8>>,
    side: usize,
    #[prop(into)] opacity: Signal<f64>,
    style: Style,
    #[prop(optional)] id: &'static str,
) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        if let Some(c) = canvas.get() {
            let rgba = match style {
                Style::Heat => heat_rgba(&levels),
                Style::Gray => levels.iter().flat_map(|&v| [v, v, v, 255]).collect(),
            };
            draw(&c, &rgba, side);
        }
    });
    let class = if style == Style::Heat { "heat" } else { "thumb mask" };
    view! {
        <canvas node_ref=canvas id=(!id.is_empty()).then_some(id) width=side.to_string() height=side.to_string() class=class
            aria-hidden="true" style:opacity=move || opacity.get().to_string()></canvas>
    }
}

/// An RGB image (`side × side`, from the worker) on a canvas.
#[component]
pub fn RgbCanvas(rgb: Rc<Vec<u8>>, side: usize, label: String) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        if let Some(c) = canvas.get() {
            let rgba: Vec<u8> = rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
            draw(&c, &rgba, side);
        }
    });
    view! { <canvas node_ref=canvas class="thumb" width=side.to_string() height=side.to_string() role="img" aria-label=label></canvas> }
}

fn draw(canvas: &HtmlCanvasElement, rgba: &[u8], side: usize) {
    let Ok(Some(ctx)) = canvas.get_context("2d") else { return };
    let ctx: CanvasRenderingContext2d = ctx.unchecked_into();
    if let Ok(data) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), side as u32, side as u32) {
        let _ = ctx.put_image_data(&data, 0.0, 0.0);
    }
}

/// JET colours with alpha rising with the mask, so that low activation leaves the image visible.
pub fn heat_rgba(mask: &[u8]) -> Vec<u8> {
    mask.iter()
        .flat_map(|&v| {
            let [r, g, b] = jet(v);
            [r, g, b, (64 + u16::from(v) * 191 / 255) as u8]
        })
        .collect()
}

/// The legend of the heat colours: what blue and red mean.
#[component]
pub fn ColourBar() -> impl IntoView {
    let stops: Vec<String> = (0..=8)
        .map(|i| {
            let [r, g, b] = jet((i * 255 / 8) as u8);
            format!("rgb({r},{g},{b}) {}%", i * 100 / 8)
        })
        .collect();
    view! {
        <figure class="colour-bar">
            <div class="bar" role="img" aria-label="Colour scale: blue where the feature is silent, red where it is at its peak"
                style:background=format!("linear-gradient(to right, {})", stops.join(", "))></div>
            <figcaption><span>"0 · feature silent"</span><span>"0.5"</span><span>"1 · its peak on the image"</span></figcaption>
        </figure>
    }
}

/// A blob URL for bytes of the given type. The caller revokes it ([`revoke`]).
pub fn blob_url(bytes: &[u8], mime: &str) -> Result<String, String> {
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|_| "cannot make a blob".to_string())?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| "cannot make a blob URL".to_string())
}

pub fn revoke(url: &str) {
    let _ = web_sys::Url::revoke_object_url(url);
}
