//! Salient's web explorer: browse a Salient dataset's masks, analyse your own images with the
//! robust model running in the browser (WebGPU, or the CPU), and label (class, feature) pairs.

mod annotate;
mod browse;
mod data;
mod heatmap;
mod model;
mod route;
mod upload;

use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use salient_engine::site::{INDEX, SiteIndex};

use route::{Route, use_route};
use upload::ModelHandle;

#[component]
fn App() -> impl IntoView {
    let route = use_route();
    let (site, set_site) = signal::<Option<Result<Arc<SiteIndex>, String>>>(None);
    spawn_local(async move { set_site.set(Some(data::json::<SiteIndex>(INDEX).await.map(Arc::new))) });
    provide_context(ModelHandle::new());
    let title = move || site.get().and_then(|s| s.ok()).map_or_else(|| "Salient".to_owned(), |s| s.title.clone());
    let nav = move |r: Route, text: &'static str| {
        let active = {
            let r = r.clone();
            move || std::mem::discriminant(&route.get()) == std::mem::discriminant(&r)
                || matches!((&route.get(), &r), (Route::Class(_) | Route::Feature(..) | Route::Image(..), Route::Classes))
        };
        view! { <a href=r.href() class:active=active>{text}</a> }
    };
    view! {
        <header class="top">
            <a class="brand" href="#/"><span class="logo">"◐"</span>{title}</a>
            <nav>
                {nav(Route::Classes, "Browse")}
                {nav(Route::Upload, "Analyse an image")}
                {nav(Route::Annotate(0), "Annotate")}
            </nav>
        </header>
        <main>
            {move || match site.get() {
                None => view! { <p class="loading">"Loading the dataset…"</p> }.into_any(),
                Some(Err(e)) => view! {
                    <section class="page"><h1>"This site's data could not be loaded"</h1><p class="error">{e}</p></section>
                }.into_any(),
                Some(Ok(s)) => match route.get() {
                    Route::Classes => view! { <browse::ClassList site=s /> }.into_any(),
                    Route::Class(c) => view! { <browse::ClassView class=c /> }.into_any(),
                    Route::Feature(c, f) => view! { <browse::FeatureView class=c feature=f /> }.into_any(),
                    Route::Image(c, f, i) => view! { <browse::ImageView class=c feature=f image=i /> }.into_any(),
                    Route::Upload => view! { <upload::Upload site=s /> }.into_any(),
                    Route::Annotate(k) => view! { <annotate::Annotate site=s index=k /> }.into_any(),
                    Route::NotFound(p) => view! {
                        <section class="page"><h1>"Not found"</h1><p>{format!("Nothing lives at #/{p}.")}</p><a href="#/">"Back to the classes"</a></section>
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
    leptos::mount::mount_to_body(App);
}
