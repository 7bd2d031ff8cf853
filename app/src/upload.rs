//! Upload an image: the model runs in the browser and shows the predicted class, the neural
//! features behind it with their core/spurious labels, and core and spurious heatmaps.

use std::rc::Rc;
use std::sync::Arc;

use image::DynamicImage;
use leptos::prelude::*;
use leptos::task::spawn_local;
use salient_engine::annotations::Label;
use salient_engine::decode::{self, MAX_FILE_BYTES};
use salient_engine::importance::top_k;
use salient_engine::site::SiteIndex;
use salient_engine::{colormap, nam};
use serde::Serialize;
use wasm_bindgen_futures::JsFuture;

use crate::heatmap::png_url;
use crate::model::{self, Choice, Loaded};

/// Where the model is, shared by every visit to the upload page.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Idle,
    Loading { done: u64, total: u64 },
    Ready { backend: &'static str, from_cache: bool, load_ms: f64, description: String },
    Failed(String),
    NoModel,
}

/// The loaded model (not `Send`: it lives on the page's thread) and its status.
#[derive(Clone, Copy)]
pub struct ModelHandle {
    pub status: RwSignal<Status>,
    pub loaded: StoredValue<Option<Rc<Loaded>>, LocalStorage>,
}

impl ModelHandle {
    pub fn new() -> Self {
        ModelHandle { status: RwSignal::new(Status::Idle), loaded: StoredValue::new_local(None) }
    }

    /// Starts loading the site's model once.
    pub fn ensure_loading(self, site: &SiteIndex) {
        if self.status.get_untracked() != Status::Idle {
            return;
        }
        let Some(m) = site.model.clone() else {
            self.status.set(Status::NoModel);
            return;
        };
        self.status.set(Status::Loading { done: 0, total: m.bytes });
        spawn_local(async move {
            let progress = move |(done, total)| self.status.set(Status::Loading { done, total });
            match model::load(&m, Choice::from_url(), progress).await {
                Ok(l) => {
                    let status = Status::Ready { backend: l.backend, from_cache: l.from_cache, load_ms: l.load_ms, description: m.description.clone() };
                    self.loaded.set_value(Some(Rc::new(l)));
                    self.status.set(status);
                }
                Err(e) => self.status.set(Status::Failed(e)),
            }
        });
    }
}

/// What the page shows for one uploaded image (plain data and blob URLs).
#[derive(Clone, Debug, PartialEq)]
struct Shown {
    name: String,
    view: String,
    top5: Vec<(usize, String, f32)>,
    class: usize,
    class_name: String,
    known_class: bool,
    features: Vec<(usize, f32, Option<Label>, String)>,
    core: Option<String>,
    spurious: Option<String>,
    top: String,
    ms: f64,
}

/// What the browser tests read from `window.salientLastResult`.
#[derive(Serialize)]
struct TestResult {
    backend: &'static str,
    top5: Vec<usize>,
    top_features: Vec<usize>,
    core_features: Vec<usize>,
    spurious_features: Vec<usize>,
    top_mask: Vec<u8>,
    core_mask: Option<Vec<u8>>,
    spurious_mask: Option<Vec<u8>>,
    upload_to_heatmap_ms: f64,
}

