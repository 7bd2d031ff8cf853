//! Browsing a dataset: the class list, a class's features, a feature's images with their masks.

use std::sync::Arc;

use leptos::prelude::*;
use salient_engine::annotations::Label;
use salient_engine::site::{ClassPage, FeaturePage, SiteIndex, class_page};

use crate::data;
use crate::heatmap::MaskCanvas;
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
                .filter(|c| q.is_empty() || c.name.to_lowercase().contains(&q) || c.wnid.contains(&q) || c.class.to_string() == q)
                .filter(|c| !only_spurious.get() || !c.spurious.is_empty())
                .cloned()
                .collect();
            match sort.get() {
                Sort::Index => list.sort_by_key(|c| c.class),
                Sort::Name => list.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase())),
                Sort::Spurious => list.sort_by_key(|c| (std::cmp::Reverse(c.spurious.len()), c.class)),
            }
            list
        }
    };
    let total = site.classes.len();
    let with_spurious = site.classes.iter().filter(|c| !c.spurious.is_empty()).count();
    view! {
        <section class="page">
            <div class="page-head">
                <h1>"Classes"</h1>
                <p class="lead">
                    {format!("{total} classes, {with_spurious} with at least one spurious feature, {} images.", site.images)}
                </p>
            </div>
            <div class="toolbar">
                <input
                    class="search"
                    type="search"
                    placeholder="Search by name, WordNet id or index"
                    prop:value=query
                    on:input:target=move |ev| set_query.set(ev.target().value())
                />
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
            </div>
            <ul class="class-grid">
                <For each=shown key=|c| c.class let:c>
                    <li class="card class-card">
                        <a href=Route::Class(c.class).href()>
                            {c.thumb.clone().map(|t| view! { <img class="thumb" src=t alt="" loading="lazy" /> })}
                            <div class="card-body">
                                <div class="card-title">{c.name.clone()}</div>
                                <div class="muted">{format!("{} · {}", c.class, c.wnid)}</div>
                                <div class="badges">
                                    <span class="badge core">{format!("{} core", c.core.len())}</span>
                                    <span class="badge spurious" class:zero=c.spurious.is_empty()>
                                        {format!("{} spurious", c.spurious.len())}
                                    </span>
                                </div>
                            </div>
                        </a>
                    </li>
                </For>
            </ul>
        </section>
    }
}

fn label_badge(label: Label) -> impl IntoView {
    let (class, text) = match label {
        Label::Core => ("badge core", "core"),
        Label::Spurious => ("badge spurious", "spurious"),
    };
    view! { <span class=class>{text}</span> }
}

