//! Upload an image: the engine worker runs the model and sends back the predicted class, the
//! neural features behind it and the masks; the page shows them with the site's core/spurious
//! labels, links each feature to its page, and says what the model knows.

use std::rc::Rc;
use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use salient_engine::annotations::Label;
use salient_engine::decode::MAX_FILE_BYTES;
use salient_engine::site::{Analysis, ClassLabels, FromWorker, SiteIndex, SiteModel, ToWorker};
use serde::Serialize;
use wasm_bindgen_futures::JsFuture;
use web_sys::Worker;

use crate::heatmap::{ColourBar, LevelsCanvas, RgbCanvas, Style};
use crate::route::Route;
use crate::worker;

/// The sample photos shipped with the app (public/samples/).
const SAMPLES: [(&str, &str); 4] = [
    ("chelsea.jpg", "a cat"),
    ("coffee.jpg", "a cup of coffee"),
    ("rocket.jpg", "a rocket"),
    ("astronaut.jpg", "an astronaut"),
];

/// Below this top-class probability the page warns that the image may show none of the classes.
const UNSURE: f32 = 0.5;

/// Where the model is, shared by every visit to the upload page.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Idle,
    Starting,
    Loading { done: u64, total: u64 },
    Ready { backend: String, from_cache: bool, load_ms: f64, description: String },
    Failed(String),
    NoModel,
}

/// The worker, its status and the latest analysis.
#[derive(Clone, Copy)]
pub struct ModelHandle {
    pub status: RwSignal<Status>,
    worker: StoredValue<Option<Worker>, LocalStorage>,
    /// An upload waiting for the model: (name, bytes).
    pending: StoredValue<Option<(String, js_sys::Uint8Array)>, LocalStorage>,
    labels: StoredValue<ClassLabels>,
    result: RwSignal<Option<Result<Arc<Analysis>, String>>>,
    busy: RwSignal<bool>,
    started_at: StoredValue<f64>,
}

fn now() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

impl ModelHandle {
    pub fn new() -> Self {
        ModelHandle {
            status: RwSignal::new(Status::Idle),
            worker: StoredValue::new_local(None),
            pending: StoredValue::new_local(None),
            labels: StoredValue::new(Vec::new()),
            result: RwSignal::new(None),
            busy: RwSignal::new(false),
            started_at: StoredValue::new(0.0),
        }
    }

    /// Starts the worker and the model's loading, once.
    fn ensure_loading(self, site: &SiteIndex) {
        if self.status.get_untracked() != Status::Idle {
            return;
        }
        let Some(model) = site.model.clone() else {
            self.status.set(Status::NoModel);
            return;
        };
        self.labels.set_value(site.classes.iter().map(|c| (c.class, c.core.clone(), c.spurious.clone())).collect());
        self.status.set(Status::Starting);
        let backend = backend_from_url();
        match worker::start(move |m| self.on_message(m, &model, &backend)) {
            Ok(w) => self.worker.set_value(Some(w)),
            Err(e) => self.status.set(Status::Failed(e)),
        }
    }

    fn on_message(self, message: FromWorker, model: &SiteModel, backend: &str) {
        match message {
            FromWorker::Ready => self.with_worker(|w| {
                worker::send(w, &ToWorker::Load { model: model.clone(), backend: backend.into() }, None)
            }),
            FromWorker::Progress { done, total } => self.status.set(Status::Loading { done, total }),
            FromWorker::Loaded { backend, from_cache, load_ms, description } => {
                self.status.set(Status::Ready { backend, from_cache, load_ms, description });
                if let Some((name, bytes)) = self.pending.try_update_value(Option::take).flatten() {
                    self.post(name, bytes);
                }
            }
            FromWorker::Failed(e) => {
                self.status.set(Status::Failed(e.clone()));
                if self.busy.get_untracked() {
                    self.finish(Err(format!("the model could not be loaded: {e}")));
                }
            }
            FromWorker::Analysed(a) => self.finish(Ok(Arc::new(a))),
            FromWorker::AnalysisFailed(e) => self.finish(Err(e)),
        }
    }

