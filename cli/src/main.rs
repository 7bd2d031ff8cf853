//! `salient`: the command-line program of the Salient toolkit.

mod app_dir;
mod commands;
mod error;
mod model;
mod output;
mod progress;

use clap::{Parser, Subcommand};

/// See `Cargo.toml`: large tensors are reused rather than mapped afresh for every layer.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use commands::{
    attack, bench, build, convert, discover, eval, explain, fetch, labels, mask, merge, predict, rank, serve, site,
    spuriosity, synth,
};

/// Find the spurious features an image classifier relies on.
///
/// Salient implements the Salient ImageNet method (Singla & Feizi, ICLR 2022). An adversarially
/// robust ResNet-50 has 2048 penultimate "neural features"; for each class the most important
/// ones are found, and each feature's activation map becomes a soft mask of where it looks. A
/// feature that looks at the object is core; one that looks at the background or another object
/// (water for boats, fingers for band-aids) is spurious.
///
/// A first session:
///   salient fetch-model                               # the robust ResNet-50, once
///   salient predict photo.jpg                         # what the model sees
///   salient explain photo.jpg                         # which features drive it, as heatmaps
///   salient rank --class 325 imagenet/train/n02281406 # the class's top features
///   salient mask -f 1797 photo.jpg -o mask.png --overlay heat.png
///   salient attack -f 1797 photo.jpg -o amplified.png # what feature 1797 looks for
///
/// At dataset scale (ImageNet layout: ROOT/<wnid>/<image>.JPEG):
///   salient discover --images ROOT -o run/           # top features per class, for annotation
///   salient labels --annotations labels.csv          # core/spurious labels per class
///   salient build --images ROOT --annotations labels.csv -o dataset/   # the soft masks
///   salient eval -w resnet50.pth --dataset dataset/ --images ROOT -o eval/   # core vs spurious accuracy
#[derive(Parser, Debug)]
#[command(name = "salient", version, about, long_about, verbatim_doc_comment, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Predict(predict::PredictArgs),
    Explain(explain::ExplainArgs),
    Rank(rank::RankArgs),
    Mask(mask::MaskArgs),
    Attack(attack::AttackArgs),
    Convert(convert::ConvertArgs),
    #[command(name = "fetch-model")]
    FetchModel(fetch::FetchArgs),
    Discover(discover::DiscoverArgs),
    Labels(labels::LabelsArgs),
    Build(build::BuildArgs),
    Merge(merge::MergeArgs),
    Eval(eval::EvalArgs),
    Spuriosity(spuriosity::SpuriosityArgs),
    Site(site::SiteArgs),
    Serve(serve::ServeArgs),
    Bench(bench::BenchArgs),
    Synth(synth::SynthArgs),
}

/// `mi_option_purge_delay` in mimalloc.h (v3), which the bindings do not name: between
/// `mi_option_deprecated_eager_commit_delay` (14) and `mi_option_use_numa_nodes` (16).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Freed memory stays with mimalloc instead of going back to the OS after a delay: each
    // layer's activations then reuse the last batch's pages instead of faulting in fresh ones
    // (ResNet-50 at batch 16: 26 500 page faults per 12 batches → 600, ~3% faster; peak memory
    // is unchanged, since what is kept is at most the peak).
    // SAFETY: sets an integer option; mimalloc reads it when it decides to purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // Anything that still panics is a bug: say so on one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error{at}: {} (please report this)", salient_engine::fsutil::escape(&msg));
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Predict(a) => predict::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Rank(a) => rank::run(a),
        Command::Mask(a) => mask::run(a),
        Command::Attack(a) => attack::run(a),
        Command::Convert(a) => convert::run(a),
        Command::FetchModel(a) => fetch::run(a),
        Command::Discover(a) => discover::run(a),
        Command::Labels(a) => labels::run(a),
        Command::Build(a) => build::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Spuriosity(a) => spuriosity::run(a),
        Command::Site(a) => site::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Synth(a) => synth::run(a),
    };
    match result {
        Ok(()) => {}
        // A closed pipe (`salient predict --json ... | head`) is not an error.
        Err(error::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            // One line, whatever names the message quotes (a file name may hold a newline or
            // terminal escape codes).
            eprintln!("error: {}", salient_engine::fsutil::escape(&e.to_string()));
            std::process::exit(e.exit_code());
        }
    }
}
