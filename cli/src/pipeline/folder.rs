//! An ImageNet-layout folder: `ROOT/<wnid>/<image>.<ext>`, one folder per class.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use salient_engine::imagenet;

use crate::error::{Error, Result};
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
    pub fn scan(root: &Path, model_classes: usize, only: Option<&[String]>) -> Result<Self> {
        let read = |dir: &Path| std::fs::read_dir(dir).map_err(|e| salient_engine::Error::read(dir, e));
        let mut wnids = Vec::new();
        for entry in read(root)? {
            let path = entry.map_err(|e| salient_engine::Error::read(root, e))?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if path.is_dir() && !name.starts_with('.') {
                wnids.push(name);
            }
        }
        wnids.sort();
        if wnids.is_empty() {
            return Err(Error::Usage(format!(
                "{}: no class folders: expected the ImageNet layout ROOT/<wnid>/<image>.JPEG",
                root.display()
            )));
        }
        let imagenet_ids = model_classes == 1000 && wnids.iter().all(|w| imagenet::index_of(w).is_some());
        if !imagenet_ids && wnids.len() > model_classes {
            return Err(Error::Usage(format!(
                "{}: {} class folders, but the model has only {model_classes} classes",
                root.display(),
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
            let mut images = Vec::new();
            for entry in read(&dir)? {
                let path = entry.map_err(|e| salient_engine::Error::read(&dir, e))?.path();
                let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if path.is_file() && is_image(&path) && !file.starts_with('.') {
                    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                    images.push(ImageRef { name, rel: format!("{wnid}/{file}"), path });
                }
            }
            images.sort_by(|a, b| a.rel.cmp(&b.rel));
            classes.push(ClassDir { index, wnid: wnid.clone(), images });
        }
        if let Some(w) = &wanted {
            let found: BTreeSet<String> = classes.iter().flat_map(|c| [c.wnid.clone(), c.index.to_string()]).collect();
            if let Some(missing) = w.iter().find(|x| !found.contains(**x)) {
                return Err(Error::Usage(format!("--classes: {missing} is not a class folder of {}", root.display())));
            }
        }
        classes.sort_by_key(|c| c.index);
        Ok(ImageFolder { root: root.to_path_buf(), classes })
    }
}

/// Parses `--classes`: comma-separated WordNet ids or indices, or `@FILE` with one per line.
pub fn parse_class_list(arg: &str) -> Result<Vec<String>> {
    let text = match arg.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file).map_err(|e| salient_engine::Error::read(file, e))?,
        None => arg.to_owned(),
    };
    let list: Vec<String> = text.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if list.is_empty() {
        return Err(Error::Usage("--classes names no class".into()));
    }
    Ok(list)
}