/// Loads a class page, then shows `inner` with it.
fn with_class_page<V: IntoView + 'static>(class: usize, inner: impl Fn(ClassPage) -> V + Send + Sync + 'static) -> impl IntoView {
    let page = LocalResource::new(move || async move { data::json::<ClassPage>(&class_page(class)).await });
    let inner = Arc::new(inner);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let inner = inner.clone();
                Suspend::new(async move {
                    match page.await {
                        Ok(p) => inner(p).into_any(),
                        Err(e) => view! { <p class="error">{format!("Cannot load this class: {e}")}</p> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
pub fn ClassView(class: usize) -> impl IntoView {
    with_class_page(class, move |page| {
        view! {
            <section class="page">
                <nav class="crumbs"><a href="#/">"Classes"</a>" / "{page.name.clone()}</nav>
                <div class="page-head">
                    <h1>{page.name.clone()}</h1>
                    <p class="lead">{format!("Class {} · {} · its top {} neural features, by importance", page.class, page.wnid, page.features.len())}</p>
                    {page.note.clone().map(|n| view! { <p class="truth-note">{n}</p> })}
                </div>
                <ul class="feature-grid">
                    {page.features.iter().map(|f| feature_card(page.class, f.clone())).collect::<Vec<_>>()}
                </ul>
            </section>
        }
    })
}

fn feature_card(class: usize, f: FeaturePage) -> impl IntoView {
    let first = f.images.first().cloned();
    view! {
        <li class="card feature-card">
            <a href=Route::Feature(class, f.feature).href()>
                {first.map(|i| view! {
                    <div class="stack">
                        <img class="thumb" src=i.thumb alt="" loading="lazy" />
                        <MaskCanvas mask=i.mask opacity=0.6 />
                    </div>
                })}
                <div class="card-body">
                    <div class="card-title">{format!("Feature {}", f.feature)}{label_badge(f.label)}</div>
                    <div class="muted">{format!("rank {} · {} images", f.rank, f.images.len())}</div>
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

#[component]
pub fn FeatureView(class: usize, feature: usize) -> impl IntoView {
    let (mode, set_mode) = signal(ViewMode::Overlay);
    let (opacity, set_opacity) = signal(0.6f64);
    with_class_page(class, move |page| {
        let Some(f) = page.features.iter().find(|f| f.feature == feature).cloned() else {
            return view! { <p class="error">{format!("Class {class} has no feature {feature} in this dataset.")}</p> }.into_any();
        };
        let mode_button = move |m: ViewMode, text: &'static str| {
            view! { <button class:active=move || mode.get() == m on:click=move |_| set_mode.set(m)>{text}</button> }
        };
        view! {
            <section class="page">
                <nav class="crumbs">
                    <a href="#/">"Classes"</a>" / "<a href=Route::Class(class).href()>{page.name.clone()}</a>" / "{format!("feature {feature}")}
                </nav>
                <div class="page-head">
                    <h1>{format!("Feature {feature}")} {label_badge(f.label)}</h1>
                    <p class="lead">{format!("{} · rank {} · the {} images of the class where it fires most", page.name, f.rank, f.images.len())}</p>
                    {f.note.clone().map(|n| view! { <p class="truth-note">{n}</p> })}
                </div>
                <div class="toolbar">
                    <div class="segmented">
                        {mode_button(ViewMode::Overlay, "Overlay")}
                        {mode_button(ViewMode::Image, "Image")}
                        {mode_button(ViewMode::Mask, "Soft mask")}
                        {mode_button(ViewMode::SideBySide, "Side by side")}
                        {f.images.iter().any(|i| i.truth.is_some()).then(|| mode_button(ViewMode::Truth, "Ground truth"))}
                    </div>
                    <label class="slider" class:disabled=move || mode.get() != ViewMode::Overlay>
                        "Heatmap opacity "
                        <input type="range" min="0" max="1" step="0.05" prop:value=move || opacity.get().to_string()
                            on:input:target=move |ev| set_opacity.set(ev.target().value().parse().unwrap_or(0.6)) />
                    </label>
                </div>
                {f.attack.clone().map(|a| view! {
                    <figure class="attack">
                        <img src=a alt="feature attack" />
                        <figcaption>"Feature attack: the top image changed by gradient ascent to amplify this feature."</figcaption>
                    </figure>
                })}
                <ul class="image-grid" class:wide=move || mode.get() == ViewMode::SideBySide>
                    {f.images.iter().map(|i| {
                        let i = i.clone();
                        let href = Route::Image(class, feature, i.image.clone()).href();
                        view! {
                            <li class="card image-card">
                                <a href=href>
                                    {move || match mode.get() {
                                        ViewMode::Image => view! { <img class="thumb" src=i.thumb.clone() alt="" loading="lazy" /> }.into_any(),
                                        ViewMode::Mask => view! { <img class="thumb mask" src=i.mask.clone() alt="" loading="lazy" /> }.into_any(),
                                        ViewMode::Truth => view! {
                                            <div class="stack">
                                                <img class="thumb" src=i.thumb.clone() alt="" loading="lazy" />
                                                {i.truth.clone().map(|t| view! { <img class="truth" src=t alt="ground truth" /> })}
                                            </div>
                                        }.into_any(),
                                        ViewMode::Overlay => view! {
                                            <div class="stack">
                                                <img class="thumb" src=i.thumb.clone() alt="" loading="lazy" />
                                                <MaskCanvas mask=i.mask.clone() opacity=opacity />
                                            </div>
                                        }.into_any(),
                                        ViewMode::SideBySide => view! {
                                            <div class="triple">
                                                <img class="thumb" src=i.thumb.clone() alt="" loading="lazy" />
                                                <img class="thumb mask" src=i.mask.clone() alt="" loading="lazy" />
                                                <div class="stack">
                                                    <img class="thumb" src=i.thumb.clone() alt="" loading="lazy" />
                                                    <MaskCanvas mask=i.mask.clone() opacity=0.7 />
                                                </div>
                                            </div>
                                        }.into_any(),
                                    }}
                                    <div class="caption">{format!("{} · {:.3}", i.image, i.activation)}</div>
                                </a>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </section>
        }
        .into_any()
    })
}

#[component]
pub fn ImageView(class: usize, feature: usize, image: String) -> impl IntoView {
    let (opacity, set_opacity) = signal(0.6f64);
    with_class_page(class, move |page| {
        let found = page
            .features
            .iter()
            .find(|f| f.feature == feature)
            .and_then(|f| f.images.iter().position(|i| i.image == image).map(|k| (f.clone(), k)));
        let Some((f, k)) = found else {
            return view! { <p class="error">{format!("Image {image} is not among feature {feature}'s images.")}</p> }.into_any();
        };
        let i = f.images[k].clone();
        let neighbour = |d: isize| {
            f.images.get((k as isize + d).max(0) as usize).filter(|_| k as isize + d >= 0).map(|n| Route::Image(class, feature, n.image.clone()).href())
        };
        view! {
            <section class="page">
                <nav class="crumbs">
                    <a href="#/">"Classes"</a>" / "<a href=Route::Class(class).href()>{page.name.clone()}</a>" / "
                    <a href=Route::Feature(class, feature).href()>{format!("feature {feature}")}</a>" / "{i.image.clone()}
                </nav>
                <div class="page-head">
                    <h1>{i.image.clone()}</h1>
                    <p class="lead">{format!("Feature {feature} ({}) fires at {:.3}; image {} of {}", match f.label { Label::Core => "core", Label::Spurious => "spurious" }, i.activation, k + 1, f.images.len())}</p>
                </div>
                <div class="toolbar">
                    {neighbour(-1).map(|h| view! { <a class="button" href=h>"← previous"</a> })}
                    {neighbour(1).map(|h| view! { <a class="button" href=h>"next →"</a> })}
                    <label class="slider">"Heatmap opacity "
                        <input type="range" min="0" max="1" step="0.05" prop:value=move || opacity.get().to_string()
                            on:input:target=move |ev| set_opacity.set(ev.target().value().parse().unwrap_or(0.6)) />
                    </label>
                </div>
                <div class="large">
                    <div class="stack big">
                        <img class="thumb" src=i.thumb.clone() alt="" />
                        <MaskCanvas mask=i.mask.clone() opacity=opacity />
                    </div>
                    <img class="thumb big mask" src=i.mask.clone() alt="soft mask" />
                    {i.truth.clone().map(|t| view! {
                        <div class="stack big" title="Ground truth: object in green, planted cues in magenta">
                            <img class="thumb" src=i.thumb.clone() alt="" />
                            <img class="truth" src=t alt="ground truth" />
                        </div>
                    })}
                </div>
            </section>
        }
        .into_any()
    })
}