    fn with_worker(self, f: impl FnOnce(&Worker)) {
        self.worker.with_value(|w| {
            if let Some(w) = w {
                f(w)
            }
        });
    }

    fn post(self, name: String, bytes: js_sys::Uint8Array) {
        let labels = self.labels.get_value();
        self.with_worker(|w| worker::send(w, &ToWorker::Analyse { name, labels }, Some(bytes)));
    }

    /// A new upload begins: the previous result or error goes away.
    fn begin(self) {
        self.result.set(None);
        self.busy.set(true);
    }

    /// Analyses a file: now if the model is ready, else once it is.
    fn analyse(self, name: String, bytes: js_sys::Uint8Array) {
        self.busy.set(true);
        self.started_at.set_value(now());
        match self.status.get_untracked() {
            Status::Ready { .. } => self.post(name, bytes),
            Status::Failed(e) => self.finish(Err(format!("the model could not be loaded: {e}"))),
            Status::NoModel => self.finish(Err("this site has no model to analyse images with".into())),
            _ => self.pending.set_value(Some((name, bytes))),
        }
    }

    fn finish(self, result: Result<Arc<Analysis>, String>) {
        if let Ok(a) = &result {
            publish_for_tests(a, now() - self.started_at.get_value());
        }
        self.result.set(Some(result));
        self.busy.set(false);
    }
}

/// `?backend=cpu` or `?backend=webgpu` in the page URL forces a backend.
fn backend_from_url() -> String {
    let search = window().location().search().unwrap_or_default();
    if search.contains("backend=cpu") {
        "cpu".into()
    } else if search.contains("backend=webgpu") {
        "webgpu".into()
    } else {
        "auto".into()
    }
}

/// What the browser tests read from `window.salientLastResult`.
#[derive(Serialize)]
struct TestResult<'a> {
    backend: &'a str,
    top5: Vec<usize>,
    top_features: Vec<usize>,
    top_mask: &'a [u8],
    core_mask: Option<&'a [u8]>,
    spurious_mask: Option<&'a [u8]>,
    upload_to_heatmap_ms: f64,
}

fn publish_for_tests(a: &Analysis, ms: f64) {
    let test = TestResult {
        backend: &a.backend,
        top5: a.top5.iter().map(|t| t.0).collect(),
        top_features: a.features.iter().map(|f| f.0).collect(),
        top_mask: &a.top_mask,
        core_mask: a.core_mask.as_deref(),
        spurious_mask: a.spurious_mask.as_deref(),
        upload_to_heatmap_ms: ms,
    };
    let json = serde_json::to_string(&test).unwrap_or_default();
    let _ = js_sys::Reflect::set(&window(), &"salientLastResult".into(), &json.into());
}

/// Reads a file and hands it to the worker.
fn read_and_analyse(handle: ModelHandle, file: web_sys::File) {
    handle.begin();
    let name = file.name();
    if file.size() > MAX_FILE_BYTES as f64 {
        handle.finish(Err(format!(
            "{name}: the file is {:.0} MB, over the {} MB limit",
            file.size() / 1e6,
            MAX_FILE_BYTES >> 20
        )));
        return;
    }
    spawn_local(async move {
        match JsFuture::from(file.array_buffer()).await {
            Ok(buffer) => handle.analyse(name, js_sys::Uint8Array::new(&buffer)),
            Err(_) => handle.finish(Err(format!("{name}: the file could not be read"))),
        }
    });
}

/// Fetches a sample photo of the app and analyses it.
fn analyse_sample(handle: ModelHandle, file: &'static str) {
    handle.begin();
    spawn_local(async move {
        let fetched = async {
            let r = gloo_net::http::Request::get(&format!("samples/{file}")).send().await.map_err(|e| e.to_string())?;
            if !r.ok() {
                return Err(format!("HTTP {}", r.status()));
            }
            r.binary().await.map_err(|e| e.to_string())
        };
        match fetched.await {
            Ok(bytes) => handle.analyse(file.to_owned(), js_sys::Uint8Array::from(&bytes[..])),
            Err(e) => handle.finish(Err(format!("samples/{file}: {e}"))),
        }
    });
}

