//! Where ResNet-50's forward time goes on the CPU: every distinct convolution of the network,
//! timed through burn's `conv2d` at a batch size, against the same multiply-adds as one plain
//! matrix product (`matmul` of the im2col shapes, the floor of a GEMM-based convolution) and
//! through the engine's own kernels (`salient_engine::cpu`: packed weights, channels-last input,
//! bias and ReLU fused); then the whole forward pass both ways. The reproduction for burn's
//! issue tracker (docs/cpu-kernels.md).
//!
//! `cargo run --release -p salient-engine --example conv_profile -- [BATCH]` (default 16).

use std::time::Instant;

use burn::module::Module;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use salient_engine::cpu::ConvGeometry;
use salient_engine::cpu::extension::packed_conv;
use salient_engine::cpu::pack::{pack, pad_bias};
use salient_engine::model::ResNetConfig;

/// `(c_in, c_out, kernel, stride, input side, occurrences in ResNet-50)`.
const CONVS: [(usize, usize, usize, usize, usize, usize); 23] = [
    (3, 64, 7, 2, 224, 1),
    (64, 64, 1, 1, 56, 1),
    (64, 64, 3, 1, 56, 3),
    (64, 256, 1, 1, 56, 4),
    (256, 64, 1, 1, 56, 2),
    (256, 128, 1, 1, 56, 1),
    (128, 128, 3, 2, 56, 1),
    (128, 512, 1, 1, 28, 4),
    (256, 512, 1, 2, 56, 1),
    (512, 128, 1, 1, 28, 3),
    (128, 128, 3, 1, 28, 3),
    (512, 256, 1, 1, 28, 1),
    (256, 256, 3, 2, 28, 1),
    (256, 1024, 1, 1, 14, 6),
    (512, 1024, 1, 2, 28, 1),
    (1024, 256, 1, 1, 14, 5),
    (256, 256, 3, 1, 14, 5),
    (1024, 512, 1, 1, 14, 1),
    (512, 512, 3, 2, 14, 1),
    (512, 2048, 1, 1, 7, 3),
    (1024, 2048, 1, 2, 14, 1),
    (2048, 512, 1, 1, 7, 2),
    (512, 512, 3, 1, 7, 2),
];

fn median_seconds(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..3)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[1]
}

