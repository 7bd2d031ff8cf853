//! An ImageNet-layout folder: `ROOT/<wnid>/<image>.<ext>`, one folder per class.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use salient_engine::{fsutil, imagenet};

use crate::error::{Error, Result};
use crate::files::Skipped;
use crate::inputs::is_image;

/// One image of the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// File name without extension (`n02281406_10006`): the dataset's image name.
    pub name: String,
    /// Path relative to the root, with `/` (`n02281406/n02281406_10006.JPEG`).
    pub rel: String,
    pub path: PathBuf,
}

/// A class folder.
#[derive(Debug, Clone)]
pub struct ClassDir {
    /// The model's output index for this class.
    pub index: usize,
    pub wnid: String,
    pub images: Vec<ImageRef>,
    /// Files with an image extension that cannot be used, and why: a name that is not UTF-8,
    /// not a regular file, or a name another image of the class already has.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone)]
pub struct ImageFolder {
    pub root: PathBuf,
    pub classes: Vec<ClassDir>,
}

impl ImageFolder {
    /// Lists the class folders and their images (extensions matched case-insensitively, names
    /// sorted). Class index: the sorted position of the folder among all folders, as
    /// torchvision's `ImageFolder` assigns it; for a 1000-class model whose folders are all
    /// ImageNet WordNet ids, the ImageNet index (the same thing for a complete ImageNet, and
    /// right for a subset of it). `only` keeps some classes (WordNet ids or indices).
    ///
    /// A folder that would shift the class indices silently is an error instead: one whose name
    /// is not UTF-8, or, beside WordNet-id folders, one that is not a WordNet id.
    pub fn scan(root: &Path, model_classes: usize, only: Option<&[String]>) -> Result<Self> {
        let read = |dir: &Path| std::fs::read_dir(dir).map_err(|e| salient_engine::Error::read(dir, e));
        let mut wnids = Vec::new();
        for entry in read(root)? {
            let path = entry.map_err(|e| salient_engine::Error::read(root, e))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                if path.is_dir() {
                    return Err(Error::Data(format!(
                        "{}: the folder name is not UTF-8, so it cannot name a class: rename or move it",
                        fsutil::shown(&path)
                    )));
                }
                continue;
            };
            if path.is_dir() && !name.starts_with('.') {
                wnids.push(name);
            }
        }
        wnids.sort();
        if wnids.is_empty() {
            return Err(Error::Data(format!(
                "{}: no class folders: expected the ImageNet layout ROOT/<wnid>/<image>.JPEG",
                fsutil::shown(root)
            )));
        }
        let (ids, stray): (Vec<&String>, Vec<&String>) = wnids.iter().partition(|w| imagenet::index_of(w).is_some());
        if model_classes == 1000 && !ids.is_empty() && !stray.is_empty() {
            let shown: Vec<String> = stray.iter().take(5).map(|s| fsutil::escape(s)).collect();
            return Err(Error::Data(format!(
                "{}: {} folder(s) beside the WordNet-id class folders are not ImageNet classes ({}{}): move them out, or they would shift every class index",
                fsutil::shown(root),
                stray.len(),
                shown.join(", "),
                if stray.len() > 5 { ", …" } else { "" }
            )));
        }
        let imagenet_ids = model_classes == 1000 && stray.is_empty();
        if !imagenet_ids && wnids.len() > model_classes {
            return Err(Error::Data(format!(
                "{}: {} class folders, but the model has only {model_classes} classes",
                fsutil::shown(root),
                wnids.len()
            )));
        }
        let wanted: Option<BTreeSet<&str>> = only.map(|o| o.iter().map(String::as_str).collect());
        let mut classes = Vec::new();
        for (pos, wnid) in wnids.iter().enumerate() {
            let index = if imagenet_ids { imagenet::index_of(wnid).unwrap_or(pos) } else { pos };
            if let Some(w) = &wanted
                && !w.contains(wnid.as_str())
                && !w.contains(index.to_string().as_str())
            {
                continue;
            }
            let dir = root.join(wnid);
            let mut files = Vec::new();
            for entry in read(&dir)? {
                let path = entry.map_err(|e| salient_engine::Error::read(&dir, e))?.path();
                let hidden = path.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
                if is_image(&path) && !hidden {
                    files.push(path);
                }
            }
            files.sort();
            let (images, skipped) = class_images(wnid, files);
            classes.push(ClassDir { index, wnid: wnid.clone(), images, skipped });
        }
        if let Some(w) = &wanted {
            let found: BTreeSet<String> = classes.iter().flat_map(|c| [c.wnid.clone(), c.index.to_string()]).collect();
            if let Some(missing) = w.iter().find(|x| !found.contains(**x)) {
                return Err(Error::Usage(format!(
                    "--classes: {missing} is not a class folder of {}",
                    fsutil::shown(root)
                )));
            }
        }
        classes.sort_by_key(|c| c.index);
        Ok(ImageFolder { root: root.to_path_buf(), classes })
    }
}

