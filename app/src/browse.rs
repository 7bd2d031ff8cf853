//! Browsing a dataset: the class list, a class's features, a feature's images with their masks.

use std::rc::Rc;
use std::sync::Arc;

use leptos::prelude::*;
use salient_engine::annotations::{Label, Votes};
use salient_engine::site::{ClassPage, FeaturePage, LabelSource, SiteImage, SiteIndex, thumb_path};

use crate::data;
use crate::heatmap::{ColourBar, MaskCanvas, Style};
use crate::images::{DatasetImage, ImageSourcePicker};
use crate::route::Route;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    Index,
    Name,
    Spurious,
}

#[component]
pub fn ClassList(site: Arc<SiteIndex>) -> impl IntoView {
    let (query, set_query) = signal(String::new());
    let (only_spurious, set_only_spurious) = signal(false);
    let (sort, set_sort) = signal(Sort::Index);
    let shown = {
        let site = site.clone();
        move || {
            let q = query.get().to_lowercase();
            let mut list: Vec<_> = site
                .classes
                .iter()
                .filter(|c| {
                    q.is_empty()
                        || c.name.to_lowercase().contains(&q)
                        || c.wnid.contains(&q)
                        || c.class.to_string() == q
                })
                .filter(|c| !only_spurious.get() || !c.spurious.is_empty())
                .cloned()
                .collect();
            match sort.get() {
                Sort::Index => list.sort_by_key(|c| c.class),
                Sort::Name => list.sort_by_key(|c| c.name.to_lowercase()),
                Sort::Spurious => list.sort_by_key(|c| (std::cmp::Reverse(c.spurious.len()), c.class)),
            }
            list
        }
    };
    let count = {
        let shown = shown.clone();
        move || shown().len()
    };
    let total = site.classes.len();
    let with_spurious = site.classes.iter().filter(|c| !c.spurious.is_empty()).count();
    let provenance = format!("Labels: {} ({})", site.labels.description, site.labels.file);
    view! {
        <section class="page">
            <div class="page-head">
                <h1>"Classes"</h1>
                <p class="lead">
                    {format!("{total} classes, {with_spurious} with at least one spurious feature, {} masks over {} images.", site.masks, site.images)}
                </p>
                <p class="muted">{provenance}</p>
            </div>
            {(!site.thumbs).then(|| view! { <ImageSourcePicker /> })}
            <div class="toolbar" role="search">
                <label class="visually-hidden" for="class-search">"Search classes"</label>
                <input id="class-search" class="search" type="search" placeholder="Search by name, WordNet id or index"
                    prop:value=query on:input:target=move |ev| set_query.set(ev.target().value()) />
                <label class="check">
                    <input type="checkbox" on:change:target=move |ev| set_only_spurious.set(ev.target().checked()) />
                    "Only classes with spurious features"
                </label>
                <label class="sort">
                    "Sort by "
                    <select on:change:target=move |ev| {
                        set_sort.set(match ev.target().value().as_str() {
                            "name" => Sort::Name,
                            "spurious" => Sort::Spurious,
                            _ => Sort::Index,
                        })
                    }>
                        <option value="index">"index"</option>
                        <option value="name">"name"</option>
                        <option value="spurious">"spurious features"</option>
                    </select>
                </label>
                <span class="muted" role="status" aria-live="polite">{move || format!("{} shown", count())}</span>
            </div>
            <ul class="class-grid">
                <For each=shown key=|c| c.class let:c>
                    <li class="card class-card">
                        <a href=Route::Class(c.class).href()>
                            {c.thumb.clone().map(|t| view! { <img class="thumb" src=t alt="" loading="lazy" decoding="async" /> })}
                            <div class="card-body">
                                <div class="card-title">{c.name.clone()}</div>
                                <div class="muted">{format!("{} · {}", c.class, c.wnid)}</div>
                                <div class="badges">
                                    <span class="badge core">{format!("{} core", c.core.len())}</span>
                                    <span class="badge spurious" class:zero=c.spurious.is_empty()>{format!("{} spurious", c.spurious.len())}</span>
                                </div>
                            </div>
                        </a>
                    </li>
                </For>
            </ul>
        </section>
    }
}