fn main() {
    let batch: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let device = Device::flex();
    let kernel = salient_engine::cpu::Isa::detect();
    println!(
        "ResNet-50 convolutions, batch {batch}, burn flex; the engine's kernel: {kernel:?}; times are per occurrence, medians of 3"
    );
    println!(
        "{:>26} {:>4} {:>10} {:>10} {:>10} {:>9} {:>11}",
        "c_in→c_out k/stride @side", "n", "conv ms", "gemm ms", "packed ms", "conv GF/s", "packed GF/s"
    );
    let (mut conv_total, mut gemm_total, mut packed_total, mut flops_total) = (0.0, 0.0, 0.0, 0.0);
    let mut by_kind = std::collections::BTreeMap::<String, (f64, f64, f64)>::new();
    for (c_in, c_out, k, stride, side, count) in CONVS {
        let x = Tensor::<4>::random([batch, c_in, side, side], Distribution::Uniform(0.0, 1.0), &device);
        let w = Tensor::<4>::random([c_out, c_in, k, k], Distribution::Normal(0.0, 0.05), &device);
        let b = Tensor::<1>::zeros([c_out], &device);
        let opts = ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], 1);
        let conv = median_seconds(|| {
            let y = conv2d(x.clone(), w.clone(), Some(b.clone()), opts.clone());
            std::hint::black_box(y.into_data());
        });
        let out = side.div_ceil(stride);
        let (m, kk, n) = (c_out, c_in * k * k, batch * out * out);
        let a = Tensor::<2>::random([m, kk], Distribution::Uniform(0.0, 1.0), &device);
        let bm = Tensor::<2>::random([kk, n], Distribution::Uniform(0.0, 1.0), &device);
        let gemm = median_seconds(|| {
            std::hint::black_box(a.clone().matmul(bm.clone()).into_data());
        });
        // The engine's kernel on a channels-last input (as its previous convolution leaves it):
        // made by a packed 1×1 identity convolution.
        let host = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        let packed_tensor = |v: Vec<f32>| Tensor::<1>::from_floats(v.as_slice(), &device);
        let id = ConvGeometry { c_in, c_out: c_in, kernel: 1, stride: 1, pad: 0 };
        let eye: Vec<f32> = (0..c_in * c_in).map(|i| if i % (c_in + 1) == 0 { 1.0 } else { 0.0 }).collect();
        let (eye_w, eye_b) = (packed_tensor(pack(&eye, &id)), packed_tensor(pad_bias(&vec![0.0; c_in], &id)));
        let x_last = packed_conv(x.clone(), eye_w, eye_b, None, &id, false);
        let g = ConvGeometry { c_in, c_out, kernel: k, stride, pad: k / 2 };
        let (pw, pb) = (packed_tensor(pack(&host(w.clone()), &g)), packed_tensor(pad_bias(&vec![0.0; c_out], &g)));
        let packed = median_seconds(|| {
            std::hint::black_box(packed_conv(x_last.clone(), pw.clone(), pb.clone(), None, &g, true));
        });
        let flops = 2.0 * (m * kk * n) as f64;
        println!(
            "{:>26} {count:>4} {:>10.2} {:>10.2} {:>10.2} {:>9.1} {:>11.1}",
            format!("{c_in}→{c_out} {k}×{k}/{stride} @{side}"),
            conv * 1e3,
            gemm * 1e3,
            packed * 1e3,
            flops / conv / 1e9,
            flops / packed / 1e9,
        );
        let kind = format!("{k}×{k} stride {stride}");
        let e = by_kind.entry(kind).or_default();
        e.0 += conv * count as f64;
        e.1 += gemm * count as f64;
        e.2 += packed * count as f64;
        conv_total += conv * count as f64;
        gemm_total += gemm * count as f64;
        packed_total += packed * count as f64;
        flops_total += flops * count as f64;
    }
    println!();
    for (kind, (conv, gemm, packed)) in &by_kind {
        println!(
            "{kind:>14}: {:7.1} ms conv, {:7.1} ms as gemm, {:7.1} ms packed ({:4.1}% of conv time)",
            conv * 1e3,
            gemm * 1e3,
            packed * 1e3,
            100.0 * conv / conv_total
        );
    }
    let per_second = |t: f64| (batch as f64 / t, flops_total / t / 1e9);
    for (name, t) in [("burn conv2d", conv_total), ("plain GEMMs", gemm_total), ("engine kernels", packed_total)] {
        let (images, gflops) = per_second(t);
        println!("all convolutions, {name}: {:.1} ms per batch ({images:.1} img/s, {gflops:.0} GFLOP/s)", t * 1e3);
    }
    let folded = ResNetConfig::resnet50().init(&device, 0).valid().fold_batch_norms();
    let x = Tensor::<4>::random([batch, 3, 224, 224], Distribution::Uniform(0.0, 1.0), &device);
    let forward = |model: &salient_engine::ResNet| {
        median_seconds(|| {
            std::hint::black_box(model.forward(x.clone()).layer4.into_data());
        })
    };
    let burn_forward = forward(&folded);
    let packed_forward = forward(&folded.pack_for(&device));
    for (name, t, convs) in [("burn", burn_forward, conv_total), ("engine kernels", packed_forward, packed_total)] {
        println!(
            "whole forward pass on {name} (batch norms folded, layer4 read back): {:.1} ms per batch ({:.1} img/s); convolutions {:.0}% of it",
            t * 1e3,
            batch as f64 / t,
            100.0 * convs / t
        );
    }
}
