//! Salient's web explorer: browse a Salient dataset's masks, analyse your own images with the
//! robust model (in a Web Worker, on WebGPU or the CPU), and label (class, feature) pairs.
//!
//! This bundle holds the browsing pages only; the engine is `worker/`, which the upload page
//! starts on demand, so browsing downloads no model and no tensor library.

mod annotate;
mod browse;
mod data;
mod heatmap;
mod images;
mod route;
mod scroll;
mod upload;
mod worker;

use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use salient_engine::site::{INDEX, SCHEMA, SiteIndex};

use route::{Route, use_route};

/// The page's title for a route, e.g. "tench · feature 59 · Salient".
fn page_title(route: &Route, site: Option<&SiteIndex>) -> String {
    let site_title = site.map_or("Salient", |s| s.title.as_str());
    let class = |c: usize| {
        site.and_then(|s| s.classes.iter().find(|k| k.class == c))
            .map_or_else(|| format!("class {c}"), |k| k.name.clone())
    };
    let page = match route {
        Route::Classes => "Classes".to_owned(),
        Route::Class(c) => class(*c),
        Route::Feature(c, f) => format!("{} · feature {f}", class(*c)),
        Route::Image(c, f, i) => format!("{i} · {} · feature {f}", class(*c)),
        Route::Upload => "Analyse an image".to_owned(),
        Route::Annotate(k) => format!("Annotate · pair {}", k + 1),
        Route::NotFound(_) => "Not found".to_owned(),
    };
    format!("{page} · {site_title}")
}

#[component]
fn App() -> impl IntoView {
    let route = use_route();
    scroll::manage(route);
    let (site, set_site) = signal::<Option<Result<Arc<SiteIndex>, String>>>(None);
    spawn_local(async move {
        let loaded = data::json::<SiteIndex>(INDEX).await.and_then(|s| {
            if s.schema == SCHEMA {
                Ok(Arc::new(s))
            } else {
                Err(format!("{INDEX}: a site of layout version {}, this explorer reads version {SCHEMA}: rebuild the site with this version of `salient site`", s.schema))
            }
        });
        set_site.set(Some(loaded));
    });
    provide_context(upload::ModelHandle::new());
    provide_context(images::LocalImages::new());
    Effect::new(move |_| {
        let site = site.get().and_then(Result::ok);
        document().set_title(&page_title(&route.get(), site.as_deref()));
    });
    let (menu_open, set_menu_open) = signal(false);
    Effect::new(move |_| {
        route.track();
        set_menu_open.set(false);
    });
    let brand = move || site.get().and_then(Result::ok).map_or_else(|| "Salient".to_owned(), |s| s.title.clone());
    let nav = move |r: Route, text: &'static str| {
        let active = {
            let r = r.clone();
            move || {
                std::mem::discriminant(&route.get()) == std::mem::discriminant(&r)
                    || matches!(
                        (&route.get(), &r),
                        (Route::Class(_) | Route::Feature(..) | Route::Image(..), Route::Classes)
                    )
            }
        };
        let current = active.clone();
        view! { <a href=r.href() class:active=active aria-current=move || current().then_some("page")>{text}</a> }
    };
    view! {
        <header class="top">
            <a class="brand" href="#/"><span class="logo" aria-hidden="true"></span>{brand}</a>
            <button class="menu" aria-expanded=move || menu_open.get().to_string() aria-controls="nav"
                on:click=move |_| set_menu_open.update(|o| *o = !*o)>"Menu"</button>
            <nav id="nav" aria-label="Main" class:open=menu_open>
                {nav(Route::Classes, "Browse")}
                {nav(Route::Upload, "Analyse an image")}
                {nav(Route::Annotate(0), "Annotate")}
            </nav>
        </header>
        <main id="main">
            {move || match site.get() {
                None => view! { <p class="loading" role="status">"Loading the dataset…"</p> }.into_any(),
                Some(Err(e)) => view! {
                    <section class="page"><h1>"This site's data could not be loaded"</h1><p class="error">{e}</p></section>
                }.into_any(),
                Some(Ok(s)) => match route.get() {
                    Route::Classes => view! { <browse::ClassList site=s /> }.into_any(),
                    Route::Class(c) => view! { <browse::ClassView site=s class=c /> }.into_any(),
                    Route::Feature(c, f) => view! { <browse::FeatureView site=s class=c feature=f /> }.into_any(),
                    Route::Image(c, f, i) => view! { <browse::ImageView site=s class=c feature=f image=i /> }.into_any(),
                    Route::Upload => view! { <upload::Upload site=s /> }.into_any(),
                    Route::Annotate(k) => view! { <annotate::Annotate site=s index=k /> }.into_any(),
                    Route::NotFound(p) => view! {
                        <section class="page"><div class="page-head"><h1>"Not found"</h1></div>
                        <p>{format!("Nothing lives at #/{p}.")}</p><a href="#/">"Back to the classes"</a></section>
                    }.into_any(),
                },
            }}
        </main>
        <footer class="bottom">
            "Salient · the Salient ImageNet method (Singla & Feizi, ICLR 2022) · core features are the object, spurious ones merely co-occur"
        </footer>
    }
}

fn main() {
    console_error_panic_hook::set_once();
    let root = document().get_element_by_id("app").expect("index.html has #app");
    // The static shell painted while this code loaded; the app takes its place.
    root.set_inner_html("");
    leptos::mount::mount_to(root.unchecked_into(), App).forget();
}

use wasm_bindgen::JsCast;
