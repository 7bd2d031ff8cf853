//! `salient site` on the paper's release layout and on a `salient build` output: the labels'
//! provenance, masks stored as maps that draw back to the files, thumbnails or none, the
//! projected size of the full dataset, and an installed binary finding its app.

use std::path::{Path, PathBuf};

use salient_engine::site::{ClassPage, MaskMap, SiteIndex};
use salient_tests::release::{make_release_layout, mturk_csv, release_map};
use salient_tests::*;

fn app() -> PathBuf {
    let dist = std::env::var_os("SALIENT_APP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist"));
    assert!(dist.join("index.html").exists(), "{}: build the app first (make app)", dist.display());
    dist
}

fn ok(args: &[&str], cwd: &Path) -> String {
    let o = salient(args, cwd);
    assert!(o.status.success(), "salient {args:?} failed:\n{}", stderr(&o));
    stdout(&o)
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Three classes of the paper's release layout with MTurk labels.
fn release(root: &Path) -> Vec<(usize, String, usize)> {
    let pairs: Vec<(usize, String, usize)> = vec![
        (0, "n01440764".into(), 59),
        (0, "n01440764".into(), 686),
        (0, "n01440764".into(), 1000),
        (325, "n02281406".into(), 1305),
        (325, "n02281406".into(), 1795),
        (999, "n15075141".into(), 20),
    ];
    make_release_layout(&root.join("release"), &pairs, 4);
    let rows: Vec<(usize, &str, usize)> = pairs.iter().map(|(c, w, f)| (*c, w.as_str(), *f)).collect();
    std::fs::write(root.join("mturk.csv"), mturk_csv(&rows)).unwrap();
    pairs
}

#[test]
fn the_papers_release_becomes_a_masks_only_site_with_its_votes_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    release(root);
    let app = app().display().to_string();
    let out = ok(&["site", "--dataset", "release", "--annotations", "mturk.csv", "--app", &app, "-o", "site"], root);
    println!("{out}");
    let index: SiteIndex = read(&root.join("site/data/site.json"));
    assert_eq!(index.labels.kind, "mturk");
    assert_eq!(index.labels.file, "mturk.csv");
    assert!(!index.thumbs, "no --images: a masks-only site");
    assert_eq!((index.classes.len(), index.masks), (3, 24));
    let c0 = index.classes.iter().find(|c| c.class == 0).unwrap();
    assert_eq!((c0.name.as_str(), c0.core.clone(), c0.spurious.clone()), ("tench", vec![59, 686], vec![1000]));
    let page: ClassPage = read(&root.join("site/data/classes/0.json"));
    let ranks: Vec<(usize, usize)> = page.features.iter().map(|f| (f.rank, f.feature)).collect();
    assert_eq!(ranks, vec![(1, 59), (2, 686), (3, 1000)], "features in the labels' rank order");
    let spurious = &page.features[2];
    let votes = spurious.votes.expect("MTurk votes");
    assert_eq!((votes.main_object, votes.background), (2, 3));
    assert_eq!(spurious.answers.len(), 5);
    assert_eq!(spurious.answers[0].reasons, "worker 0 on 1000: the focus, \"clearly\", is here");
    assert_eq!(spurious.answers[0].confidence, Some(3.0));
    for (k, image) in spurious.images.iter().enumerate() {
        assert_eq!(image.activation, None, "the release lists no activations");
        assert_eq!(image.source, None, "ImageNet's own path is implied");
        assert_eq!(image.source("n01440764"), format!("n01440764/{}.JPEG", image.image));
        // The stored map draws back the mask the paper's way: within JPEG's noise of the file,
        // and within a gray level of the map it was made from.
        let map = MaskMap::decode(&image.map).unwrap();
        assert_eq!(map.side, 7, "a 7×7 map per mask");
        let made = release_map(0, 1000, k);
        let worst = map.levels.iter().zip(&made).map(|(&l, &m)| (f32::from(l) - m * 255.0).abs()).fold(0.0, f32::max);
        assert!(worst <= 3.0, "mask {k}: the fitted map is {worst} gray levels off the one it was made from");
    }
    assert!(out.contains("24 at 7×7, 0 at 28×28"), "every mask stored as a 7×7 map:\n{out}");
    let projected = projected_mb(&out);
    assert!(projected <= 1000.0, "the full dataset would take {projected} MB");
}

#[test]
fn the_release_needs_its_labels() {
    let dir = tempfile::tempdir().unwrap();
    release(dir.path());
    let app = app().display().to_string();
    let o = salient(&["site", "--dataset", "release", "--app", &app, "-o", "site"], dir.path());
    assert_usage_error(&o, "has no index.jsonl: for the paper's release, give its labels with --annotations");
    assert!(!dir.path().join("site/data/site.json").exists(), "nothing written");
}