#[component]
pub fn Upload(site: Arc<SiteIndex>) -> impl IntoView {
    let handle = expect_context::<ModelHandle>();
    handle.ensure_loading(&site);
    let (result, set_result) = signal::<Option<Result<Shown, String>>>(None);
    let (busy, set_busy) = signal(false);
    let on_file = {
        let site = site.clone();
        move |file: web_sys::File| {
            let site = site.clone();
            set_busy.set(true);
            spawn_local(async move {
                let shown = analyze(handle, &site, file).await;
                set_result.set(Some(shown));
                set_busy.set(false);
            });
        }
    };
    let on_file_input = on_file.clone();
    let status_view = move || match handle.status.get() {
        Status::Idle | Status::Loading { .. } => {
            let (done, total) = match handle.status.get() {
                Status::Loading { done, total } => (done, total),
                _ => (0, 1),
            };
            view! {
                <div class="status loading">
                    <span>{format!("Loading the model: {:.1} of {:.1} MB", done as f64 / 1e6, total as f64 / 1e6)}</span>
                    <progress max=total.to_string() value=done.to_string()></progress>
                </div>
            }
            .into_any()
        }
        Status::Ready { backend, from_cache, load_ms, description } => view! {
            <div class="status ready">
                <span class="badge backend" data-backend=backend>{backend}</span>
                {format!(" {description}, ready in {:.1} s{}", load_ms / 1000.0, if from_cache { " (from the browser's cache)" } else { "" })}
            </div>
        }
        .into_any(),
        Status::Failed(e) => view! { <div class="status error">{format!("The model could not be loaded: {e}")}</div> }.into_any(),
        Status::NoModel => view! {
            <div class="status error">"This site has no model: rebuild it with `salient site --weights …` to analyse your own images."</div>
        }
        .into_any(),
    };
    view! {
        <section class="page">
            <div class="page-head">
                <h1>"Analyse an image"</h1>
                <p class="lead">"The model runs in your browser; the image never leaves your computer."</p>
            </div>
            {status_view}
            <label
                class="dropzone"
                class:busy=busy
                on:dragover=|ev| ev.prevent_default()
                on:drop=move |ev: web_sys::DragEvent| {
                    ev.prevent_default();
                    if let Some(f) = ev.data_transfer().and_then(|d| d.files()).and_then(|l| l.get(0)) {
                        on_file(f);
                    }
                }
            >
                <input id="upload" type="file" accept="image/jpeg,image/png,image/webp"
                    on:change:target=move |ev| {
                        if let Some(f) = ev.target().files().and_then(|l| l.get(0)) {
                            on_file_input(f);
                        }
                    } />
                <span>{move || if busy.get() { "Analysing…" } else { "Drop a JPEG, PNG or WebP image here, or click to choose one" }}</span>
            </label>
            {move || result.get().map(|r| match r {
                Ok(s) => results(s).into_any(),
                Err(e) => view! { <p class="error" id="upload-error">{e}</p> }.into_any(),
            })}
        </section>
    }
}

fn results(s: Shown) -> impl IntoView {
    let label = |l: Option<Label>| match l {
        Some(Label::Core) => view! { <span class="badge core">"core"</span> }.into_any(),
        Some(Label::Spurious) => view! { <span class="badge spurious">"spurious"</span> }.into_any(),
        None => view! { <span class="badge">"unlabelled"</span> }.into_any(),
    };
    view! {
        <div class="results" id="results">
            <div class="panels">
                <figure><img src=s.view.clone() alt="" /><figcaption>{format!("{} (the view the model sees)", s.name)}</figcaption></figure>
                {s.core.clone().map(|u| view! { <figure><img id="core-heatmap" src=u alt="" /><figcaption>"Core features: where the object is"</figcaption></figure> })}
                {s.spurious.clone().map(|u| view! { <figure><img id="spurious-heatmap" src=u alt="" /><figcaption>"Spurious features: what merely co-occurs"</figcaption></figure> })}
                <figure><img id="top-heatmap" src=s.top.clone() alt="" /><figcaption>"The five features behind the prediction"</figcaption></figure>
            </div>
            {(!s.known_class).then(|| view! {
                <p class="note">{format!("This dataset has no core/spurious labels for \"{}\": only the features behind the prediction are shown.", s.class_name)}</p>
            })}
            <div class="columns">
                <div>
                    <h2>"Prediction"</h2>
                    <ol class="top5" id="top5">
                        {s.top5.iter().map(|(c, name, p)| view! {
                            <li data-class=c.to_string()>
                                <span class="name">{if *name == format!("class {c}") { name.clone() } else { format!("{name} ({c})") }}</span>
                                <span class="bar"><span style:width=format!("{:.1}%", p * 100.0)></span></span>
                                <span class="prob">{format!("{:.1}%", p * 100.0)}</span>
                            </li>
                        }).collect_view()}
                    </ol>
                    <p class="muted">{format!("Analysed in {:.0} ms.", s.ms)}</p>
                </div>
                <div>
                    <h2>{format!("Features behind \"{}\"", s.class_name)}</h2>
                    <ul class="feature-list">
                        {s.features.iter().map(|(j, imp, l, url)| view! {
                            <li>
                                <img src=url.clone() alt="" />
                                <div><div class="card-title">{format!("Feature {j}")}{label(*l)}</div>
                                <div class="muted">{format!("r·w = {imp:.3}")}</div></div>
                            </li>
                        }).collect_view()}
                    </ul>
                </div>
            </div>
        </div>
    }
}

