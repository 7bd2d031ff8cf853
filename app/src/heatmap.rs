//! Masks and heatmaps in the page: a soft mask drawn as a JET heat layer on a canvas (red =
//! high), with the engine's own colour map; and images made in wasm shown through blob URLs.

use image::{DynamicImage, ImageFormat};
use leptos::prelude::*;
use leptos::task::spawn_local;
use salient_engine::colormap::jet;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

use crate::data;

/// A mask PNG drawn as a heat layer. Transparent where the mask is 0 so the image shows through.
#[component]
pub fn MaskCanvas(mask: String, #[prop(into)] opacity: Signal<f64>) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        if let Some(c) = canvas.get() {
            let url = mask.clone();
            spawn_local(async move {
                if let Err(e) = draw(&c, &url).await {
                    leptos::logging::warn!("{url}: {e}");
                }
            });
        }
    });
    view! {
        <canvas node_ref=canvas width="224" height="224" class="heat" style:opacity=move || opacity.get().to_string()></canvas>
    }
}

async fn draw(canvas: &HtmlCanvasElement, url: &str) -> Result<(), String> {
    let bytes = data::bytes(url).await?;
    let gray = image::load_from_memory_with_format(&bytes, ImageFormat::Png).map_err(|e| e.to_string())?.to_luma8();
    let (w, h) = gray.dimensions();
    let rgba = heat_rgba(gray.as_raw());
    canvas.set_width(w);
    canvas.set_height(h);
    let ctx: CanvasRenderingContext2d = canvas
        .get_context("2d")
        .map_err(|_| "no 2d context".to_string())?
        .ok_or("no 2d context")?
        .unchecked_into();
    let data = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), w, h).map_err(|_| "bad image data".to_string())?;
    ctx.put_image_data(&data, 0.0, 0.0).map_err(|_| "cannot draw".to_string())
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

/// A blob URL for an image made in wasm (PNG).
pub fn png_url(img: &DynamicImage) -> Result<String, String> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png).map_err(|e| e.to_string())?;
    blob_url(&bytes, "image/png")
}

/// A blob URL for bytes of the given type.
pub fn blob_url(bytes: &[u8], mime: &str) -> Result<String, String> {
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(|_| "cannot make a blob".to_string())?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| "cannot make a blob URL".to_string())
}
