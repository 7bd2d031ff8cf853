//! Hash routes (`#/class/325/feature/1797`): deep links that any static host serves, under
//! any sub-path, with back/forward handled by the browser.

use leptos::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Route {
    #[default]
    Classes,
    Class(usize),
    Feature(usize, usize),
    Image(usize, usize, String),
    Upload,
    Annotate(usize),
    NotFound(String),
}

impl Route {
    pub fn parse(hash: &str) -> Route {
        let path = hash.trim_start_matches('#').trim_start_matches('/');
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let num = |s: &str| s.parse::<usize>().ok();
        match parts.as_slice() {
            [] | ["classes"] => Some(Route::Classes),
            ["class", c] => num(c).map(Route::Class),
            ["class", c, "feature", f] => num(c).zip(num(f)).map(|(c, f)| Route::Feature(c, f)),
            ["class", c, "feature", f, "image", i] => {
                num(c).zip(num(f)).map(|(c, f)| Route::Image(c, f, (*i).to_owned()))
            }
            ["upload"] => Some(Route::Upload),
            ["annotate"] => Some(Route::Annotate(0)),
            ["annotate", k] => num(k).map(Route::Annotate),
            _ => None,
        }
        .unwrap_or_else(|| Route::NotFound(path.to_owned()))
    }

    pub fn href(&self) -> String {
        match self {
            Route::Classes | Route::NotFound(_) => "#/".into(),
            Route::Class(c) => format!("#/class/{c}"),
            Route::Feature(c, f) => format!("#/class/{c}/feature/{f}"),
            Route::Image(c, f, i) => format!("#/class/{c}/feature/{f}/image/{i}"),
            Route::Upload => "#/upload".into(),
            Route::Annotate(k) => format!("#/annotate/{k}"),
        }
    }
}

/// The current route, following the address bar.
pub fn use_route() -> ReadSignal<Route> {
    let hash = || window().location().hash().unwrap_or_default();
    let (route, set_route) = signal(Route::parse(&hash()));
    window_event_listener(leptos::ev::hashchange, move |_| set_route.set(Route::parse(&hash())));
    route
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_round_trip() {
        for r in [
            Route::Classes,
            Route::Class(325),
            Route::Feature(325, 1797),
            Route::Image(3, 9, "n02281406_10006".into()),
            Route::Upload,
            Route::Annotate(12),
        ] {
            assert_eq!(Route::parse(&r.href()), r);
        }
        assert_eq!(Route::parse("#/class/x"), Route::NotFound("class/x".into()));
    }
}