#[component]
pub fn Upload(site: Arc<SiteIndex>) -> impl IntoView {
    let handle = expect_context::<ModelHandle>();
    handle.ensure_loading(&site);
    let status_view = move || {
        match handle.status.get() {
        Status::Idle | Status::Starting => view! { <div class="status loading">"Starting the engine…"</div> }.into_any(),
        Status::Loading { done, total } => view! {
            <div class="status loading">
                <span>{format!("Loading the model: {:.1} of {:.1} MB", done as f64 / 1e6, total as f64 / 1e6)}</span>
                <progress max=total.to_string() value=done.to_string() aria-label="Model download"></progress>
            </div>
        }
        .into_any(),
        Status::Ready { backend, from_cache, load_ms, description } => view! {
            <div class="status ready">
                <span class="badge backend" data-backend=backend.clone()>{backend.clone()}</span>
                {format!(" {description}, ready in {:.1} s{}", load_ms / 1000.0, if from_cache { " (from the browser's cache)" } else { "" })}
            </div>
        }
        .into_any(),
        Status::Failed(e) => view! { <div class="status error">{format!("The model could not be loaded: {e}")}</div> }.into_any(),
        Status::NoModel => view! {
            <div class="status error">"This site has no model: rebuild it with `salient site --weights …` to analyse your own images."</div>
        }
        .into_any(),
    }
    };
    let knows = site.model.as_ref().map(|m| {
        if m.classes == 1000 {
            format!(
                "The model ({}) knows ImageNet's 1000 classes. A photo of something else still gets one of them.",
                m.description
            )
        } else {
            format!(
                "The model ({}) knows only {} classes{}: whatever the photo shows, it answers with one of them.",
                m.description,
                m.classes,
                if site.classes.len() <= 20 {
                    format!(" ({})", site.classes.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(", "))
                } else {
                    String::new()
                }
            )
        }
    });
    let site_results = site.clone();
    view! {
        <section class="page">
            <div class="page-head">
                <h1>"Analyse an image"</h1>
                <p class="lead">"The model runs in your browser, in the background; the image never leaves your computer."</p>
                {knows.map(|k| view! { <p class="note">{k}</p> })}
            </div>
            <div role="status" aria-live="polite">{status_view}</div>
            <div class="dropzone" class:busy=move || handle.busy.get()
                on:dragover=|ev| ev.prevent_default()
                on:drop=move |ev: web_sys::DragEvent| {
                    ev.prevent_default();
                    if let Some(f) = ev.data_transfer().and_then(|d| d.files()).and_then(|l| l.get(0)) {
                        read_and_analyse(handle, f);
                    }
                }>
                <label for="upload">"Choose a JPEG, PNG or WebP image, or drop one here"</label>
                <input id="upload" type="file" accept="image/jpeg,image/png,image/webp"
                    on:change:target=move |ev| {
                        if let Some(f) = ev.target().files().and_then(|l| l.get(0)) {
                            read_and_analyse(handle, f);
                        }
                    } />
                <p class="muted" aria-live="polite">{move || if handle.busy.get() { "Analysing…" } else { "" }}</p>
            </div>
            <div class="samples">
                <span class="muted">"Or try a sample: "</span>
                {SAMPLES.iter().map(|&(file, what)| view! {
                    <button type="button" class="sample" on:click=move |_| analyse_sample(handle, file)>
                        <img src=format!("samples/{file}") alt="" width="48" height="48" />{what}
                    </button>
                }).collect_view()}
            </div>
            {move || handle.result.get().map(|r| match r {
                Ok(a) => results(&site_results, &a).into_any(),
                Err(e) => view! { <p class="error" id="upload-error" role="alert">{e}</p> }.into_any(),
            })}
        </section>
    }
}