async fn analyze(handle: ModelHandle, site: &SiteIndex, file: web_sys::File) -> Result<Shown, String> {
    let t0 = model::now();
    let name = file.name();
    if file.size() > MAX_FILE_BYTES as f64 {
        return Err(format!("{name}: the file is {:.0} MB, over the {} MB limit", file.size() / 1e6, MAX_FILE_BYTES >> 20));
    }
    let buffer = JsFuture::from(file.array_buffer()).await.map_err(|_| format!("{name}: the file could not be read"))?;
    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    let img = decode::decode_image(&name, &bytes).map_err(|e| e.to_string())?;
    // Wait for the model if it is still loading.
    let loaded = loop {
        if let Some(l) = handle.loaded.get_value() {
            break l;
        }
        match handle.status.get_untracked() {
            Status::Failed(e) => return Err(format!("the model could not be loaded: {e}")),
            Status::NoModel => return Err("this site has no model to analyse images with".into()),
            _ => gloo_timer(100).await,
        }
    };
    let view = loaded.engine.view.apply(&img);
    let out = loaded.engine.infer_async(std::slice::from_ref(&view), true).await.map_err(|e| e.to_string())?.remove(0);
    let maps = out.maps.as_ref().ok_or("no activation maps")?;
    let engine = &loaded.engine;
    let top5: Vec<(usize, String, f32)> = out.top(5).into_iter().map(|(c, p)| (c, engine.class_name(c), p)).collect();
    let class = top5[0].0;
    let scores: Vec<f32> = out.features.iter().zip(engine.class_weights(class)).map(|(r, w)| r * w).collect();
    let top: Vec<(usize, f32)> = top_k(&scores, 5);
    let site_class = site.classes.iter().find(|c| c.class == class);
    let label_of = |j: usize| {
        site_class.and_then(|c| if c.core.contains(&j) { Some(Label::Core) } else if c.spurious.contains(&j) { Some(Label::Spurious) } else { None })
    };
    let side = engine.view.side();
    let overlay = |features: &[usize]| -> Result<(String, Vec<u8>), String> {
        let mask = maps.soft_mask(features, side);
        Ok((png_url(&DynamicImage::ImageRgb8(colormap::overlay(&view, &mask)))?, nam::to_gray(&mask)))
    };
    let top_features: Vec<usize> = top.iter().map(|(j, _)| *j).collect();
    let (top_url, top_mask) = overlay(&top_features)?;
    let (core_features, spurious_features) = site_class.map_or((vec![], vec![]), |c| (c.core.clone(), c.spurious.clone()));
    let core = (!core_features.is_empty()).then(|| overlay(&core_features)).transpose()?;
    let spurious = (!spurious_features.is_empty()).then(|| overlay(&spurious_features)).transpose()?;
    let features = top
        .iter()
        .map(|&(j, imp)| Ok((j, imp, label_of(j), overlay(&[j])?.0)))
        .collect::<Result<Vec<_>, String>>()?;
    let ms = model::now() - t0;
    let test = TestResult {
        backend: loaded.backend,
        top5: top5.iter().map(|t| t.0).collect(),
        top_features: top_features.clone(),
        core_features: core_features.clone(),
        spurious_features: spurious_features.clone(),
        top_mask,
        core_mask: core.as_ref().map(|c| c.1.clone()),
        spurious_mask: spurious.as_ref().map(|s| s.1.clone()),
        upload_to_heatmap_ms: ms,
    };
    let json = serde_json::to_string(&test).unwrap_or_default();
    let _ = js_sys::Reflect::set(&window(), &"salientLastResult".into(), &json.into());
    Ok(Shown {
        name,
        view: png_url(&DynamicImage::ImageRgb8(view.clone()))?,
        class,
        class_name: engine.class_name(class),
        known_class: site_class.is_some(),
        top5,
        features,
        core: core.map(|c| c.0),
        spurious: spurious.map(|s| s.0),
        top: top_url,
        ms,
    })
}

/// Waits `ms` milliseconds without blocking the page.
async fn gloo_timer(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}
