//! The images under the masks: the site's thumbnails, or — in a masks-only site, whose images
//! may not be redistributed — the visitor's own copy, from a folder they pick (read locally,
//! never uploaded) or a URL base they host, cropped in the page to the view the masks were made
//! on (torchvision's `Resize` then `CenterCrop`, from the engine's own arithmetic).

use std::collections::HashMap;
use std::sync::Arc;

use leptos::prelude::*;
use salient_engine::preprocess::{View, crop_origin, resized_size};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{CanvasRenderingContext2d, HtmlImageElement};

const BASE_KEY: &str = "salient-image-base";

/// The visitor's images: files by name (from a picked folder) and a URL base.
#[derive(Clone, Copy)]
pub struct LocalImages {
    files: StoredValue<HashMap<String, web_sys::File>, LocalStorage>,
    count: RwSignal<usize>,
    base: RwSignal<Option<String>>,
}

impl LocalImages {
    pub fn new() -> Self {
        let base = window()
            .local_storage()
            .ok()
            .flatten()
            .and_then(|s| s.get_item(BASE_KEY).ok().flatten())
            .filter(|b| !b.is_empty());
        LocalImages {
            files: StoredValue::new_local(HashMap::new()),
            count: RwSignal::new(0),
            base: RwSignal::new(base),
        }
    }

    fn set_files(self, list: &web_sys::FileList) {
        let mut map = HashMap::new();
        for i in 0..list.length() {
            if let Some(f) = list.get(i) {
                map.insert(f.name(), f);
            }
        }
        self.count.set(map.len());
        self.files.set_value(map);
    }

    fn set_base(self, base: String) {
        let base = base.trim().trim_end_matches('/').to_owned();
        if let Some(s) = window().local_storage().ok().flatten() {
            let _ = s.set_item(BASE_KEY, &base);
        }
        self.base.set((!base.is_empty()).then_some(base));
    }

    /// Where the image at `source` (`<wnid>/<name>.JPEG`) is: a blob URL of a picked file (to
    /// be revoked by the caller), else a URL under the base.
    fn locate(self, source: &str) -> Option<(String, bool)> {
        self.count.track();
        let name = source.rsplit('/').next().unwrap_or(source);
        if let Some(f) = self.files.with_value(|m| m.get(name).cloned()) {
            return web_sys::Url::create_object_url_with_blob(&f).ok().map(|u| (u, true));
        }
        self.base.get().map(|b| (format!("{b}/{source}"), false))
    }
}

/// Where a masks-only site's visitor says their images are.
#[component]
pub fn ImageSourcePicker() -> impl IntoView {
    let images = expect_context::<LocalImages>();
    let (base, set_base) = signal(images.base.get_untracked().unwrap_or_default());
    // Folder selection (`webkitdirectory`, every current browser) has no typed attribute.
    let folder = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = folder.get() {
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });
    view! {
        <details class="picker" open=move || images.count.get() == 0 && images.base.get().is_none()>
            <summary>"Show the images: this site holds the masks only"</summary>
            <p class="muted">"ImageNet's terms do not allow its images to be published, so this site draws each mask over your own copy. Nothing leaves your computer."</p>
            <div class="picker-row">
                <label class="button" for="image-folder">"Choose your ImageNet folder…"</label>
                <input id="image-folder" class="visually-hidden" type="file" multiple=true node_ref=folder
                    on:change:target=move |ev| if let Some(list) = ev.target().files() { images.set_files(&list) } />
                <span class="muted" role="status">{move || match images.count.get() { 0 => String::new(), n => format!("{n} files chosen") }}</span>
            </div>
            <form class="picker-row" on:submit=move |ev| { ev.prevent_default(); images.set_base(base.get()) }>
                <label for="image-base">"or a URL where the images are, as " <code>"<base>/<wnid>/<name>.JPEG"</code></label>
                <input id="image-base" type="url" placeholder="https://example.org/imagenet/train" prop:value=base
                    on:input:target=move |ev| set_base.set(ev.target().value()) />
                <button type="submit">"Use"</button>
            </form>
        </details>
    }
}

/// One image of the dataset at the masks' view: the site's thumbnail, or the visitor's copy
/// cropped in the page, or a placeholder saying where to get it.
#[component]
pub fn DatasetImage(
    thumb: Option<String>,
    source: String,
    view_text: Arc<str>,
    #[prop(optional)] big: bool,
) -> impl IntoView {
    if let Some(t) = thumb {
        return view! { <img class="thumb" src=t alt="" loading="lazy" decoding="async" /> }.into_any();
    }
    let images = expect_context::<LocalImages>();
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let view = View::from_text(&view_text).unwrap_or(View::IMAGENET);
    let side = if big { view.crop * 2 } else { view.crop };
    let found = Memo::new(move |_| images.locate(&source));
    // The blob URL of a picked file, revoked when it is replaced or the image goes away.
    let blob_url = StoredValue::new(None::<String>);
    on_cleanup(move || {
        if let Some(u) = blob_url.try_get_value().flatten() {
            crate::heatmap::revoke(&u);
        }
    });
    Effect::new(move |_| {
        if let Some(old) = blob_url.get_value() {
            crate::heatmap::revoke(&old);
        }
        blob_url.set_value(None);
        let (Some(c), Some((url, blob))) = (canvas.get(), found.get()) else { return };
        let Ok(img) = HtmlImageElement::new() else { return };
        img.set_cross_origin(if blob { None } else { Some("anonymous") });
        let drawn = img.clone();
        let onload = Closure::once_into_js(move || {
            let (w, h) = (drawn.natural_width(), drawn.natural_height());
            if w == 0 || h == 0 {
                return;
            }
            // The crop of the resized image, in the original's pixels.
            let (rw, rh) = resized_size(w, h, view.resize);
            let (x, y) = crop_origin(rw, rh, view.crop);
            let scale = f64::from(w) / f64::from(rw);
            let Ok(Some(ctx)) = c.get_context("2d") else { return };
            let ctx: CanvasRenderingContext2d = ctx.unchecked_into();
            let s = f64::from(side);
            let _ = ctx.draw_image_with_html_image_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
                &drawn,
                f64::from(x) * scale,
                f64::from(y) * scale,
                f64::from(view.crop) * scale,
                f64::from(view.crop) * scale,
                0.0,
                0.0,
                s,
                s,
            );
        });
        img.set_onload(Some(onload.unchecked_ref()));
        img.set_src(&url);
        if blob {
            blob_url.set_value(Some(url));
        }
    });
    view! {
        <div class="thumb placeholder" class:found=move || found.with(Option::is_some)>
            <canvas node_ref=canvas width=side.to_string() height=side.to_string() aria-hidden="true"></canvas>
            <span class="hint" aria-hidden="true">{move || found.with(Option::is_none).then_some("image not shipped")}</span>
        </div>
    }
    .into_any()
}