/// A label with where it comes from: the crowd's votes when known, the source in its title.
fn label_badge(label: Label, votes: Option<Votes>, source: &LabelSource) -> impl IntoView + use<> {
    let (class, text) = match label {
        Label::Core => ("badge core", "core"),
        Label::Spurious => ("badge spurious", "spurious"),
    };
    let (shown, title) = match votes {
        Some(v) => {
            let total = v.main_object + v.spurious();
            (
                format!(
                    "{text} · {} of {total} votes",
                    if label == Label::Spurious { v.spurious() } else { v.main_object }
                ),
                format!(
                    "{} main object, {} separate object, {} background ({})",
                    v.main_object, v.separate_object, v.background, source.file
                ),
            )
        }
        None => (text.to_owned(), format!("Label from {}", source.file)),
    };
    view! { <span class=class title=title>{shown}</span> }
}

/// Loads a class page, then shows `inner` with it.
fn with_class_page<V: IntoView + 'static>(
    class: usize,
    inner: impl Fn(Rc<ClassPage>) -> V + Send + Sync + 'static,
) -> impl IntoView {
    let page = LocalResource::new(move || data::class(class));
    let inner = Arc::new(inner);
    view! {
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || {
                let inner = inner.clone();
                Suspend::new(async move {
                    match page.await {
                        Ok(p) => inner(p).into_any(),
                        Err(e) => view! { <section class="page"><p class="error">{format!("Cannot load this class: {e}")}</p></section> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// The image's thumbnail, in a thumbnail site.
fn thumb(site: &SiteIndex, wnid: &str, i: &SiteImage) -> Option<String> {
    site.thumbs.then(|| thumb_path(wnid, &i.image))
}

/// The image of a site image with its mask as a heat layer.
fn overlay(site: &SiteIndex, wnid: &str, i: &SiteImage, opacity: Signal<f64>, big: bool) -> impl IntoView + use<> {
    view! {
        <div class="stack" class:big=big>
            <DatasetImage thumb=thumb(site, wnid, i) source=i.source(wnid) view_text=Arc::from(site.view.as_str()) big=big />
            <MaskCanvas map=i.map.clone() opacity=opacity />
        </div>
    }
}

#[component]
pub fn ClassView(site: Arc<SiteIndex>, class: usize) -> impl IntoView {
    with_class_page(class, move |page| {
        let site = site.clone();
        view! {
            <section class="page">
                <nav class="crumbs" aria-label="Breadcrumb"><a href="#/">"Classes"</a>" / "<span aria-current="page">{page.name.clone()}</span></nav>
                <div class="page-head">
                    <h1>{page.name.clone()}</h1>
                    <p class="lead">{format!("Class {} · {} · its top {} neural features, by importance", page.class, page.wnid, page.features.len())}</p>
                    {page.note.clone().map(|n| view! { <p class="truth-note">{n}</p> })}
                </div>
                {(!site.thumbs).then(|| view! { <ImageSourcePicker /> })}
                <ColourBar />
                <ul class="feature-grid">
                    {page.features.iter().map(|f| feature_card(&site, page.class, &page.wnid, f)).collect_view()}
                </ul>
            </section>
        }
    })
}

fn feature_card(site: &SiteIndex, class: usize, wnid: &str, f: &FeaturePage) -> impl IntoView + use<> {
    let first = f.images.first().map(|i| overlay(site, wnid, i, Signal::from(0.6), false));
    let badge = label_badge(f.label, f.votes, &site.labels);
    let (feature, rank, count) = (f.feature, f.rank, f.images.len());
    view! {
        <li class="card feature-card">
            <a href=Route::Feature(class, feature).href()>
                {first}
                <div class="card-body">
                    <div class="card-title">{format!("Feature {feature}")}{badge}</div>
                    <div class="muted">{format!("rank {rank} · {count} images")}</div>
                </div>
            </a>
        </li>
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ViewMode {
    Overlay,
    Image,
    Mask,
    SideBySide,
    /// The ground-truth regions (when the site has them).
    Truth,
}

/// Why the feature has its label: the crowd's answers, or the labels' source.
fn provenance(site: &SiteIndex, f: &FeaturePage) -> impl IntoView + use<> {
    let source = site.labels.clone();
    let answers = f.answers.clone();
    view! {
        <section class="provenance" aria-labelledby="why">
            <h2 id="why">"Why this label"</h2>
            <p class="muted">{format!("{} Source: {}.", source.description, source.file)}</p>
            {(!answers.is_empty()).then(|| view! {
                <div class="table-wrap" tabindex="0" role="region" aria-label="Each worker's answer">
                    <table>
                        <caption class="visually-hidden">"Each worker's answer"</caption>
                        <thead><tr><th scope="col">"Worker"</th><th scope="col">"Focus"</th><th scope="col">"Confidence"</th><th scope="col">"Reason"</th></tr></thead>
                        <tbody>
                            {answers.into_iter().map(|a| view! {
                                <tr>
                                    <td>{a.worker}</td>
                                    <td>{match a.main.as_str() { "main_object" => "the main object", "separate_object" => "a separate object", _ => "the background" }}</td>
                                    <td>{a.confidence.map(|c| format!("{c:.0} of 5")).unwrap_or_default()}</td>
                                    <td>{a.reasons}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            })}
        </section>
    }
}

#[component]
pub fn FeatureView(site: Arc<SiteIndex>, class: usize, feature: usize) -> impl IntoView {
    let (mode, set_mode) = signal(ViewMode::Overlay);
    let (opacity, set_opacity) = signal(0.6f64);
    with_class_page(class, move |page| {
        let Some(f) = page.features.iter().find(|f| f.feature == feature).cloned() else {
            return view! { <section class="page"><p class="error">{format!("Class {class} has no feature {feature} in this dataset.")}</p></section> }.into_any();
        };
        let site = site.clone();
        let mode_button = move |m: ViewMode, text: &'static str| {
            view! {
                <button type="button" class:active=move || mode.get() == m aria-pressed=move || (mode.get() == m).to_string()
                    on:click=move |_| set_mode.set(m)>{text}</button>
            }
        };
        let activation = |i: &SiteImage| i.activation.map(|a| format!(" · {a:.3}")).unwrap_or_default();
        view! {
            <section class="page">
                <nav class="crumbs" aria-label="Breadcrumb">
                    <a href="#/">"Classes"</a>" / "<a href=Route::Class(class).href()>{page.name.clone()}</a>" / "<span aria-current="page">{format!("feature {feature}")}</span>
                </nav>
                <div class="page-head">
                    <h1>{format!("Feature {feature}")} {label_badge(f.label, f.votes, &site.labels)}</h1>
                    <p class="lead">{format!("{} · rank {} · the {} images of the class where it fires most", page.name, f.rank, f.images.len())}</p>
                    {f.note.clone().map(|n| view! { <p class="truth-note">{n}</p> })}
                </div>
                {(!site.thumbs).then(|| view! { <ImageSourcePicker /> })}
                <div class="toolbar">
                    <div class="segmented" role="group" aria-label="What to show">
                        {mode_button(ViewMode::Overlay, "Overlay")}
                        {mode_button(ViewMode::Image, "Image")}
                        {mode_button(ViewMode::Mask, "Soft mask")}
                        {mode_button(ViewMode::SideBySide, "Side by side")}
                        {f.images.iter().any(|i| i.truth.is_some()).then(|| mode_button(ViewMode::Truth, "Ground truth"))}
                    </div>
                    <label class="slider" class:disabled=move || mode.get() != ViewMode::Overlay>
                        "Heatmap opacity "
                        <input type="range" min="0" max="1" step="0.05" prop:value=move || opacity.get().to_string()
                            prop:disabled=move || mode.get() != ViewMode::Overlay
                            on:input:target=move |ev| set_opacity.set(ev.target().value().parse().unwrap_or(0.6)) />
                    </label>
                </div>
                <ColourBar />
                {f.attack.clone().map(|a| view! {
                    <figure class="attack">
                        <img src=a alt="The feature attack image" />
                        <figcaption>"Feature attack: the top image changed by gradient ascent to amplify this feature — what the feature looks for."</figcaption>
                    </figure>
                })}
                <ul class="image-grid" class:wide=move || mode.get() == ViewMode::SideBySide>
                    {f.images.iter().map(|i| {
                        let i = i.clone();
                        let site = site.clone();
                        let href = Route::Image(class, feature, i.image.clone()).href();
                        let caption = format!("{}{}", i.image, activation(&i));
                        let (i2, site2) = (i.clone(), site.clone());
                        let (thumb, source, view_text) = (thumb(&site, &page.wnid, &i), i.source(&page.wnid), Arc::<str>::from(site.view.as_str()));
                        let wnid = page.wnid.clone();
                        let image2 = move || view! { <DatasetImage thumb=thumb.clone() source=source.clone() view_text=view_text.clone() /> };
                        view! {
                            <li class="card image-card">
                                <a href=href>
                                    {move || match mode.get() {
                                        ViewMode::Image => image2().into_any(),
                                        ViewMode::Mask => view! { <MaskCanvas map=i2.map.clone() opacity=1.0 style=Style::Gray /> }.into_any(),
                                        ViewMode::Truth => view! {
                                            <div class="stack">
                                                {image2()}
                                                {i2.truth.clone().map(|t| view! { <img class="truth" src=t alt="ground truth" /> })}
                                            </div>
                                        }.into_any(),
                                        ViewMode::Overlay => overlay(&site2, &wnid, &i2, opacity.into(), false).into_any(),
                                        ViewMode::SideBySide => view! {
                                            <div class="triple">
                                                {image2()}
                                                <MaskCanvas map=i2.map.clone() opacity=1.0 style=Style::Gray />
                                                {overlay(&site2, &wnid, &i2, Signal::from(0.7), false)}
                                            </div>
                                        }.into_any(),
                                    }}
                                    <div class="caption">{caption.clone()}</div>
                                </a>
                            </li>
                        }
                    }).collect_view()}
                </ul>
                {provenance(&site, &f)}
            </section>
        }
        .into_any()
    })
}

#[component]
pub fn ImageView(site: Arc<SiteIndex>, class: usize, feature: usize, image: String) -> impl IntoView {
    let (opacity, set_opacity) = signal(0.6f64);
    with_class_page(class, move |page| {
        let site = site.clone();
        let found = page
            .features
            .iter()
            .find(|f| f.feature == feature)
            .and_then(|f| f.images.iter().position(|i| i.image == image).map(|k| (f.clone(), k)));
        let Some((f, k)) = found else {
            return view! { <section class="page"><p class="error">{format!("Image {image} is not among feature {feature}'s images.")}</p></section> }.into_any();
        };
        let i = f.images[k].clone();
        let neighbour = |d: isize| {
            let at = k as isize + d;
            (at >= 0)
                .then(|| f.images.get(at as usize))
                .flatten()
                .map(|n| Route::Image(class, feature, n.image.clone()).href())
        };
        let fires = i.activation.map(|a| format!(" fires at {a:.3}")).unwrap_or_default();
        view! {
            <section class="page">
                <nav class="crumbs" aria-label="Breadcrumb">
                    <a href="#/">"Classes"</a>" / "<a href=Route::Class(class).href()>{page.name.clone()}</a>" / "
                    <a href=Route::Feature(class, feature).href()>{format!("feature {feature}")}</a>" / "<span aria-current="page">{i.image.clone()}</span>
                </nav>
                <div class="page-head">
                    <h1>{i.image.clone()}</h1>
                    <p class="lead">{format!("Feature {feature} ({}){fires}; image {} of {}", f.label.as_str(), k + 1, f.images.len())}</p>
                </div>
                {(!site.thumbs).then(|| view! { <ImageSourcePicker /> })}
                <div class="toolbar">
                    {neighbour(-1).map(|h| view! { <a class="button" href=h>"← previous"</a> })}
                    {neighbour(1).map(|h| view! { <a class="button" href=h>"next →"</a> })}
                    <label class="slider">"Heatmap opacity "
                        <input type="range" min="0" max="1" step="0.05" prop:value=move || opacity.get().to_string()
                            on:input:target=move |ev| set_opacity.set(ev.target().value().parse().unwrap_or(0.6)) />
                    </label>
                </div>
                <ColourBar />
                <div class="large">
                    <figure>{overlay(&site, &page.wnid, &i, opacity.into(), true)}<figcaption>"The image with the feature's heatmap"</figcaption></figure>
                    <figure><div class="big"><MaskCanvas map=i.map.clone() opacity=1.0 style=Style::Gray /></div><figcaption>"The soft mask (white: 1)"</figcaption></figure>
                    {i.truth.clone().map(|t| view! {
                        <figure>
                            <div class="stack big">
                                <DatasetImage thumb=thumb(&site, &page.wnid, &i) source=i.source(&page.wnid) view_text=Arc::from(site.view.as_str()) big=true />
                                <img class="truth" src=t alt="ground truth" />
                            </div>
                            <figcaption>"Ground truth: the object in green, planted cues in magenta"</figcaption>
                        </figure>
                    })}
                </div>
            </section>
        }
        .into_any()
    })
}