/// The usable images among a class folder's image files (sorted), and the others with why.
fn class_images(wnid: &str, files: Vec<PathBuf>) -> (Vec<ImageRef>, Vec<Skipped>) {
    let mut images: Vec<ImageRef> = Vec::new();
    let mut skipped = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for path in files {
        let rel_shown = format!("{wnid}/{}", path.file_name().map(|n| fsutil::shown(Path::new(n))).unwrap_or_default());
        let mut skip = |reason: String| skipped.push(Skipped { image: rel_shown.clone(), reason });
        let (Some(file), Some(name)) =
            (path.file_name().and_then(|n| n.to_str()), path.file_stem().and_then(|n| n.to_str()))
        else {
            skip("the file name is not UTF-8: rename it to use it".into());
            continue;
        };
        if !path.is_file() {
            skip("not a regular file (a folder, a device, a pipe, or a broken link)".into());
            continue;
        }
        let rel = format!("{wnid}/{file}");
        if let Some(first) = names.get(name) {
            skip(format!(
                "its name `{name}` is taken by {first}: masks and results are named by image name, so rename one"
            ));
            continue;
        }
        names.insert(name.to_owned(), rel.clone());
        images.push(ImageRef { name: name.to_owned(), rel, path });
    }
    (images, skipped)
}

/// Parses `--classes`: comma-separated WordNet ids or indices, or `@FILE` with one per line.
pub fn parse_class_list(arg: &str) -> Result<Vec<String>> {
    let text = match arg.strip_prefix('@') {
        Some(file) => fsutil::read_text(Path::new(file))?,
        None => arg.to_owned(),
    };
    let list: Vec<String> =
        text.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if list.is_empty() {
        return Err(Error::Usage("--classes names no class".into()));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for n in names {
            std::fs::create_dir_all(dir.path().join(n)).unwrap();
        }
        dir
    }

    #[test]
    fn a_stray_folder_beside_imagenet_classes_is_an_error() {
        let dir = folder(&["n01440764", "n01443537", "tmp"]);
        let e = ImageFolder::scan(dir.path(), 1000, None).unwrap_err().to_string();
        assert!(e.contains("1 folder(s) beside the WordNet-id class folders are not ImageNet classes (tmp)"), "{e}");
        let dir = folder(&["n01440764", "n01443537"]);
        let f = ImageFolder::scan(dir.path(), 1000, None).unwrap();
        assert_eq!(f.classes.iter().map(|c| c.index).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn colliding_and_odd_files_are_skipped_with_a_reason() {
        let dir = folder(&["a"]);
        for f in ["x.jpg", "x.png", "y.png"] {
            std::fs::write(dir.path().join("a").join(f), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("a/z.png")).unwrap();
        let f = ImageFolder::scan(dir.path(), 10, None).unwrap();
        let c = &f.classes[0];
        assert_eq!(c.images.iter().map(|i| i.rel.as_str()).collect::<Vec<_>>(), ["a/x.jpg", "a/y.png"]);
        let skipped: Vec<(&str, &str)> = c.skipped.iter().map(|s| (s.image.as_str(), s.reason.as_str())).collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].0 == "a/x.png" && skipped[0].1.contains("is taken by a/x.jpg"), "{skipped:?}");
        assert!(skipped[1].0 == "a/z.png" && skipped[1].1.contains("not a regular file"), "{skipped:?}");
    }
}