#[test]
fn a_build_becomes_a_site_with_thumbnails_and_7x7_maps() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Photos, so that the thumbnails weigh what real images do.
    for (wnid, photos) in [
        ("n00000000", ["chelsea.png", "coffee.jpg", "rocket.jpg", "astronaut_gray.png"]),
        ("n00000001", ["chelsea.webp", "coffee_cmyk.jpg", "rocket_exif6.jpg", "coffee16.png"]),
    ] {
        std::fs::create_dir_all(root.join("images").join(wnid)).unwrap();
        for p in photos {
            std::fs::copy(fixture(&format!("images/{p}")), root.join("images").join(wnid).join(format!("{wnid}_{p}")))
                .unwrap();
        }
    }
    std::fs::write(root.join("labels.csv"), "class,feature,label,rank\n0,3,core,1\n0,9,spurious,2\n1,4,core,1\n")
        .unwrap();
    let w = fixture("model.safetensors").display().to_string();
    ok(
        &["build", "-w", &w, "--images", "images", "--annotations", "labels.csv", "--per-feature", "4", "-o", "ds"],
        root,
    );
    let app = app().display().to_string();
    let out = ok(&["site", "--dataset", "ds", "--images", "images", "--app", &app, "-o", "site"], root);
    println!("{out}");
    let index: SiteIndex = read(&root.join("site/data/site.json"));
    assert!(index.thumbs);
    assert_eq!(index.labels.kind, "index");
    let page: ClassPage = read(&root.join("site/data/classes/0.json"));
    for f in &page.features {
        for i in &f.images {
            let thumb =
                image::open(root.join("site").join(salient_engine::site::thumb_path(&page.wnid, &i.image))).unwrap();
            assert_eq!((thumb.width(), thumb.height()), (128, 128));
            // The build's own PNG mask, drawn back from the stored map: within a gray level or two.
            let png = image::open(root.join("ds").join(format!("{}/feature_{}/{}.png", page.wnid, f.feature, i.image)))
                .unwrap()
                .to_luma8();
            let drawn = salient_engine::nam::to_gray(&MaskMap::decode(&i.map).unwrap().mask(png.width() as usize));
            let worst = drawn.iter().zip(png.as_raw()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 2, "{}: the map draws the mask back {worst} gray levels off", i.image);
            assert!(i.activation.is_some());
        }
    }
    assert!(projected_mb(&out) <= 1000.0, "with thumbnails the full dataset would not fit in 1 GB:\n{out}");

    // A mask gone missing: an error naming it, the earlier site untouched, no half site left.
    let before = std::fs::read(root.join("site/data/site.json")).unwrap();
    // (The index names the PNG masks; the JPEGs beside them are the paper's format.)
    let mask = std::fs::read_dir(root.join("ds/n00000000/feature_3"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    std::fs::remove_file(&mask).unwrap();
    let o = salient(&["site", "--dataset", "ds", "--images", "images", "--app", &app, "-o", "site"], root);
    assert_one_line_error(&o, &mask.file_name().unwrap().to_string_lossy());
    assert_eq!(
        std::fs::read(root.join("site/data/site.json")).unwrap(),
        before,
        "the earlier site is replaced only by a finished one"
    );
    let leftovers: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "a half-written site was left: {leftovers:?}");
}

/// The projected size of the full dataset that `salient site` prints, in MB.
fn projected_mb(out: &str) -> f64 {
    out.lines()
        .find(|l| l.starts_with("projected for the full Salient ImageNet"))
        .and_then(|l| l.rsplit(": ").next())
        .and_then(|v| v.trim_end_matches(" MB").parse().ok())
        .unwrap_or_else(|| panic!("no projected size in:\n{out}"))
}

#[test]
fn an_installed_binary_finds_its_app() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    release(root);
    // The layout `make install PREFIX=…` writes: bin/salient and share/salient/app/.
    let prefix = root.join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::copy(salient_bin(), prefix.join("bin/salient")).unwrap();
    copy_dir(&app(), &prefix.join("share/salient/app"));
    let o = std::process::Command::new(prefix.join("bin/salient"))
        .args(["site", "--dataset", "release", "--annotations", "mturk.csv", "-o", "site"])
        .current_dir(root)
        .env_remove("SALIENT_APP_DIR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(root.join("site/index.html").exists());
    // Without one, the message says where it looked and what to do.
    std::fs::remove_dir_all(prefix.join("share")).unwrap();
    let o = std::process::Command::new(prefix.join("bin/salient"))
        .args(["site", "--dataset", "release", "--annotations", "mturk.csv", "-o", "site2"])
        .current_dir(root)
        .env_remove("SALIENT_APP_DIR")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("share/salient/app") && stderr(&o).contains("make install"), "{}", stderr(&o));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() { copy_dir(&p, &dest) } else { std::fs::copy(&p, &dest).map(|_| ()).unwrap() }
    }
}
