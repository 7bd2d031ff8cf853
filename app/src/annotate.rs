//! Labelling (class, feature) pairs as the paper's annotators did, without MTurk: the top
//! images, their heatmaps and feature-attack images, the protocol's three questions, and an
//! export to Salient's annotation CSV.

use std::collections::BTreeMap;
use std::sync::Arc;

use leptos::prelude::*;
use salient_engine::annotations::{Annotations, Label, Pair, Votes};
use salient_engine::site::{ANNOTATE, AnnotateIndex, AnnotatePair, SiteIndex};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;

use crate::data;
use crate::heatmap::{ColourBar, MaskCanvas, blob_url};
use crate::route::Route;

const STORAGE_KEY: &str = "salient-annotations";

/// One person's answers for a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// `main_object`, `separate_object` or `background`.
    pub main: String,
    pub confidence: u8,
    pub reasons: String,
}

fn key(p: &AnnotatePair) -> String {
    format!("{}:{}", p.class, p.feature)
}

fn load_answers() -> BTreeMap<String, Answer> {
    window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn save_answers(a: &BTreeMap<String, Answer>) {
    if let Some(s) = window().local_storage().ok().flatten() {
        let _ = s.set_item(STORAGE_KEY, &serde_json::to_string(a).unwrap_or_default());
    }
}

/// The answers as Salient's CSV: one vote per pair (this annotator's).
fn export_csv(pairs: &[AnnotatePair], answers: &BTreeMap<String, Answer>) -> String {
    let pairs = pairs
        .iter()
        .filter_map(|p| {
            let a = answers.get(&key(p))?;
            let mut votes = Votes::default();
            match a.main.as_str() {
                "main_object" => votes.main_object = 1,
                "separate_object" => votes.separate_object = 1,
                _ => votes.background = 1,
            }
            let label = if a.main == "main_object" { Label::Core } else { Label::Spurious };
            Some(Pair {
                class: p.class,
                feature: p.feature,
                label,
                rank: Some(p.rank),
                votes: Some(votes),
                answers: Vec::new(),
            })
        })
        .collect();
    Annotations { pairs, ..Default::default() }.to_csv()
}

/// An image of a pair, or a blank of its size when the site ships no images.
fn view(src: Option<String>) -> impl IntoView {
    match src {
        Some(s) => view! { <img class="thumb" src=s alt="" /> }.into_any(),
        None => view! { <div class="thumb placeholder" aria-hidden="true"></div> }.into_any(),
    }
}

fn download(name: &str, text: &str) {
    let Ok(url) = blob_url(text.as_bytes(), "text/csv") else { return };
    let document = window().document().expect("a document");
    if let Ok(a) = document.create_element("a") {
        let a: web_sys::HtmlAnchorElement = a.unchecked_into();
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    // The click has started the download: the URL is no longer needed.
    let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(
        &wasm_bindgen::closure::Closure::once_into_js(move || crate::heatmap::revoke(&url)).unchecked_into(),
        1000,
    );
}

#[component]
pub fn Annotate(site: Arc<SiteIndex>, index: usize) -> impl IntoView {
    let _ = site;
    let pairs = LocalResource::new(|| data::json::<AnnotateIndex>(ANNOTATE));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match pairs.await {
                    Ok(p) if p.pairs.is_empty() => view! { <p class="error">"This site has no pairs to annotate."</p> }.into_any(),
                    Ok(p) => pair_page(Arc::new(p.pairs), index).into_any(),
                    Err(e) => view! { <p class="error">{format!("Cannot load the pairs: {e}")}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn pair_page(pairs: Arc<Vec<AnnotatePair>>, index: usize) -> impl IntoView {
    let k = index.min(pairs.len() - 1);
    let pair = pairs[k].clone();
    let answers = RwSignal::new(load_answers());
    let existing = answers.get_untracked().get(&key(&pair)).cloned();
    let (main, set_main) = signal(existing.as_ref().map(|a| a.main.clone()).unwrap_or_default());
    let (confidence, set_confidence) = signal(existing.as_ref().map_or(0, |a| a.confidence));
    let (reasons, set_reasons) = signal(existing.map(|a| a.reasons).unwrap_or_default());
    let (problem, set_problem) = signal(String::new());
    let total = pairs.len();
    let save = {
        let pair = pair.clone();
        move |go_next: bool| {
            if main.get().is_empty() || confidence.get() == 0 || reasons.get().trim().is_empty() {
                set_problem.set("Answer all three questions (the reason too) before saving.".into());
                return;
            }
            answers.update(|a| {
                a.insert(key(&pair), Answer { main: main.get(), confidence: confidence.get(), reasons: reasons.get() });
                save_answers(a);
            });
            set_problem.set(String::new());
            if go_next && k + 1 < total {
                let _ = window().location().set_hash(&Route::Annotate(k + 1).href());
            }
        }
    };
    let export = {
        let pairs = pairs.clone();
        move |_| download("salient-labels.csv", &export_csv(&pairs, &answers.get()))
    };
    let radio = move |value: &'static str, text: &'static str| {
        view! {
            <label class="choice">
                <input type="radio" name="main" prop:checked=move || main.get() == value on:change=move |_| set_main.set(value.into()) />
                {text}
            </label>
        }
    };
    let done = move || answers.with(|a| pairs.iter().filter(|p| a.contains_key(&key(p))).count());
    let save_next = save.clone();
    view! {
        <section class="page">
            <div class="page-head">
                <h1>{format!("{} · feature {}", pair.name, pair.feature)}</h1>
                <p class="lead">
                    {format!("Pair {} of {total} · class {} ({}) · feature rank {}", k + 1, pair.class, pair.wnid, pair.rank)}
                    {move || format!(" · {} answered", done())}
                </p>
            </div>
            <div class="toolbar">
                {(k > 0).then(|| view! { <a class="button" href=Route::Annotate(k - 1).href()>"← previous pair"</a> })}
                {(k + 1 < total).then(|| view! { <a class="button" href=Route::Annotate(k + 1).href()>"next pair →"</a> })}
                <button class="primary" on:click=export>"Export labels (CSV)"</button>
            </div>
            <div class="annotate-rows">
                <h2>"Images where the feature fires most"</h2>
                <div class="row">{pair.images.iter().map(|i| view(i.view.clone())).collect_view()}</div>
                <h2>"Highlighted visual attributes (red: the feature is active)"</h2>
                <div class="row">{pair.images.iter().map(|i| match (&i.heatmap, &i.map) {
                    (Some(h), _) => view! { <img class="thumb" src=h.clone() alt="" /> }.into_any(),
                    (None, Some(m)) => view! { <div class="stack">{view(i.view.clone())}<MaskCanvas map=m.clone() opacity=0.7 /></div> }.into_any(),
                    (None, None) => view(i.view.clone()).into_any(),
                }).collect_view()}</div>
                <ColourBar />
                {pair.images.iter().any(|i| i.attack.is_some()).then(|| view! {
                    <h2>"Amplified visual attributes (feature attack)"</h2>
                    <div class="row">{pair.images.iter().filter_map(|i| i.attack.clone()).map(|a| view! { <img class="thumb" src=a alt="" /> }).collect_view()}</div>
                })}
            </div>
            <form class="questions" on:submit=move |ev| { ev.prevent_default(); save_next(true) }>
                <fieldset>
                    <legend>{format!("1. Where is the focus of the red region, for the class \"{}\"?", pair.name)}</legend>
                    {radio("main_object", "Some part of the main object")}
                    {radio("separate_object", "Some other object, not a part of the main object")}
                    {radio("background", "The background of the main object")}
                </fieldset>
                <fieldset>
                    <legend>"2. How confident are you?"</legend>
                    <div class="scale">
                        {(1..=5u8).map(|v| view! {
                            <label class="choice">
                                <input type="radio" name="confidence" prop:checked=move || confidence.get() == v on:change=move |_| set_confidence.set(v) />
                                {match v { 1 => "1 · not at all", 5 => "5 · completely", _ => ["", "", "2", "3", "4"][v as usize] }}
                            </label>
                        }).collect_view()}
                    </div>
                </fieldset>
                <fieldset>
                    <legend><label for="reasons">"3. Why? Describe what the highlighted region shows."</label></legend>
                    <textarea id="reasons" rows="3" prop:value=reasons on:input:target=move |ev| set_reasons.set(ev.target().value())></textarea>
                </fieldset>
                <p class="error">{problem}</p>
                <div class="toolbar">
                    <button type="submit" class="primary">"Save and go to the next pair"</button>
                    <button type="button" on:click=move |_| save(false)>"Save"</button>
                </div>
            </form>
        </section>
    }
}
