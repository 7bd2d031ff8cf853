//! Where the built web app (trunk's dist/: index.html, the wasm bundle) is, for `salient site`.
//!
//! The first folder holding an `index.html` among: `--app`, `$SALIENT_APP_DIR`, the installed
//! layout (`<prefix>/bin/salient` with `<prefix>/share/salient/app`, what `make install` writes),
//! an unpacked release (`app/` beside the executable), and `./dist` (the source tree).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The environment variable naming the app's folder.
pub const ENV: &str = "SALIENT_APP_DIR";

/// The folder of the built web app: `explicit` (the `--app` value) if given, which must hold it,
/// otherwise the first of the usual places that does (see the module's documentation).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    let env = std::env::var_os(ENV).map(PathBuf::from);
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().unwrap_or_default();
    locate_in(explicit, env.as_deref(), exe.as_deref(), &cwd)
}

/// [`locate`] with the environment as parameters: `env` is `$SALIENT_APP_DIR`, `exe` the running
/// executable's path, `cwd` the current folder.
fn locate_in(explicit: Option<&Path>, env: Option<&Path>, exe: Option<&Path>, cwd: &Path) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return if holds_app(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(Error::Usage(format!(
                "{}: no web app there (index.html missing): pass --app the built app (trunk's dist/), \
                 or build it with `make app` in the source tree",
                dir.display()
            )))
        };
    }
    let candidates = candidates(env, exe, cwd);
    if let Some((dir, _)) = candidates.iter().find(|(dir, _)| holds_app(dir)) {
        return Ok(dir.clone());
    }
    let looked: String = candidates.iter().map(|(dir, what)| format!("\n  {} ({what})", dir.display())).collect();
    Err(Error::Usage(format!(
        "the web app (a folder with index.html) is in none of the places looked in:{looked}\n\
         install it with the binary (`make install PREFIX=$HOME/.local` in the source tree), or build it \
         with `make app` and run from the source tree, or pass --app DIR (or set {ENV})"
    )))
}

/// The places looked in after `--app`, in order, each with what it stands for.
fn candidates(env: Option<&Path>, exe: Option<&Path>, cwd: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    if let Some(dir) = env.filter(|d| !d.as_os_str().is_empty()) {
        out.push((dir.to_path_buf(), "$SALIENT_APP_DIR"));
    }
    if let Some(bin) = exe.and_then(Path::parent) {
        if let Some(prefix) = bin.parent() {
            out.push((prefix.join("share/salient/app"), "installed beside the executable"));
        }
        out.push((bin.join("app"), "unpacked beside the executable"));
    }
    out.push((cwd.join("dist"), "the source tree's build"));
    out
}

fn holds_app(dir: &Path) -> bool {
    dir.join("index.html").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary tree with an executable at `prefix/bin/salient`, a working folder, and
    /// helpers to put an app anywhere in it.
    struct Tree {
        root: tempfile::TempDir,
    }

    impl Tree {
        fn new() -> Self {
            let root = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(root.path().join("prefix/bin")).unwrap();
            std::fs::create_dir_all(root.path().join("work")).unwrap();
            Tree { root }
        }
        fn path(&self, rel: &str) -> PathBuf {
            self.root.path().join(rel)
        }
        fn app(&self, rel: &str) -> PathBuf {
            let dir = self.path(rel);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("index.html"), "<!doctype html>").unwrap();
            dir
        }
        fn locate(&self, explicit: Option<&Path>, env: Option<&Path>) -> Result<PathBuf> {
            locate_in(explicit, env, Some(&self.path("prefix/bin/salient")), &self.path("work"))
        }
    }

    #[test]
    fn app_dir_explicit_wins_and_must_hold_the_app() {
        let t = Tree::new();
        let env = t.app("env");
        t.app("prefix/share/salient/app");
        t.app("work/dist");
        let mine = t.app("mine");
        assert_eq!(t.locate(Some(&mine), Some(&env)).unwrap(), mine);
        // An --app without the app is an error naming it, even where another place has one.
        let empty = t.path("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = t.locate(Some(&empty), Some(&env)).unwrap_err().to_string();
        assert!(matches!(t.locate(Some(&empty), None), Err(Error::Usage(_))));
        assert!(e.contains(&empty.display().to_string()) && e.contains("index.html"), "{e}");
    }

    #[test]
    fn app_dir_order_env_installed_unpacked_source_tree() {
        let t = Tree::new();
        let dist = t.app("work/dist");
        assert_eq!(t.locate(None, None).unwrap(), dist);
        let unpacked = t.app("prefix/bin/app");
        assert_eq!(t.locate(None, None).unwrap(), unpacked);
        let installed = t.app("prefix/share/salient/app");
        assert_eq!(t.locate(None, None).unwrap(), installed);
        let env = t.app("env");
        assert_eq!(t.locate(None, Some(&env)).unwrap(), env);
        // An environment value without the app, or an empty one, is passed over.
        assert_eq!(t.locate(None, Some(&t.path("nowhere"))).unwrap(), installed);
        assert_eq!(t.locate(None, Some(Path::new(""))).unwrap(), installed);
    }

    #[test]
    fn app_dir_needs_index_html_not_just_the_folder() {
        let t = Tree::new();
        std::fs::create_dir_all(t.path("prefix/share/salient/app")).unwrap();
        let dist = t.app("work/dist");
        assert_eq!(t.locate(None, None).unwrap(), dist);
    }

    #[test]
    fn app_dir_missing_everywhere_says_where_it_looked_and_what_to_do() {
        let t = Tree::new();
        let env = t.path("env");
        let Err(Error::Usage(e)) = t.locate(None, Some(&env)) else { panic!("no app anywhere was found") };
        for place in [env, t.path("prefix/share/salient/app"), t.path("prefix/bin/app"), t.path("work/dist")] {
            assert!(e.contains(&place.display().to_string()), "{place:?} missing from: {e}");
        }
        for advice in ["make install", "make app", "--app"] {
            assert!(e.contains(advice), "{advice} missing from: {e}");
        }
    }

    #[test]
    fn app_dir_without_an_executable_path_still_tries_the_source_tree() {
        let t = Tree::new();
        let dist = t.app("work/dist");
        assert_eq!(locate_in(None, None, None, &t.path("work")).unwrap(), dist);
        // The public wrapper runs against the real environment without panicking.
        let _ = locate(None);
    }
}