fn results(site: &SiteIndex, a: &Analysis) -> impl IntoView + use<> {
    let class = a.top5[0].0;
    let class_name = a.top5[0].1.clone();
    let site_class = site.classes.iter().find(|c| c.class == class).cloned();
    let label_of = |j: usize| {
        site_class.as_ref().and_then(|c| {
            if c.core.contains(&j) {
                Some(Label::Core)
            } else if c.spurious.contains(&j) {
                Some(Label::Spurious)
            } else {
                None
            }
        })
    };
    let badge = |l: Option<Label>| match l {
        Some(Label::Core) => {
            view! { <span class="badge core" title=format!("Label from {}", site.labels.file)>"core"</span> }.into_any()
        }
        Some(Label::Spurious) => {
            view! { <span class="badge spurious" title=format!("Label from {}", site.labels.file)>"spurious"</span> }
                .into_any()
        }
        None => view! { <span class="badge">"unlabelled"</span> }.into_any(),
    };
    let view_rgb = Rc::new(a.view.clone());
    let side = a.side;
    let panel = |levels: &[u8], id: &'static str, caption: String| {
        let view_rgb = view_rgb.clone();
        view! {
            <figure>
                <div class="stack">
                    <RgbCanvas rgb=view_rgb side=side label="The view the model sees".into() />
                    <LevelsCanvas levels=Rc::new(levels.to_vec()) side=side opacity=0.75 style=Style::Heat id=id />
                </div>
                <figcaption>{caption}</figcaption>
            </figure>
        }
    };
    let top_p = a.top5[0].2;
    view! {
        <div class="results" id="results">
            {(top_p < UNSURE).then(|| view! {
                <p class="note warn" role="note">{format!(
                    "The model is unsure ({:.0}% for its top class): the image may show none of the classes it knows, so read the heatmaps with care.",
                    top_p * 100.0
                )}</p>
            })}
            <div class="panels">
                <figure><RgbCanvas rgb=view_rgb.clone() side=side label="The view the model sees".into() /><figcaption>"The view the model sees (224×224)"</figcaption></figure>
                {a.core_mask.as_ref().map(|m| panel(m, "core-heatmap", format!("Core features of \"{class_name}\": where the model sees the object")))}
                {a.spurious_mask.as_ref().map(|m| panel(m, "spurious-heatmap", format!("Spurious features of \"{class_name}\": what merely co-occurs")))}
                {panel(&a.top_mask, "top-heatmap", "The five features behind the prediction".into())}
            </div>
            <ColourBar />
            {site_class.is_none().then(|| view! {
                <p class="note">{format!("This dataset has no core/spurious labels for \"{class_name}\": only the features behind the prediction are shown.")}</p>
            })}
            <div class="columns">
                <div>
                    <h2>"Prediction"</h2>
                    <ol class="top5" id="top5">
                        {a.top5.iter().map(|(c, name, p)| view! {
                            <li data-class=c.to_string()>
                                <span class="name">{if *name == format!("class {c}") { name.clone() } else { format!("{name} ({c})") }}</span>
                                <span class="bar" aria-hidden="true"><span style:width=format!("{:.1}%", p * 100.0)></span></span>
                                <span class="prob">{format!("{:.1}%", p * 100.0)}</span>
                            </li>
                        }).collect_view()}
                    </ol>
                    <p class="muted">{format!("Analysed in {:.0} ms on the {}.", a.ms, a.backend)}</p>
                </div>
                <div>
                    <h2>{format!("Features behind \"{class_name}\"")}</h2>
                    <ul class="feature-list">
                        {a.features.iter().zip(&a.feature_masks).map(|(&(j, imp), mask)| {
                            let label = label_of(j);
                            let title = view! { <span>{format!("Feature {j}")}</span> };
                            view! {
                                <li>
                                    <div class="stack small">
                                        <RgbCanvas rgb=view_rgb.clone() side=side label=format!("Feature {j} on the image") />
                                        <LevelsCanvas levels=Rc::new(mask.clone()) side=side opacity=0.75 style=Style::Heat />
                                    </div>
                                    <div>
                                        <div class="card-title">
                                            {match label {
                                                Some(_) => view! { <a href=Route::Feature(class, j).href()>{title}</a> }.into_any(),
                                                None => title.into_any(),
                                            }}
                                            {badge(label)}
                                        </div>
                                        <div class="muted">{format!("r·w = {imp:.3}")}</div>
                                    </div>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </div>
            </div>
        </div>
    }
}
