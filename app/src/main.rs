//! Salient's web explorer. (The explorer proper comes with its own issue; this is the shell.)

use leptos::prelude::*;

#[component]
fn App() -> impl IntoView {
    view! {
        <main class="shell">
            <h1>"Salient"</h1>
            <p>"Find the spurious features an image classifier relies on."</p>
        </main>
    }
}

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
