//! `salient labels`: read core/spurious labels and report them.

use std::io::Write;
use std::path::PathBuf;

use salient_engine::annotations::Bounds;
use salient_engine::imagenet::class_label;
use salient_pipeline::labels::{LabelsParams, labels};

use crate::error::Result;

/// Read core/spurious labels of (class, feature) pairs and print them per class, with counts.
///
/// Reads the paper's MTurk results (discover_spurious_features.csv: a pair is spurious when at
/// least 3 of its 5 workers answered "background" or "separate object") or Salient's own CSV
/// (class,feature,label), which the web explorer's annotation page exports.
#[derive(clap::Args, Debug)]
pub struct LabelsArgs {
    /// The labels file.
    #[arg(long, value_name = "FILE")]
    annotations: PathBuf,

    /// Print {"summary": {...}, "classes": [{"class", "core": [...], "spurious": [...]}]}.
    #[arg(long)]
    json: bool,

    /// Number of classes the labels may refer to.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    num_classes: usize,

    /// Number of features the labels may refer to.
    #[arg(long, default_value_t = 2048, value_name = "F")]
    num_features: usize,
}

pub fn run(args: LabelsArgs) -> Result<()> {
    let bounds = Bounds { classes: args.num_classes, features: args.num_features };
    let report = labels(&LabelsParams { annotations: args.annotations, bounds }, &salient_pipeline::Quiet)?;
    let (summary, classes) = (&report.summary, &report.classes);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report).expect("plain data"))?;
        return Ok(());
    }
    let list = |v: &[usize]| {
        if v.is_empty() { "-".to_owned() } else { v.iter().map(usize::to_string).collect::<Vec<_>>().join(" ") }
    };
    for c in classes {
        writeln!(
            out,
            "{:<40} core: {:<28} spurious: {}",
            class_label(args.num_classes, c.class),
            list(&c.core),
            list(&c.spurious)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} pairs in {} classes: {} core, {} spurious; {} classes have a spurious feature, {} a core one; {} distinct features",
        summary.pairs,
        summary.classes,
        summary.core,
        summary.spurious,
        summary.classes_with_spurious,
        summary.classes_with_core,
        summary.distinct_features
    )?;
    if !summary.spurious_by_kind.is_empty() {
        let kinds: Vec<String> = summary.spurious_by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
        writeln!(out, "spurious pairs by kind: {}", kinds.join(", "))?;
    }
    if !summary.spurious_by_rank.is_empty() {
        let ranks: Vec<String> = summary.spurious_by_rank.iter().map(|(r, n)| format!("rank {r}: {n}")).collect();
        writeln!(out, "spurious pairs by feature rank: {}", ranks.join(", "))?;
    }
    Ok(())
}
